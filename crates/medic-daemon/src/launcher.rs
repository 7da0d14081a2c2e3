//! The launcher: starts the jobs the core hands out (`Action::Launch`), each
//! in a tracked task bounded by one deadline (its timeout plus `SLACK`), and
//! reports back with the job's id (`Event::Finished`). It decides nothing:
//! which job runs, when, and what a result means are the core's.

use std::collections::BTreeMap;
use std::time::Duration;

use medic_core::{ActionResult, Job, JobId};
use tokio::time::Instant;

use crate::job::Job as Work;
use crate::shell::{Event, Shell};

/// How long past its timeout a job may run before the launcher cancels it:
/// the core counts it failed at its timeout, and its slot is freed here.
pub const SLACK: Duration = Duration::from_secs(10);

/// The jobs running now, by id (so shutdown can say which it cut short).
#[derive(Debug, Default)]
pub struct Launcher {
    running: BTreeMap<JobId, String>,
}

impl Launcher {
    /// Starts `work` for `job`: it ends by itself, at its deadline (reported
    /// as [`ActionResult::TimedOut`]), or when medic cancels every task
    /// ([`ActionResult::Interrupted`]).
    pub fn launch(&mut self, shell: &Shell, job: &Job, work: Work) {
        self.running.insert(job.id, job.unit.clone());
        let (unit, id) = (job.unit.clone(), job.id);
        let deadline = job.timeout.saturating_add(SLACK);
        let events = shell.events.clone();
        let cancel = shell.cancel.clone();
        shell.tracker.spawn(async move {
            let started = Instant::now();
            let result = tokio::select! {
                result = tokio::time::timeout(deadline, work) => result.unwrap_or_else(|_| {
                    ActionResult::TimedOut { after: started.elapsed() }
                }),
                () = cancel.cancelled() => ActionResult::Interrupted,
            };
            let finished = Event::Finished {
                unit,
                job: id,
                result,
            };
            events.send(finished).await.ok();
        });
    }

    /// A job reported: it no longer runs.
    pub fn finished(&mut self, job: JobId) {
        self.running.remove(&job);
    }

    /// How many jobs run.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Every job still running, taken out: shutdown cuts them short.
    pub fn cut(&mut self) -> BTreeMap<JobId, String> {
        std::mem::take(&mut self.running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_core::Step;
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    fn job(id: u64, timeout: Duration) -> Job {
        Job {
            id: JobId(id),
            unit: "web".into(),
            incident: "i1".into(),
            step: Step::Restart(1),
            recreate: false,
            resumed: false,
            timeout,
        }
    }

    fn shell() -> (Shell, mpsc::Receiver<Event>) {
        let (events, rx) = mpsc::channel(4);
        let shell = Shell {
            events,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        };
        (shell, rx)
    }

    async fn next(rx: &mut mpsc::Receiver<Event>) -> (JobId, ActionResult) {
        match rx.recv().await {
            Some(Event::Finished { job, result, .. }) => (job, result),
            other => panic!("not a result: {other:?}"),
        }
    }

    /// A job that never ends is cancelled at its timeout plus the slack and
    /// reported as timed out, with its id.
    #[tokio::test(start_paused = true)]
    async fn a_hung_job_is_cancelled_at_its_deadline() {
        let (shell, mut rx) = shell();
        let mut launcher = Launcher::default();
        let hung: Work = Box::pin(std::future::pending());
        launcher.launch(&shell, &job(7, Duration::from_secs(30)), hung);
        let (id, result) = next(&mut rx).await;
        assert_eq!(id, JobId(7));
        assert_eq!(
            result,
            ActionResult::TimedOut {
                after: Duration::from_secs(30) + SLACK
            }
        );
        launcher.finished(id);
        assert_eq!(launcher.running(), 0);
    }

    /// Cancelling every task (medic stops) reports the job interrupted.
    #[tokio::test(start_paused = true)]
    async fn a_job_cut_by_shutdown_is_interrupted() {
        let (shell, mut rx) = shell();
        let mut launcher = Launcher::default();
        let hung: Work = Box::pin(std::future::pending());
        launcher.launch(&shell, &job(1, Duration::from_secs(300)), hung);
        shell.cancel.cancel();
        assert_eq!(next(&mut rx).await.1, ActionResult::Interrupted);
        assert_eq!(launcher.cut().into_keys().collect::<Vec<_>>(), [JobId(1)]);
    }

    /// A job that ends in time reports its own result.
    #[tokio::test(start_paused = true)]
    async fn a_job_reports_its_result() {
        let (shell, mut rx) = shell();
        let mut launcher = Launcher::default();
        let work: Work = Box::pin(async { crate::job::failed("exit 1") });
        launcher.launch(&shell, &job(2, Duration::from_secs(5)), work);
        assert_eq!(
            next(&mut rx).await,
            (JobId(2), crate::job::failed("exit 1"))
        );
    }
}
