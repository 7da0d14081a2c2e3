//! What the executor hands out and the adapters build: a running action
//! (`Job`), what it needs to know (`JobContext`), and a plain failure.

use std::future::Future;
use std::pin::Pin;

use medic_core::{ActionResult, Evidence};

/// A running action.
pub type Job = Pin<Box<dyn Future<Output = ActionResult> + Send>>;

/// What a job needs to know besides the unit and the step.
#[derive(Debug, Default)]
pub struct JobContext {
    /// The incident the job acts for.
    pub incident: String,
    /// The spec a rollback (or the recreation of a removed target) returns to.
    pub last_known_good: Option<serde_json::Value>,
    /// The containers of the units sharing this one's network namespace, restarted after it.
    pub dependents: Vec<String>,
    /// The rollback undoes a deploy: already being on the last known good
    /// version is fine (the deploy changed nothing).
    pub undo_deploy: bool,
    /// A target found gone may be recreated (the core waited `replace_grace`).
    pub recreate: bool,
    /// The job finishes a step a stop of medic cut short: already being on
    /// the last known good version is done.
    pub resumed: bool,
}

/// A failed action with no evidence beyond its message.
pub fn failed(message: &str) -> ActionResult {
    ActionResult::Failed {
        message: message.to_owned(),
        evidence: Evidence::new(),
    }
}
