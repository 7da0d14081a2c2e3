//! Docker in the daemon: the container check, the event stream that triggers
//! checks within milliseconds of a change, discovery of containers matching a
//! selector, and the restart / restore / rollback jobs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use medic_core::config::{Config, ContainerSelector, ContainerTarget, OnStop, Target};
use medic_core::{
    ActionResult, ENGINE_GRACE, Evidence, Observation, RESTART_EXPECTED_FROM, Step, Urgency,
};
use medic_docker::{
    BringsBack, ContainerEvent, ContainerSpec, ContainerState, DockerClient, DockerError, Selector,
    SettleError, Settled, StopCommand,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::job::{Job, JobContext, failed};
use crate::shell::{Event, Found, Shell};

/// How long one engine call of a restart or rollback may take beyond the stop
/// timeout it waits for, answer and body included. A call still unanswered by
/// then is hung (a container stuck in removal): the action fails with it, and
/// its slot is free for the next one.
const ENGINE_CALL_DEADLINE: Duration = Duration::from_secs(30);
/// Log lines of a failing container kept as evidence.
const LOG_LINES: usize = 50;
/// The longest a reconnect to a lost event stream waits.
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// How long a stop command seen on the event stream explains a container's
/// exit (longer than the usual stop timeouts, so a `docker restart` of a
/// container that ignores SIGTERM still counts).
const STOP_MEMORY: Duration = Duration::from_secs(60);
/// A Podman `restart` event this soon after a `start` belongs to that start.
const RESTART_SETTLE: Duration = Duration::from_secs(1);

/// The daemon's Docker connection.
#[derive(Debug, Clone)]
pub struct Docker {
    client: Arc<DockerClient>,
    /// Wakes the discovery of selector services (a container was created or started).
    /// A counter, so a wake-up during a discovery round is not lost.
    rediscover: Arc<watch::Sender<u64>>,
    /// Containers a command is stopping or restarting (by name), from the event stream.
    stops: Stops,
    /// `docker_host` or DOCKER_HOST when set, for saying which engine is unreachable.
    address: Option<Arc<str>>,
}

/// The last stop command per container the event stream reported, until the
/// container starts again or is removed; the checks read it to tell a
/// `docker restart` under way from a crash. Entries older than
/// [`STOP_MEMORY`] are dropped, so it stays as small as the containers
/// being stopped at once.
#[derive(Debug, Clone, Default)]
pub struct Stops(Arc<Mutex<HashMap<String, (Instant, Noted)>>>);

/// What the event stream last said about a container's stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Noted {
    /// A command is stopping (or restarting) it.
    Stop(StopCommand),
    /// It started: an earlier stop command is done.
    Started,
}

impl Stops {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Noted)>> {
        // A plain map that no panic can leave half-written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes what an event says about a stop by command.
    fn note(&self, event: &ContainerEvent) {
        let now = Instant::now();
        let mut map = self.map();
        let last = map
            .get(&event.name)
            .map(|(at, noted)| (now.duration_since(*at), *noted));
        let noted = match (event.kind(), last) {
            ("destroy", _) => {
                map.remove(&event.name);
                return;
            }
            ("start", _) => Noted::Started,
            ("kill", _) if event.is_graceful_kill() => Noted::Stop(StopCommand::Graceful),
            // The SIGKILL that ends a stop timeout does not turn a `docker
            // stop` or `docker restart` into a `docker kill`.
            ("kill", Some((_, Noted::Stop(StopCommand::Graceful)))) => return,
            ("kill", _) => Noted::Stop(StopCommand::Kill),
            // Podman announces `restart` before it stops a running container
            // (Docker after it started it again, its SIGTERM kill came first);
            // restarting a stopped one, Podman starts it first: nothing to wait for.
            ("restart", Some((since, Noted::Started))) if since < RESTART_SETTLE => return,
            ("restart", _) if event.from_podman => Noted::Stop(StopCommand::Restart),
            _ => return,
        };
        map.retain(|_, (at, _)| now.duration_since(*at) < STOP_MEMORY);
        map.insert(event.name.clone(), (now, noted));
    }

