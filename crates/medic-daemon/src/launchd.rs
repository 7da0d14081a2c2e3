//! launchd in the daemon: the launch_agent check, discovery of the jobs of a
//! `label_prefix`, the restart / restore / rollback jobs, and recording a job's
//! plist as its last known good.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use medic_core::config::{Config, Expect, LabelSelector, LaunchAgentTarget};
use medic_core::{ActionResult, Evidence, Observation, Step, Urgency};
use medic_launchd::{Classification, JobFacts, Launchctl, LaunchdError, PlistCopy, Source};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::job::{Job, failed};
use crate::shell::{Event, Shell};

/// Log lines of a failing job's StandardErrorPath / StandardOutPath kept as evidence.
const LOG_LINES: usize = 50;
/// The longest one launchctl call of a restart or rollback may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon's launchctl.
#[derive(Debug, Clone)]
pub struct Launchd {
    ctl: Arc<Launchctl>,
    /// The default domain (`gui/<uid>`, or `user/<uid>` without a GUI login), found once.
    default_domain: Arc<OnceCell<String>>,
}

/// One launchd job of a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentJob {
    /// The job's label.
    pub label: String,
    /// The configured domain; `None`: the default one.
    pub domain: Option<String>,
    /// The configured plist path.
    pub plist: Option<PathBuf>,
    /// What a clean exit means for it (`expect` in config).
    pub expect: Expect,
}

impl AgentJob {
    /// The job `label` of a target.
    pub fn new(label: &str, target: &LaunchAgentTarget) -> Self {
        Self {
            label: label.to_owned(),
            domain: target.domain.clone(),
            plist: target.plist.clone(),
            expect: target.expect,
        }
    }
}

impl Launchd {
    /// The system's launchctl ([`medic_launchd::DEFAULT_PROGRAM`]); nothing runs until a call.
    pub fn new() -> Self {
        Self {
            ctl: Arc::new(Launchctl::system(CALL_TIMEOUT)),
            default_domain: Arc::new(OnceCell::new()),
        }
    }

    async fn domain(&self, job: &AgentJob) -> Result<String, LaunchdError> {
        if let Some(domain) = &job.domain {
            return Ok(domain.clone());
        }
        self.default_domain
            .get_or_try_init(|| self.ctl.resolve_domain(None))
            .await
            .cloned()
    }

    /// The check of one job.
    pub fn check(&self, job: AgentJob, timeout: Duration) -> LaunchAgentCheck {
        LaunchAgentCheck {
            launchd: self.clone(),
            job,
            timeout,
        }
    }

    /// Lists the jobs of a `label_prefix` service every `reconcile_interval` and
    /// reports each one (nothing for a single label).
    pub fn start_discovery(
        &self,
        shell: &Shell,
        config: &Config,
        service: &str,
        target: &LaunchAgentTarget,
    ) {
        let LabelSelector::Prefix(prefix) = &target.selector else {
            return;
        };
        let discovery = discover(
            self.ctl.clone(),
            shell.clone(),
            service.to_owned(),
            prefix.clone(),
            config.medic.reconcile_interval,
        );
        shell.tracker.spawn(discovery);
    }

    /// The labels of the loaded jobs that start with `prefix`.
    pub async fn find(&self, prefix: &str) -> Result<Vec<String>, LaunchdError> {
        find(&self.ctl, prefix).await
    }

    /// Captures the job's plist as its last known good.
    pub fn record_last_known_good(&self, shell: &Shell, unit: &str, job: &AgentJob) {
        let (launchd, job) = (self.clone(), job.clone());
        let (unit, events) = (unit.to_owned(), shell.events.clone());
        shell.tracker.spawn(async move {
            let copy = match launchd.capture(&job).await {
                Ok(copy) => copy,
                Err(error @ LaunchdError::Submitted { .. }) => {
                    tracing::info!(%unit, error = %error, "No plist to keep as last known good");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%unit, error = %error, "Cannot record the last known good plist");
                    return;
                }
            };
            match serde_json::to_value(&copy) {
                Ok(spec) => {
                    let event = Event::LastKnownGood {
                        unit,
                        spec,
                        namespace_parent: None,
                    };
                    events.send(event).await.ok();
                }
                Err(error) => tracing::warn!(%unit, %error, "Cannot encode a plist copy"),
            }
        });
    }

    async fn capture(&self, job: &AgentJob) -> Result<PlistCopy, LaunchdError> {
        let domain = self.domain(job).await?;
        let facts = self.ctl.inspect(&domain, &job.label).await?;
        if let Some(by) = facts.as_ref().and_then(|f| f.submitted_by.clone())
            && job.plist.is_none()
        {
            return Err(LaunchdError::Submitted {
                label: job.label.clone(),
                by,
            });
        }
        let path = find_plist(job, facts.as_ref().and_then(|f| f.plist.clone()))?;
        PlistCopy::capture(&job.label, &path)
    }

    /// The job that carries out `step` on a launchd job.
    pub fn job(
        &self,
        job: &AgentJob,
        step: Step,
        last_known_good: Option<serde_json::Value>,
    ) -> Job {
        let (launchd, job) = (self.clone(), job.clone());
        let lkg = last_known_good.and_then(|v| serde_json::from_value::<PlistCopy>(v).ok());
        Box::pin(async move {
            let domain = match launchd.domain(&job).await {
                Ok(domain) => domain,
                Err(error) => return failed(&format!("cannot find the launchd domain: {error}")),
            };
            let mut evidence = Evidence::new();
            evidence.insert("label".into(), job.label.clone().into());
            evidence.insert("domain".into(), domain.clone().into());
            let result = match step {
                Step::Restart(_) => {
                    restart(&launchd.ctl, &domain, &job, lkg.as_ref(), &mut evidence)
                        .await
                        .map_err(NotDone::Failed)
                }
                Step::Rollback => {
                    rollback(&launchd.ctl, &domain, &job, lkg.as_ref(), &mut evidence).await
                }
            };
            match result {
                Ok(message) => ActionResult::Done { message, evidence },
                Err(NotDone::Failed(message)) => ActionResult::Failed { message, evidence },
                Err(NotDone::Impossible(message)) => ActionResult::Impossible { message, evidence },
            }
        })
    }
}

