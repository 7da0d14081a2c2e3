// medic status page: polls /api/status and re-renders the page in place.
// Data older than `stale_after_secs`, or a failed poll, shows the stale banner
// and turns every light grey: the page never shows green on old data.
"use strict";
(function () {
  document.documentElement.classList.add("js");
  const body = document.body;
  const staleAfter = Number(body.dataset.staleAfter || 10) * 1000;
  const refresh = Math.max(1, Number(body.dataset.refresh || 2)) * 1000;
  // When the data shown was made, by the daemon's clock, and when it arrived, by ours.
  // RFC 3339 with nanoseconds; trimmed to milliseconds so every browser parses
  // it. An unparseable time is NaN, which markStale treats as stale.
  function parseTs(ts) {
    return Date.parse(String(ts).replace(/(\.\d{3})\d+/, "$1"));
  }
  let generated = parseTs(body.dataset.generated);
  let received = Date.now();
  let failed = false;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function span(secs) {
    secs = Math.max(0, Math.floor(secs));
    if (secs < 60) return secs + "s";
    if (secs < 3600) return Math.floor(secs / 60) + "m";
    if (secs < 86400) return Math.floor(secs / 3600) + "h";
    return Math.floor(secs / 86400) + "d";
  }

  function ago(secs) {
    return span(secs) + " ago";
  }

  function percent(ratio) {
    return ratio === null || ratio === undefined ? "no data" : (ratio * 100).toFixed(2) + " %";
  }

  function barClass(ratio) {
    if (ratio === null || ratio === undefined) return "none";
    if (ratio >= 0.999) return "up";
    if (ratio >= 0.9) return "partial";
    return "down";
  }

  function utc(ts) {
    const at = typeof ts === "number" ? ts : parseTs(ts);
    if (Number.isNaN(at)) return String(ts);
    return new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function service(s, generatedAt) {
    const state = s.paused ? s.state + " (paused)" : s.state;
    const seen = s.last_observation_ms === undefined ? "never" : ago(s.last_observation_ms / 1000);
    const since = span((generatedAt - parseTs(s.since)) / 1000);
    let facts = "in state for " + since + " · last observation " + seen + " · attempts " + s.attempts;
    if (s.incident) facts += " · incident " + s.incident;
    const windows = el("div", { class: "windows" });
    for (const w of s.availability) {
      const bars = el("span", { class: "bars" });
      for (const bar of w.bars) bars.append(el("span", { class: "bar " + barClass(bar), title: percent(bar) }));
      windows.append(el("div", { class: "window", "data-window": w.window },
        el("span", { class: "label" }, w.window), bars, el("span", { class: "ratio" }, percent(w.ratio))));
    }
    return el("article", { class: "service", "data-service": s.name, "data-light": s.light },
      el("div", { class: "head" },
        el("span", { class: "light " + s.light, title: s.light + ": " + s.health }),
        el("span", { class: "name" }, s.name),
        el("span", { class: "state" }, state),
        el("span", { class: "health" }, s.health)),
      el("p", { class: "facts" }, facts),
      el("p", { class: "message" }, s.message),
      windows);
  }

  function incident(i) {
    const events = el("ol");
    for (const e of i.events) {
      const item = el("li", null, el("time", null, utc(e.ts).slice(11, 19)), " ", el("b", null, e.event), " " + e.message);
      if (e.evidence && Object.keys(e.evidence).length) {
        item.append(el("pre", { class: "evidence" }, JSON.stringify(e.evidence, null, 2)));
      }
      events.append(item);
    }
    const node = el("details", { class: "incident" + (i.open ? " open" : ""), "data-incident": i.id },
      el("summary", null,
        el("span", { class: "id" }, i.id), " ",
        el("span", { class: "name" }, i.service), " ",
        el("span", { class: "outcome" }, i.open ? "open (" + i.last_event + ")" : i.last_event), " ",
        el("time", null, utc(i.opened))),
      events);
    node.open = i.open;
    return node;
  }

  function render(data) {
    const generatedAt = parseTs(data.generated);
    const overall = { healthy: "green", unhealthy: "red" }[data.overall] || "grey";
    const light = document.getElementById("overall");
    light.className = "light " + overall;
    light.title = data.overall;
    const time = document.querySelector("#generated time");
    time.dateTime = data.generated;
    time.textContent = utc(data.generated);

    // Keep which incidents a reader opened or closed.
    const toggled = new Map();
    for (const d of document.querySelectorAll("details.incident")) toggled.set(d.dataset.incident, d.open);

    const services = document.getElementById("services");
    services.replaceChildren(el("h2", null, "Services"));
    if (!data.services.length) services.append(el("p", { class: "empty" }, "No services are watched."));
    for (const s of data.services) services.append(service(s, generatedAt));

    const incidents = document.getElementById("incidents");
    incidents.replaceChildren(el("h2", null, "Incidents"));
    if (!data.incidents.length) incidents.append(el("p", { class: "empty" }, "No incidents in the recovery log."));
    for (const i of data.incidents) {
      const node = incident(i);
      if (toggled.has(i.id)) node.open = toggled.get(i.id);
      incidents.append(node);
    }
  }

  function markStale() {
    // Stale when the last poll failed, or the data we show is older than allowed
    // (by our clock since it arrived, and by the daemon's own timestamp).
    const age = Math.max(Date.now() - received, Date.now() - generated);
    const stale = failed || !(age <= staleAfter);
    body.classList.toggle("stale", stale);
    document.getElementById("stale-since").textContent = utc(generated);
  }

  async function poll() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(refresh, 2000));
    try {
      const response = await fetch("/api/status", { cache: "no-store", signal: abort.signal });
      if (!response.ok) throw new Error("status " + response.status);
      const data = await response.json();
      render(data);
      generated = parseTs(data.generated);
      received = Date.now();
      failed = false;
    } catch (_) {
      failed = true;
    } finally {
      clearTimeout(timer);
      markStale();
      setTimeout(poll, refresh);
    }
  }

  markStale();
  setTimeout(poll, refresh);
})();