    /// How `container` was last stopped by a command, if recently and it has not started since.
    fn get(&self, container: &str) -> Option<StopCommand> {
        match self.map().get(container) {
            Some((at, Noted::Stop(command))) if at.elapsed() < STOP_MEMORY => Some(*command),
            _ => None,
        }
    }
}

impl Docker {
    /// Connects when a service has a container target: `[medic] docker_host`, else DOCKER_HOST, else the local socket.
    pub fn for_config(config: &Config) -> anyhow::Result<Option<Self>> {
        let wanted = config
            .services
            .iter()
            .any(|s| matches!(s.target, Some(Target::Container(_))));
        if !wanted {
            return Ok(None);
        }
        let client = match &config.medic.docker_host {
            Some(host) => DockerClient::connect_to(host)?,
            None => DockerClient::connect()?,
        };
        let address = config
            .medic
            .docker_host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()));
        Ok(Some(Self {
            client: Arc::new(client),
            rediscover: Arc::new(watch::Sender::new(0)),
            stops: Stops::default(),
            address: address.map(Arc::from),
        }))
    }

    /// Which engine answers (Docker or Podman), its version and where, for
    /// `medic check` and `medic doctor`; Err says which socket did not answer and why.
    pub async fn engine(&self) -> Result<medic_docker::EngineInfo, String> {
        self.client
            .engine()
            .await
            .map_err(|error| format!("no engine answers at {}: {error}", self.client.endpoint()))
    }

    /// The check of one container.
    pub fn check(&self, container: &str, timeout: Duration, on_stop: OnStop) -> ContainerCheck {
        ContainerCheck {
            client: self.client.clone(),
            stops: self.stops.clone(),
            container: container.to_owned(),
            timeout,
            on_stop,
        }
    }

    /// The names of the containers a selector matches now.
    pub async fn find(&self, selector: &ContainerSelector) -> anyhow::Result<Vec<String>> {
        let found = self.client.find(&to_selector(selector)).await?;
        Ok(found.into_iter().map(|c| c.name).collect())
    }

    /// Where the engine is expected (`unix:///var/run/docker.sock`).
    pub fn endpoint(&self) -> String {
        self.client.endpoint()
    }

    /// Each container a selector matches now, with its state (`running`,
    /// `exited`, …), stopped ones included: for `medic doctor`.
    pub async fn states(
        &self,
        selector: &ContainerSelector,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let found = self.client.find(&to_selector(selector)).await?;
        Ok(found
            .into_iter()
            .map(|c| (c.name, c.state.to_string()))
            .collect())
    }

    /// Why the engine cannot list containers, in one line with the root cause:
    /// `Docker engine unreachable at unix:///run/docker.sock: connection refused`,
    /// `Docker engine unreachable: Socket not found: /var/run/docker.sock`.
    fn unreachable(&self, error: &medic_docker::DockerError) -> String {
        let at = self
            .address
            .as_deref()
            .map_or_else(String::new, |a| format!(" at {a}"));
        // DockerError names no source; bollard's error chain goes down to the IO error.
        let cause = match error.bollard() {
            Some(bollard) => medic_probe::reason::innermost(bollard),
            None => error.to_string(),
        };
        if error.is_unreachable() {
            format!("Docker engine unreachable{at}: {cause}")
        } else {
            format!("Docker engine{at} cannot list containers: {cause}")
        }
    }

    /// Runs the discovery of selector services now.
    pub fn rediscover(&self) {
        self.rediscover
            .send_modify(|round| *round = round.wrapping_add(1));
    }

    /// Lists the containers a selector matches now, with their labels (a task
    /// of its own: the supervisor loop never waits for the engine).
    pub fn list(
        &self,
        selector: &ContainerSelector,
    ) -> impl Future<Output = anyhow::Result<Vec<Found>>> + Send + 'static {
        let (client, selector) = (self.client.clone(), to_selector(selector));
        async move {
            let found = client.find(&selector).await?;
            Ok(found.into_iter().map(|c| (c.name, c.labels)).collect())
        }
    }

    /// Starts the event stream.
    pub fn start_events(&self, shell: &Shell) {
        shell.tracker.spawn(watch_events(
            self.client.clone(),
            self.stops.clone(),
            shell.clone(),
        ));
    }

    /// Starts the discovery of one selector service (nothing for a name selector).
    pub fn start_discovery(
        &self,
        shell: &Shell,
        config: &Config,
        service: &str,
        target: &ContainerTarget,
    ) {
        if matches!(target.selector, ContainerSelector::Name(_)) {
            return;
        }
        let discovery = discover(
            self.clone(),
            shell.clone(),
            self.rediscover.subscribe(),
            service.to_owned(),
            to_selector(&target.selector),
            config.medic.reconcile_interval,
        );
        shell.tracker.spawn(discovery);
    }

    /// Captures the container's create spec as its last known good, with the
    /// name of the container whose network namespace it joins, if any.
    pub fn record_last_known_good(&self, shell: &Shell, unit: &str, container: &str) {
        let client = self.client.clone();
        let (unit, container, events) =
            (unit.to_owned(), container.to_owned(), shell.events.clone());
        shell.tracker.spawn(async move {
            let spec = match client.capture_spec(&container).await {
                Ok(spec) => spec,
                Err(error) => {
                    tracing::warn!(%unit, %error, "Cannot record the last known good spec");
                    return;
                }
            };
            let namespace_parent = match spec.network_parent() {
                Some(parent) => client
                    .inspect(parent)
                    .await
                    .ok()
                    .flatten()
                    .map(|facts| facts.name),
                None => None,
            };
            match serde_json::to_value(&spec) {
                Ok(spec) => {
                    let event = Event::LastKnownGood {
                        unit,
                        spec,
                        namespace_parent,
                    };
                    events.send(event).await.ok();
                }
                Err(error) => tracing::warn!(%unit, %error, "Cannot encode a container spec"),
            }
        });
    }

    /// The job that carries out `step` on a container.
    pub fn job(
        &self,
        container: &str,
        target: &ContainerTarget,
        step: Step,
        context: JobContext,
    ) -> Job {
        let client = self.client.clone();
        let container = container.to_owned();
        let stop_timeout = target.stop_timeout;
        let JobContext {
            last_known_good,
            dependents,
            undo_deploy,
            recreate,
            resumed,
            ..
        } = context;
        // A rollback resumed after a restart of medic may find its work done.
        let already_fine = undo_deploy || resumed;
        let lkg = last_known_good.and_then(|v| serde_json::from_value::<ContainerSpec>(v).ok());
        Box::pin(async move {
            let result = match step {
                Step::Restart(_) => {
                    restart(&client, &container, stop_timeout, lkg.as_ref(), recreate).await
                }
                Step::Rollback => {
                    let lkg = lkg.as_ref();
                    rollback(
                        &client,
                        &container,
                        stop_timeout,
                        lkg,
                        already_fine,
                        recreate,
                    )
                    .await
                }
            };
            match result {
                ActionResult::Done {
                    message,
                    mut evidence,
                } if !dependents.is_empty() => {
                    let followed = follow_parent(&client, &dependents, stop_timeout).await;
                    evidence.insert("dependents_restarted".into(), followed.into());
                    ActionResult::Done { message, evidence }
                }
                other => other,
            }
        })
    }
}

