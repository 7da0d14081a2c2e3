//! Property tests of the config parser: no text makes it panic, every error
//! points inside the file, and generated valid configs come back as the model
//! they describe (durations in any unit, bounded by `duration::MAX`).

use std::time::Duration;

use medic_core::config::{self, ProbeKind, Target};
use medic_core::duration;
use proptest::prelude::*;

/// One generated service: what the TOML says, to compare with what parses.
#[derive(Debug, Clone)]
struct Gen {
    name: String,
    interval: Duration,
    timeout: Duration,
    failure_threshold: u32,
    max_attempts: u32,
    probe: GenProbe,
    restart: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
enum GenProbe {
    Tcp(u16),
    Http(u16, String),
    Exec(Vec<String>),
}

/// A duration as a person writes it: the largest unit that divides it, or a compound.
fn write_duration(d: Duration, compound: bool) -> String {
    let ms = d.as_millis();
    if compound && ms >= 3_600_000 && ms.is_multiple_of(1000) {
        let s = d.as_secs();
        return format!("{}h {}m {}s", s / 3600, s % 3600 / 60, s % 60);
    }
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    units
        .iter()
        .find(|(size, _)| ms.is_multiple_of(*size))
        .map_or_else(
            || format!("{ms}ms"),
            |(size, unit)| format!("{}{unit}", ms / size),
        )
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string encodes")
}

fn argv() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9 ./=\"'\\\\é-]{1,12}", 1..4)
}

fn service() -> impl Strategy<Value = Gen> {
    let probe = prop_oneof![
        any::<u16>().prop_map(|p| GenProbe::Tcp(p.max(1))),
        (any::<u16>(), "[a-z0-9/_-]{0,12}").prop_map(|(p, path)| GenProbe::Http(p.max(1), path)),
        argv().prop_map(GenProbe::Exec),
    ];
    (
        "[a-z][a-z0-9_-]{0,10}",
        // Interval up to ~ a year, written in any unit; the timeout below it.
        (2u64..31_536_000_000),
        any::<prop::sample::Index>(),
        1u32..20,
        1u32..20,
        probe,
        prop::option::of(argv()),
    )
        .prop_map(
            |(name, interval_ms, at, failure_threshold, max_attempts, probe, restart)| {
                let interval = Duration::from_millis(interval_ms);
                let timeout = Duration::from_millis(
                    1 + at.index(usize::try_from(interval_ms - 1).unwrap()) as u64,
                );
                Gen {
                    name,
                    interval,
                    timeout,
                    failure_threshold,
                    max_attempts,
                    probe,
                    restart,
                }
            },
        )
}

fn services() -> impl Strategy<Value = (Vec<Gen>, bool)> {
    (prop::collection::vec(service(), 1..5), any::<bool>()).prop_map(|(mut services, compound)| {
        for (i, s) in services.iter_mut().enumerate() {
            s.name = format!("{}-{i}", s.name);
        }
        (services, compound)
    })
}

fn render(services: &[Gen], compound: bool) -> String {
    let mut text = String::from("[medic]\nstate_dir = \"/tmp/medic-prop\"\n\n");
    for s in services {
        text += &format!(
            "[[service]]\nname = {}\ninterval = \"{}\"\ntimeout = \"{}\"\nfailure_threshold = {}\nmax_attempts = {}\n",
            toml_string(&s.name),
            write_duration(s.interval, compound),
            write_duration(s.timeout, compound),
            s.failure_threshold,
            s.max_attempts,
        );
        if let Some(restart) = &s.restart {
            let argv: Vec<String> = restart.iter().map(|a| toml_string(a)).collect();
            text += &format!("command = {{ restart = [{}] }}\n", argv.join(", "));
        }
        text += "  [[service.probe]]\n";
        text += &match &s.probe {
            GenProbe::Tcp(port) => format!("  kind = \"tcp\"\n  address = \"127.0.0.1:{port}\"\n"),
            GenProbe::Http(port, path) => {
                format!("  kind = \"http\"\n  url = \"http://127.0.0.1:{port}/{path}\"\n")
            }
            GenProbe::Exec(argv) => {
                let argv: Vec<String> = argv.iter().map(|a| toml_string(a)).collect();
                format!("  kind = \"exec\"\n  command = [{}]\n", argv.join(", "))
            }
        };
        text += "\n";
    }
    text
}

