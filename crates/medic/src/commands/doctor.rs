//! `medic doctor`: checks the host and the config and prints each finding with
//! its severity and a suggested fix; exits 0 (all ok), 1 (warnings) or 2 (errors).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use medic_core::config;
use medic_inspect::doctor::{Finding, Host, Severity};
use serde::Serialize;

use crate::config_file::ConfigArgs;
use crate::table::{Cell, Table};

/// Arguments of `medic doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
    /// Look for the installed unit, its drop-ins and polkit rules under this root.
    #[arg(long, default_value = "/")]
    root: PathBuf,
}

/// Runs every check once and reports.
pub fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let located = args.config.locate();
    let mut findings = vec![Finding {
        check: "config",
        service: None,
        severity: Severity::Ok,
        message: format!("using {located}"),
        fix: None,
    }];
    findings.extend(match &located.path {
        None => diagnose(&args.config.load()?, &args.root)?,
        Some(path) => {
            let source = crate::config_file::read(path)?;
            let origin = path.display().to_string();
            match config::parse_partial(&source, &origin, &|name| std::env::var(name).ok()) {
                Ok(config) => diagnose(&config, &args.root)?,
                // The errors first, then every check of what still built.
                Err((errors, partial)) => {
                    let mut findings = config_findings(&errors);
                    if let Some(partial) = partial {
                        findings.extend(diagnose(&partial, &args.root)?);
                    }
                    findings
                }
            }
        }
    });
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &Report::new(&findings))?;
        writeln!(out)?;
    } else {
        render(&findings, &mut out)?;
    }
    Ok(exit_code(&findings))
}

fn diagnose(config: &config::Config, root: &std::path::Path) -> anyhow::Result<Vec<Finding>> {
    let host = Host {
        root: root.to_owned(),
    };
    Ok(super::runtime()?.block_on(medic_inspect::doctor::diagnose(config, &host)))
}

/// An invalid config: one error finding per problem, at its file:line:column.
fn config_findings(errors: &config::ConfigErrors) -> Vec<Finding> {
    errors
        .errors
        .iter()
        .map(|e| Finding {
            check: "config",
            service: None,
            severity: Severity::Error,
            message: format!("{}:{}:{}: {}", errors.origin, e.line, e.column, e.message),
            fix: Some(
                e.hint
                    .clone()
                    .unwrap_or_else(|| format!("edit {} at line {}", errors.origin, e.line)),
            ),
        })
        .collect()
}

/// 0 when all is ok, 1 with warnings, 2 with errors.
fn exit_code(findings: &[Finding]) -> u8 {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Error) => 2,
        Some(Severity::Warning) => 1,
        _ => 0,
    }
}

fn render(findings: &[Finding], out: &mut impl Write) -> std::io::Result<()> {
    let mut table = Table::new(["SEVERITY", "CHECK", "SERVICE", "FINDING"]);
    for finding in findings {
        table.row([
            Cell::status(finding.severity.as_str()),
            Cell::plain(finding.check),
            Cell::plain(finding.service.as_deref().unwrap_or("-")),
            Cell::plain(&finding.message),
        ]);
        if let Some(fix) = &finding.fix {
            table.row([
                Cell::plain(""),
                Cell::plain(""),
                Cell::plain(""),
                Cell::plain(format!("fix: {fix}")),
            ]);
        }
    }
    table.write(out)?;
    let report = Report::new(findings);
    writeln!(
        out,
        "\n{} errors, {} warnings, {} ok",
        report.errors, report.warnings, report.ok
    )
}

/// The JSON form of `medic doctor --json`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    errors: usize,
    warnings: usize,
    ok: usize,
    findings: Vec<FindingJson<'a>>,
}

/// One finding in the JSON form.
#[derive(Debug, Serialize)]
struct FindingJson<'a> {
    severity: &'static str,
    check: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<&'a str>,
}

impl<'a> Report<'a> {
    fn new(findings: &'a [Finding]) -> Self {
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        Self {
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            ok: count(Severity::Ok),
            findings: findings
                .iter()
                .map(|f| FindingJson {
                    severity: f.severity.as_str(),
                    check: f.check,
                    service: f.service.as_deref(),
                    message: &f.message,
                    fix: f.fix.as_deref(),
                })
                .collect(),
        }
    }
}