/// Brings a container back: start it if stopped, restart it if running,
/// recreate it from its last known good spec if it is gone and `recreate`
/// allows it; otherwise a gone container is reported as such (the core decides
/// when a removed container is recreated: after `replace_grace`).
async fn restart(
    client: &DockerClient,
    container: &str,
    stop_timeout: Duration,
    lkg: Option<&ContainerSpec>,
    recreate: bool,
) -> ActionResult {
    let mut evidence = Evidence::new();
    // A `podman stop`, `podman rm -f` or `docker rm -f` under way is let
    // finish first: then a stopped container is started, a removed one is gone.
    let facts = match settle(client, container, stop_timeout, &mut evidence).await {
        Ok(settled) => {
            // That stop was a restart (`podman restart`, `--health-on-failure=restart`,
            // longer than the engine's grace): restarting it again would be twice.
            if settled.waited && settled.facts.as_ref().is_some_and(|f| f.is_running()) {
                evidence.insert("restarted_by".into(), "the engine, during its stop".into());
                return ActionResult::Done {
                    message: format!(
                        "`{container}` was started again by the engine's own restart; medic left it running"
                    ),
                    evidence,
                };
            }
            settled.facts
        }
        Err(failed) => return failed,
    };
    let outcome = match facts {
        None => {
            if !recreate {
                return ActionResult::Gone {
                    message: format!("`{container}` is gone"),
                    evidence,
                };
            }
            let Some(spec) = lkg else {
                return failed("the container is gone and no last known good spec was recorded");
            };
            evidence.insert("image".into(), spec.image_id().into());
            match client.recreate(spec, ENGINE_CALL_DEADLINE).await {
                // Somebody (a deploy) created it meanwhile: adopt it and let
                // verification judge it; never overwrite a replacement.
                Err(error) if error.is_conflict() => Ok(format!(
                    "a container named `{container}` appeared meanwhile: adopted, verifying it"
                )),
                result => result.map(|id| {
                    format!(
                        "recreated `{container}` from its last known good spec ({})",
                        short(&id)
                    )
                }),
            }
        }
        Some(facts) if !facts.is_running() => client
            .start(container, ENGINE_CALL_DEADLINE)
            .await
            .map(|()| format!("started `{container}`")),
        Some(_) => client
            .restart(container, stop_timeout, ENGINE_CALL_DEADLINE)
            .await
            .map(|()| format!("restarted `{container}`")),
    };
    match outcome {
        Ok(message) => ActionResult::Done { message, evidence },
        // Removed between the inspect and the start: a removal, not a failed attempt.
        Err(error) if error.is_not_found() && !recreate => ActionResult::Gone {
            message: format!("`{container}` is gone: {error}"),
            evidence,
        },
        Err(error) => {
            let message = format!("cannot bring `{container}` back: {error}");
            call_failed(message, &error, evidence)
        }
    }
}