/// Lists the jobs of a `label_prefix` service every `interval` and reports each
/// one (or that launchctl cannot list them).
async fn discover(
    ctl: Arc<Launchctl>,
    shell: Shell,
    service: String,
    prefix: String,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shell.cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let found = find(&ctl, &prefix)
            .await
            .map(|labels| labels.into_iter().map(|l| (l, HashMap::new())).collect())
            .map_err(|error| format!("cannot list launchd jobs: {error}"));
        if !crate::discovery::report_discovery(&shell, &service, found).await {
            return;
        }
    }
}

/// The labels `launchctl list` shows that start with `prefix`.
async fn find(ctl: &Launchctl, prefix: &str) -> Result<Vec<String>, LaunchdError> {
    let entries = ctl.list_all().await?;
    Ok(entries
        .into_iter()
        .map(|e| e.label)
        .filter(|l| l.starts_with(prefix))
        .collect())
}

/// Kickstarts a loaded job (killing a running instance); bootstraps one that is not loaded.
async fn restart(
    ctl: &Launchctl,
    domain: &str,
    job: &AgentJob,
    lkg: Option<&PlistCopy>,
    evidence: &mut Evidence,
) -> Result<String, String> {
    let label = &job.label;
    let facts = ctl
        .inspect(domain, label)
        .await
        .map_err(|e| format!("cannot inspect `{label}`: {e}"))?;
    if facts.is_some() {
        ctl.kickstart(domain, label)
            .await
            .map_err(|e| format!("cannot kickstart `{domain}/{label}`: {e}"))?;
        return Ok(format!("kickstarted `{domain}/{label}`"));
    }
    let path = find_plist(job, lkg.map(|l| l.path.clone())).map_err(|e| e.to_string())?;
    evidence.insert("plist".into(), path.display().to_string().into());
    ctl.bootstrap(domain, &path)
        .await
        .map_err(|e| format!("cannot bootstrap `{label}` from {}: {e}", path.display()))?;
    Ok(format!(
        "bootstrapped `{label}` into {domain} from {}",
        path.display()
    ))
}

/// Why a step did not bring a job back.
enum NotDone {
    /// It was tried and failed.
    Failed(String),
    /// Nothing to roll back to (no last known good plist, or it is what is on disk).
    Impossible(String),
}

impl From<String> for NotDone {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

/// Returns a job to its last known good plist when the one on disk differs:
/// bootout, keep the failing plist as `.medic-failed-<stamp>`, restore, bootstrap.
async fn rollback(
    ctl: &Launchctl,
    domain: &str,
    job: &AgentJob,
    lkg: Option<&PlistCopy>,
    evidence: &mut Evidence,
) -> Result<String, NotDone> {
    let label = &job.label;
    if job.plist.is_none() {
        let facts = ctl.inspect(domain, label).await.ok().flatten();
        if let Some(by) = facts.and_then(|f| f.submitted_by) {
            evidence.insert("submitted_by".into(), by.clone().into());
            let submitted = LaunchdError::Submitted {
                label: label.clone(),
                by,
            };
            return Err(NotDone::Impossible(submitted.to_string()));
        }
    }
    let Some(lkg) = lkg else {
        return Err(NotDone::Impossible(
            "no last known good plist was recorded for this job".into(),
        ));
    };
    evidence.insert("plist".into(), lkg.path.display().to_string().into());
    if !lkg.differs_from_disk() {
        return Err(NotDone::Impossible(
            "already on the last known good plist: nothing different to roll back to".into(),
        ));
    }
    ctl.bootout(domain, label)
        .await
        .map_err(|e| format!("cannot bootout `{domain}/{label}`: {e}"))?;
    let stamp = crate::clock::wall_now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let kept = lkg
        .restore(&stamp)
        .map_err(|e| format!("cannot restore the last known good plist: {e}"))?;
    if let Some(kept) = kept {
        evidence.insert("kept_as".into(), kept.display().to_string().into());
    }
    ctl.bootstrap(domain, &lkg.path)
        .await
        .map_err(|e| format!("cannot bootstrap the restored plist of `{label}`: {e}"))?;
    Ok(format!(
        "restored the last known good plist of `{label}` and bootstrapped it"
    ))
}

/// The job's plist: configured, else reported by launchctl (or the last known
/// good copy), else `<label>.plist` in the standard LaunchAgents folders.
fn find_plist(job: &AgentJob, reported: Option<PathBuf>) -> Result<PathBuf, LaunchdError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    medic_launchd::plist::find(
        &job.label,
        job.plist.as_deref(),
        reported.as_deref(),
        home.as_deref(),
    )
    .ok_or_else(|| LaunchdError::NoPlist {
        label: job.label.clone(),
    })
}

