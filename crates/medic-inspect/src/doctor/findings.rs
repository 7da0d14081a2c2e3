//! What `medic doctor` reports: findings, each with a severity and a fix,
//! gathered in order.

/// How bad a finding is; the exit code of `medic doctor` is the worst one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Works as configured.
    Ok,
    /// Works, but something is off or cannot be told.
    Warning,
    /// Will not work.
    Error,
}

impl Severity {
    /// `ok`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked: `engine`, `state_dir`, `target`, `probe`, …
    pub check: &'static str,
    /// The service it concerns, if any.
    pub service: Option<String>,
    /// How bad.
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// What to do about it (None when all is well).
    pub fix: Option<String>,
}

/// The findings so far.
#[derive(Default)]
pub(super) struct Findings(pub(super) Vec<Finding>);

impl Findings {
    pub(super) fn ok(
        &mut self,
        check: &'static str,
        service: Option<&str>,
        message: impl Into<String>,
    ) {
        self.push(check, service, Severity::Ok, message.into(), None);
    }

    pub(super) fn warn(
        &mut self,
        check: &'static str,
        service: Option<&str>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(
            check,
            service,
            Severity::Warning,
            message.into(),
            Some(fix.into()),
        );
    }

    pub(super) fn error(
        &mut self,
        check: &'static str,
        service: Option<&str>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(
            check,
            service,
            Severity::Error,
            message.into(),
            Some(fix.into()),
        );
    }

    fn push(
        &mut self,
        check: &'static str,
        service: Option<&str>,
        severity: Severity,
        message: String,
        fix: Option<String>,
    ) {
        self.0.push(Finding {
            check,
            service: service.map(str::to_owned),
            severity,
            message,
            fix,
        });
    }
}