/// Returns a container to its last known good spec when it differs from what
/// runs now. Undoing a deploy that left the spec as it was, or finishing a
/// rollback a stop of medic cut short after its create (`already_fine`), only starts it.
async fn rollback(
    client: &DockerClient,
    container: &str,
    stop_timeout: Duration,
    lkg: Option<&ContainerSpec>,
    already_fine: bool,
    recreate: bool,
) -> ActionResult {
    let Some(lkg) = lkg else {
        return impossible("no last known good spec was recorded for this container");
    };
    let mut evidence = Evidence::new();
    // Judged once a removal under way is done: a container `podman rm -f`
    // is removing is gone, not one to compare with the last known good.
    let current = match settle(client, container, stop_timeout, &mut evidence).await {
        Ok(Settled { facts: None, .. }) => None,
        Ok(_) => match client.capture_spec(container).await {
            Ok(current) => Some(current),
            Err(error) if error.is_not_found() => None,
            Err(error) => return failed(&format!("cannot inspect `{container}`: {error}")),
        },
        Err(failed) => return failed,
    };
    if current.is_none() && !recreate && !already_fine {
        // Removed (a deploy's `docker rm -f`?): the core gives a replacement its grace first.
        return ActionResult::Gone {
            message: format!("`{container}` is gone"),
            evidence,
        };
    }
    evidence.insert("to_image".into(), lkg.image_id().into());
    if let Some(current) = &current {
        evidence.insert("from_image".into(), current.image_id().into());
        if !medic_docker::spec_differs(current, lkg) && already_fine {
            let running = matches!(client.inspect(container).await, Ok(Some(f)) if f.is_running());
            let started = if running {
                Ok(())
            } else {
                client.start(container, ENGINE_CALL_DEADLINE).await
            };
            return match started {
                Ok(()) => ActionResult::Done {
                    message: format!("`{container}` already runs its last known good spec"),
                    evidence,
                },
                Err(error) => ActionResult::Failed {
                    message: format!("cannot start `{container}`: {error}"),
                    evidence,
                },
            };
        }
        if !medic_docker::spec_differs(current, lkg) {
            return ActionResult::Impossible {
                message: "already on the last known good spec: nothing different to roll back to"
                    .into(),
                evidence,
            };
        }
    }
    let stamp = crate::clock::wall_now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let error = match client
        .rollback(container, lkg, &stamp, ENGINE_CALL_DEADLINE)
        .await
    {
        Ok(id) => {
            evidence.insert(
                "kept_as".into(),
                format!("{container}.medic-failed-{stamp}").into(),
            );
            return ActionResult::Done {
                message: format!(
                    "recreated `{container}` from its last known good spec ({})",
                    short(&id)
                ),
                evidence,
            };
        }
        Err(error) => error,
    };
    // Removed while medic rolled it back (a `podman rm -f` that met the old
    // container, or the one just made under the name), and nothing holds the
    // name now: a removal, whose replacement gets `replace_grace`, not a failed rollback.
    if error.is_not_found() && !recreate && matches!(client.inspect(container).await, Ok(None)) {
        return ActionResult::Gone {
            message: format!("`{container}` was removed during the rollback: {error}"),
            evidence,
        };
    }
    let message = format!("rollback of `{container}` failed: {error}");
    call_failed(message, &error, evidence)
}