/// Inspects one launchd job and judges it.
#[derive(Debug, Clone)]
pub struct LaunchAgentCheck {
    launchd: Launchd,
    job: AgentJob,
    timeout: Duration,
}

impl LaunchAgentCheck {
    /// One observation: running, or idle between scheduled runs, is ok; a non-zero
    /// exit or a signal is a decisive failure; not loaded is `Gone`; launchctl
    /// that cannot be run or does not answer is blind.
    pub async fn run(&self) -> Observation {
        let started = Instant::now();
        let inspected = tokio::time::timeout(self.timeout, async {
            let domain = self.launchd.domain(&self.job).await?;
            let facts = self.launchd.ctl.inspect(&domain, &self.job.label).await?;
            Ok::<_, LaunchdError>((domain, facts))
        })
        .await;
        let latency = started.elapsed();
        let (domain, facts) = match inspected {
            Err(_) => {
                return Observation::blind(latency, "launchctl did not answer in time")
                    .with("label", self.job.label.clone())
                    .with("classification", "unknown");
            }
            Ok(Err(error)) => {
                return Observation::blind(latency, format!("launchctl unusable: {error}"))
                    .with("label", self.job.label.clone())
                    .with("classification", "unknown");
            }
            Ok(Ok(found)) => found,
        };
        let mut facts = facts;
        if let Some(facts) = facts.as_mut().filter(|f| f.source == Source::List)
            && let Ok(path) = find_plist(&self.job, facts.plist.clone())
        {
            let triggers = medic_launchd::plist::triggers(&path);
            facts.scheduled |= triggers.scheduled;
            facts.on_demand |= triggers.on_demand;
            facts.keep_alive |= triggers.keep_alive;
        }
        let expect = match self.job.expect {
            Expect::ExitedOk => medic_launchd::Expect::ExitedOk,
            Expect::Running => medic_launchd::Expect::Running,
        };
        let verdict = medic_launchd::classify(facts.as_ref(), expect);
        let mut evidence = Evidence::new();
        evidence.insert("label".into(), self.job.label.clone().into());
        evidence.insert("domain".into(), domain.into());
        evidence.insert("classification".into(), verdict.class.as_str().into());
        if let Some(facts) = &facts {
            facts_evidence(facts, &mut evidence);
        }
        let message = format!("`{}` {}", self.job.label, verdict.message);
        if verdict.class.is_ok() {
            let mut observation = Observation::ok(latency, message);
            observation.evidence = evidence;
            return observation;
        }
        // Starting is no failure yet, and no success either: it counts only
        // when launchd stays stuck there for `failure_threshold` observations.
        let urgency = match verdict.class {
            Classification::Missing => Urgency::Gone,
            Classification::Starting => Urgency::Normal,
            _ => {
                if let Some(facts) = &facts {
                    self.log_tails(facts, &mut evidence);
                }
                Urgency::Decisive
            }
        };
        let mut observation = Observation::fail(latency, message).with_urgency(urgency);
        observation.evidence = evidence;
        observation
    }

    /// The tails of the job's StandardErrorPath and StandardOutPath, from
    /// launchctl's answer or, failing that, from its plist.
    fn log_tails(&self, facts: &JobFacts, evidence: &mut Evidence) {
        let (mut stdout, mut stderr) = (facts.stdout_path.clone(), facts.stderr_path.clone());
        if (stdout.is_none() || stderr.is_none())
            && let Ok(path) = find_plist(&self.job, facts.plist.clone())
        {
            let (out, err) = medic_launchd::plist::log_paths(&path);
            stdout = stdout.or(out);
            stderr = stderr.or(err);
        }
        for (key, path) in [("stderr_tail", stderr), ("stdout_tail", stdout)] {
            if let Some(lines) = path.and_then(|p| medic_launchd::plist::tail(&p, LOG_LINES)) {
                evidence.insert(key.into(), lines.into());
            }
        }
    }
}

fn facts_evidence(facts: &JobFacts, evidence: &mut Evidence) {
    evidence.extend(facts.evidence());
}