/// Parse, never panicking; errors always point at a real line and column.
fn parse_checked(text: &str) -> Result<config::Config, config::ConfigErrors> {
    let result = config::parse(text, "prop.toml");
    if let Err(errors) = &result {
        assert!(!errors.errors.is_empty(), "a rejection names an error");
        let lines = text.lines().count().max(1) + 1;
        for e in &errors.errors {
            assert!(
                e.line >= 1 && e.line <= lines,
                "line {} of {lines}: {e:?}",
                e.line
            );
            assert!(e.column >= 1, "{e:?}");
        }
        let shown = errors.to_string();
        assert!(shown.starts_with("prop.toml:"), "{shown}");
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_generated_configs_round_trip((generated, compound) in services()) {
        let text = render(&generated, compound);
        let parsed = parse_checked(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        prop_assert_eq!(parsed.services.len(), generated.len());
        for (s, g) in parsed.services.iter().zip(&generated) {
            prop_assert_eq!(&s.name, &g.name);
            prop_assert_eq!(s.probes.len(), 1);
            prop_assert_eq!(s.probes[0].interval, g.interval, "{}", text);
            prop_assert_eq!(s.probes[0].timeout, g.timeout, "{}", text);
            prop_assert_eq!(s.policy.failure_threshold, g.failure_threshold);
            prop_assert_eq!(s.policy.max_attempts, g.max_attempts);
            match (&s.probes[0].kind, &g.probe) {
                (ProbeKind::Tcp(tcp), GenProbe::Tcp(port)) => {
                    prop_assert_eq!(&tcp.address, &format!("127.0.0.1:{port}"));
                }
                (ProbeKind::Http(http), GenProbe::Http(port, path)) => {
                    prop_assert_eq!(&http.url, &format!("http://127.0.0.1:{port}/{path}"));
                }
                (ProbeKind::Exec(exec), GenProbe::Exec(argv)) => {
                    prop_assert_eq!(&exec.argv, argv);
                }
                (kind, probe) => prop_assert!(false, "{:?} parsed as {:?}", probe, kind),
            }
            match (&s.target, &g.restart) {
                (Some(Target::Command(c)), Some(restart)) => prop_assert_eq!(&c.restart, restart),
                (None, None) => {}
                (target, restart) => prop_assert!(false, "{:?} parsed as {:?}", restart, target),
            }
        }
    }

    #[test]
    fn any_text_parses_or_is_rejected_with_positions(text in "\\PC{0,400}") {
        let _ = parse_checked(&text);
    }

    #[test]
    fn a_damaged_valid_config_never_panics(
        (generated, compound) in services(),
        at in any::<prop::sample::Index>(),
        len in 0usize..40,
        junk in "[\\[\\]{}=\"',.\n #a-z0-9é\\\\-]{0,20}",
    ) {
        let text = render(&generated, compound);
        let chars: Vec<char> = text.chars().collect();
        let start = at.index(chars.len());
        let end = (start + len).min(chars.len());
        let damaged: String = chars[..start].iter().chain(junk.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect();
        let _ = parse_checked(&damaged);
    }

    #[test]
    fn every_duration_is_bounded(n in any::<u64>(), unit in prop::sample::select(vec!["ns", "ms", "s", "m", "h", "d", "w", "M", "y", "years", ""])) {
        let text = format!(
            "[[service]]\nname = \"s\"\nreplace_grace = \"{n}{unit}\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n"
        );
        match parse_checked(&text) {
            Ok(config) => prop_assert!(config.services[0].policy.replace_grace <= duration::MAX),
            Err(errors) => prop_assert_eq!(errors.errors[0].line, 3),
        }
        if let Ok(d) = duration::parse(&format!("{n}{unit}")) {
            prop_assert!(d <= duration::MAX);
        }
    }
}