/// [`DockerClient::settle`] for a restart or rollback: each wait gets the stop
/// timeout and [`ENGINE_CALL_DEADLINE`]; a failure is the action's, with the
/// state waited on in its evidence.
async fn settle(
    client: &DockerClient,
    container: &str,
    stop_timeout: Duration,
    evidence: &mut Evidence,
) -> Result<Settled, ActionResult> {
    let within = stop_timeout.saturating_add(ENGINE_CALL_DEADLINE);
    client.settle(container, within).await.map_err(|e| match e {
        SettleError::Wait { state, error } => {
            evidence.insert("state".into(), state.as_str().into());
            let message = format!("cannot wait for `{container}` to stop: {error}");
            call_failed(message, &error, std::mem::take(evidence))
        }
        SettleError::Inspect(error) => failed(&format!("cannot inspect `{container}`: {error}")),
    })
}

/// A failed action ended by the engine's `error`; one ended by a call past
/// its deadline names that call and the deadline in its evidence.
fn call_failed(message: String, error: &DockerError, mut evidence: Evidence) -> ActionResult {
    if let DockerError::TimedOut { call, after } = error {
        evidence.insert("timed_out_call".into(), (*call).into());
        let after = humantime::format_duration(*after).to_string();
        evidence.insert("call_deadline".into(), after.into());
    }
    ActionResult::Failed { message, evidence }
}

/// Containers that join the network namespace of one that was just restarted
/// or recreated are broken until they are restarted after it. Returns the ones restarted.
async fn follow_parent(
    client: &DockerClient,
    dependents: &[String],
    stop_timeout: Duration,
) -> Vec<String> {
    let mut followed = Vec::new();
    for container in dependents {
        match client
            .restart(container, stop_timeout, ENGINE_CALL_DEADLINE)
            .await
        {
            Ok(()) => followed.push(container.clone()),
            Err(error) => {
                tracing::warn!(container = %container, %error, "Cannot restart a container that shares its parent's network");
            }
        }
    }
    followed
}

