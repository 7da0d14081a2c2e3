// medic status page: the server renders it (page.rs); this script only keeps it
// current. Every `refresh` it fetches the page again and swaps the parts that
// change, so there is one rendering, on the server.
// Data older than `stale_after`, or a failed poll, shows the stale banner and
// turns every light grey: the page never shows green on old data.
"use strict";
(function () {
  document.documentElement.classList.add("js");
  const body = document.body;
  const staleAfter = Number(body.dataset.staleAfter || 10) * 1000;
  const refresh = Math.max(1, Number(body.dataset.refresh || 2)) * 1000;
  // The parts of the page that change between answers.
  const LIVE = ["overall", "generated", "services", "incidents"];
  // When the data shown was made, by the daemon's clock, and when it arrived, by ours.
  // RFC 3339 with nanoseconds; trimmed to milliseconds so every browser parses
  // it. An unparseable time is NaN, which markStale treats as stale.
  function parseTs(ts) {
    return Date.parse(String(ts).replace(/(\.\d{3})\d+/, "$1"));
  }
  let generated = parseTs(body.dataset.generated);
  let received = Date.now();
  let failed = false;

  function utc(at) {
    if (Number.isNaN(at)) return "unknown";
    return new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function swap(fresh) {
    // Keep which incidents a reader opened or closed.
    const toggled = new Map();
    for (const d of document.querySelectorAll("details.incident")) toggled.set(d.dataset.incident, d.open);
    for (const id of LIVE) {
      const next = fresh.getElementById(id);
      const current = document.getElementById(id);
      if (next && current) current.replaceWith(document.importNode(next, true));
    }
    for (const d of document.querySelectorAll("details.incident")) {
      if (toggled.has(d.dataset.incident)) d.open = toggled.get(d.dataset.incident);
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
      const response = await fetch(location.pathname, { cache: "no-store", signal: abort.signal });
      if (!response.ok) throw new Error("status " + response.status);
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      swap(fresh);
      generated = parseTs(fresh.body.dataset.generated);
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