/// Streams Docker events and asks for an immediate check of the container they
/// concern; reconnects with backoff when the stream breaks. A stream that
/// ends (Podman's socket-activated service exits when idle, an engine
/// restarts) is reconnected at once, and every container is checked again
/// then: what happened while it was down was not streamed. The first stream
/// starts at medic's start: no event before its answer is lost.
async fn watch_events(client: Arc<DockerClient>, stops: Stops, shell: Shell) {
    let mut delay = Duration::from_millis(250);
    let mut first = true;
    let mut since = Some(std::time::SystemTime::now());
    loop {
        // Back after a break (a ping also wakes a socket-activated Podman):
        // what happened meanwhile was not streamed, so every container is checked.
        if !std::mem::take(&mut first) && client.ping().await.is_ok() {
            tracing::debug!("Docker event stream reconnected; checking every container");
            if shell.events.send(Event::EngineReconnected).await.is_err() {
                return;
            }
        }
        let mut stream = Box::pin(client.events_since(since.take()));
        let connected = Instant::now();
        loop {
            let item = tokio::select! {
                () = shell.cancel.cancelled() => return,
                item = stream.next() => item,
            };
            match item {
                Some(Ok(event)) => {
                    delay = Duration::from_millis(250);
                    stops.note(&event);
                    let event = Event::ContainerChanged {
                        container: event.name,
                        action: event.action,
                    };
                    if shell.events.send(event).await.is_err() {
                        return;
                    }
                }
                Some(Err(error)) => {
                    tracing::debug!(%error, "Docker event stream broke");
                    break;
                }
                None => break,
            }
        }
        if connected.elapsed() > RECONNECT_MAX {
            delay = Duration::from_millis(250);
        }
        tokio::select! {
            () = shell.cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}

/// Lists the containers of a selector service every `interval`, and at once when
/// the event stream saw a container appear, and reports each one it finds (or
/// that the engine cannot be reached).
async fn discover(
    docker: Docker,
    shell: Shell,
    mut now: watch::Receiver<u64>,
    service: String,
    selector: Selector,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shell.cancel.cancelled() => return,
            _ = ticks.tick() => {}
            changed = now.changed() => if changed.is_err() { return },
        }
        // A wake-up from now on asks for another round after this one.
        now.mark_unchanged();
        let found = docker
            .client
            .find(&selector)
            .await
            .map(|found| found.into_iter().map(|c| (c.name, c.labels)).collect())
            .map_err(|error| docker.unreachable(&error));
        if !crate::discovery::report_discovery(&shell, &service, found).await {
            return;
        }
    }
}

/// Inspects one container and judges it.
#[derive(Debug, Clone)]
pub struct ContainerCheck {
    client: Arc<DockerClient>,
    stops: Stops,
    container: String,
    timeout: Duration,
    on_stop: OnStop,
}

impl ContainerCheck {
    /// One observation: running and not unhealthy is ok; exited is a decisive
    /// failure; gone is `Gone`; an unreachable engine is blind.
    pub async fn run(&self) -> Observation {
        // Read before the inspect: a restart's `start` clears it.
        let stopped_by = self.stops.get(&self.container);
        let started = Instant::now();
        let inspected =
            tokio::time::timeout(self.timeout, self.client.inspect(&self.container)).await;
        let latency = started.elapsed();
        let facts = match inspected {
            Err(_) => return Observation::blind(latency, "Docker engine did not answer in time"),
            // Also an answer medic cannot read (Podman's transient `stopped`
            // state is not in Docker's API): no verdict either way.
            Ok(Err(error)) if error.is_unreachable() => {
                return Observation::blind(latency, error.to_string());
            }
            Ok(Err(error)) => {
                return Observation::blind(latency, format!("the engine's answer: {error}"));
            }
            Ok(Ok(None)) => {
                return Observation::fail(
                    latency,
                    format!("container `{}` is gone", self.container),
                )
                .with_urgency(Urgency::Gone)
                .with("container", self.container.clone());
            }
            // Being removed (`docker rm -f` past its kill): gone, as far as
            // medic is concerned; a start now would fail "marked for removal".
            Ok(Ok(Some(facts))) if facts.is_removing() => {
                return Observation::fail(
                    latency,
                    format!("container `{}` is being removed", self.container),
                )
                .with_urgency(Urgency::Gone)
                .with("container", self.container.clone())
                .with("container_id", facts.id);
            }
            Ok(Ok(Some(facts))) => facts,
        };
        let mut evidence = facts.evidence();
        let verdict = facts.verdict();
        if verdict.ok {
            let mut observation = Observation::ok(latency, verdict.message);
            observation.evidence = evidence;
            return observation;
        }
        if facts.has_stopped() && self.on_stop == OnStop::Leave {
            let mut observation =
                Observation::ok(latency, "stopped; left alone (on_stop = \"leave\")");
            observation.evidence = evidence;
            return observation;
        }
        let logs = self.client.tail_logs(&facts.id, LOG_LINES);
        if let Ok(Ok(lines)) = tokio::time::timeout(self.timeout, logs).await {
            evidence.insert("logs".into(), lines.into());
        }
        // Exited or dead is decisive, unless the engine brings it back itself
        // (its restart policy): then the engine gets the first chance; or a
        // person's or a script's command stopped it (a `docker restart`): no
        // failure at all, unless it is not back in time. Docker's own
        // `unhealthy` verdict is decisive too (it already includes its
        // retries). Created or stopping are passing states (a recreate in
        // progress, Podman's stop timeout) and count normally.
        let mut message = verdict.message;
        let unhealthy = facts.is_running() && facts.health == Some(medic_docker::Health::Unhealthy);
        let urgency = match facts.restart_expected_from(stopped_by) {
            // `docker stop` or `restart`, or Compose recreating (`up`), removing
            // (`rm -sf`, `down`) or stopping it: its command goes first.
            Some(BringsBack::Command(who)) => {
                message = format!(
                    "{message}; stopped by a command ({who}, or Compose's up, rm -s or down)"
                );
                evidence.insert(RESTART_EXPECTED_FROM.into(), who.into());
                Urgency::Commanded
            }
            Some(BringsBack::Engine(who)) => {
                message = format!(
                    "{message}; {who} should bring it back (medic acts if not within {}s)",
                    ENGINE_GRACE.as_secs()
                );
                evidence.insert(RESTART_EXPECTED_FROM.into(), who.into());
                Urgency::EngineRestarts
            }
            // Podman's `stopped`: whoever ended it has not finished, a kill's
            // cleanup (`exited` follows, decisive) or a `podman rm -f` (gone
            // follows, a removal): the two cannot be told apart yet.
            None if facts.state == ContainerState::Stopped => {
                message = format!("{message} (Podman has not finished with it yet)");
                Urgency::Normal
            }
            None if facts.has_stopped() || unhealthy => Urgency::Decisive,
            None => Urgency::Normal,
        };
        let mut observation = Observation::fail(latency, message).with_urgency(urgency);
        observation.evidence = evidence;
        observation
    }
}

pub(crate) fn to_selector(selector: &ContainerSelector) -> Selector {
    match selector {
        ContainerSelector::Name(name) => Selector::Name(name.clone()),
        ContainerSelector::Labels(labels) => Selector::Labels(labels.clone()),
        ContainerSelector::Compose { project, service } => Selector::Compose {
            project: project.clone(),
            service: service.clone(),
        },
    }
}

/// A rollback with nothing to return to: not tried, so not failed.
fn impossible(message: &str) -> ActionResult {
    ActionResult::Impossible {
        message: message.to_owned(),
        evidence: Evidence::new(),
    }
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}
