//! What `scripts/package` makes (`MEDIC_TEST_DIST`), taken as a user takes
//! it: the tarball's static binary, completions, man pages and plists; the
//! container image loaded into the test engine and run as the Install text
//! says; the Homebrew formula against what `medic install launchd` writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::docker::{Cleanup, Engine, unique};
use crate::support::env;
use crate::support::medic::{bin, eventually, free_port};

/// The version every artefact carries: the workspace's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The output folder of scripts/package.
fn dist() -> Option<PathBuf> {
    env::require("package", "MEDIC_TEST_DIST").map(PathBuf::from)
}

/// Runs a program in `dir`, which is also its HOME (no user config of the
/// person running the tests is found); (success, stdout + stderr).
fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("MEDIC_CONFIG")
        .output()
        .expect("run a program");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[track_caller]
fn must(program: impl AsRef<std::ffi::OsStr>, args: &[&str], dir: &Path) -> String {
    let (ok, out) = run(&program, args, dir);
    assert!(ok, "{:?} {args:?} failed: {out}", program.as_ref());
    out
}

#[test]
fn the_tarball_holds_a_static_binary_completions_man_pages_and_configs() {
    let Some(dist) = dist() else { return };
    let (Some(man), Some(plistutil)) = (env::program("man"), env::program("plistutil")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tarball = dist.join(format!("medic-{VERSION}-x86_64-linux.tar.gz"));
    must("tar", &["-xzf", &tarball.display().to_string()], dir.path());
    let root = dir.path().join(format!("medic-{VERSION}-x86_64-linux"));

    let file = must("file", &["-b", "medic"], &root);
    assert!(file.contains("statically linked"), "{file}");
    let version = must(root.join("medic"), &["--version"], &root);
    assert_eq!(version.trim(), format!("medic {VERSION}"));

    // Completions parse in their shells (bash always; zsh and fish where installed).
    must("bash", &["-n", "completions/medic.bash"], &root);
    for (shell, file) in [
        ("zsh", "completions/_medic"),
        ("fish", "completions/medic.fish"),
    ] {
        if let Some(shell) = env::program(shell) {
            must(shell, &["-n", file], &root);
        }
    }
    let completions = std::fs::read_to_string(root.join("completions/medic.bash")).unwrap();
    assert!(completions.contains("completions") && completions.contains("doctor"));

    // Man pages: medic.1 and one per subcommand, rendered by man(1).
    let page = must(&man, &["-l", "-P", "cat", "man/medic.1.gz"], &root);
    assert!(page.contains("medic") && page.contains("doctor"), "{page}");
    let run_page = must(&man, &["-l", "-P", "cat", "man/medic-run.1.gz"], &root);
    assert!(run_page.contains("--config"), "{run_page}");

    // The working config validates; the annotated reference too; the plists parse.
    for config in ["medic.toml", "medic.example.toml"] {
        must(root.join("medic"), &["config", "check", config], &root);
    }
    let plist = root.join("launchd/com.medic.agent.plist");
    must(
        &plistutil,
        &["-i", &plist.display().to_string(), "-o", "/dev/null"],
        &root,
    );
    for unit in [
        "systemd/medic.service",
        "systemd/medic.sysusers",
        "systemd/medic.tmpfiles",
    ] {
        assert!(root.join(unit).is_file(), "{unit} in the tarball");
    }
    // The fleet's pieces, as in the repository (the fleet test runs those).
    for shipped in [
        "prometheus/medic-rules.yml",
        "prometheus/medic-rules.test.yml",
        "prometheus/alertmanager.yml",
        "grafana/medic.json",
    ] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging")
            .join(shipped);
        assert_eq!(
            std::fs::read(root.join(shipped)).ok(),
            std::fs::read(source).ok(),
            "{shipped} in the tarball"
        );
    }

    // The Install text's `medic install systemd --bin /usr/local/bin/medic`, into a scratch root.
    let system = dir.path().join("system");
    must(
        root.join("medic"),
        &[
            "install",
            "systemd",
            "--bin",
            "/usr/local/bin/medic",
            "--root",
            &system.display().to_string(),
        ],
        &root,
    );
    let unit = std::fs::read_to_string(system.join("etc/systemd/system/medic.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/medic run --config /etc/medic/medic.toml"));
    assert_eq!(
        std::fs::read_to_string(system.join("etc/medic/medic.toml")).unwrap(),
        std::fs::read_to_string(root.join("medic.toml")).unwrap(),
        "the working config, as in the packages"
    );
}

#[test]
fn the_checksums_cover_every_artefact() {
    let Some(dist) = dist() else { return };
    let sums = must("sha256sum", &["-c", "SHA256SUMS"], &dist);
    for name in [
        format!("medic_{VERSION}-1_amd64.deb"),
        format!("medic-{VERSION}-x86_64-linux.tar.gz"),
        format!("medic-{VERSION}.tar.gz"),
        "medic.rb".to_owned(),
    ] {
        assert!(sums.contains(&format!("{name}: OK")), "{name}: {sums}");
    }
}

/// The image as the Install text runs it: the engine's socket mounted, state
/// in a volume. It restores a killed labelled container and answers
/// `docker exec … medic status`; its HEALTHCHECK (`medic ping`) turns healthy.
#[test]
fn the_image_brings_a_killed_labelled_container_back() {
    let Some(dist) = dist() else { return };
    let Some(engine) = Engine::get() else { return };
    let image = dist.join(format!("medic-{VERSION}-image.tar"));
    let socket = engine
        .host()
        .strip_prefix("unix://")
        .expect("the test engine listens on a unix socket")
        .to_owned();
    let medic = unique("image-medic");
    let web = unique("image-web");
    let volume = unique("image-state");
    let _cleanup = Cleanup(&engine, vec![medic.clone(), web.clone()]);
    let _volume = RemoveVolume(&engine, volume.clone());

    engine.run(&["load", "-i", &image.display().to_string()]);
    let port = free_port();
    engine.run_on_host(
        &web,
        &[
            "-l",
            "medic.enable=true",
            "-e",
            &format!("PORT={port}"),
            "medic-test/good:1",
        ],
    );
    // The Install text's command, word for word (no `--network host`: medic
    // needs only the socket, and the host's 127.0.0.1:9464 stays free).
    engine.run(&[
        "run",
        "-d",
        "--name",
        &medic,
        "--restart",
        "unless-stopped",
        "-v",
        &format!("{socket}:/var/run/docker.sock"),
        "-v",
        &format!("{volume}:/var/lib/medic"),
        &format!("medic:{VERSION}"),
    ]);
    let status = |args: &[&str]| {
        let mut all = vec!["exec", medic.as_str(), "medic", "status"];
        all.extend(args);
        engine.try_run(&all)
    };
    let healthy = |out: &str| {
        let json: Value = serde_json::from_str(out).ok()?;
        json["services"]
            .as_array()?
            .iter()
            .any(|s| {
                s["name"].as_str().is_some_and(|n| n.contains(&web)) && s["health"] == "healthy"
            })
            .then_some(())
    };
    eventually("the labelled container healthy in medic's status", || {
        healthy(&status(&["--json"]).1)
    });
    let (ok, table) = status(&[]);
    assert!(
        ok && table.contains(&web),
        "docker exec medic medic status: {table}"
    );

    let started = engine.inspect(&web).unwrap()["State"]["StartedAt"].clone();
    engine.run(&["kill", &web]);
    eventually("medic to start the killed container again", || {
        let state = engine.inspect(&web)?["State"].clone();
        (state["Running"] == true && state["StartedAt"] != started).then_some(())
    });
    eventually("healthy again after the restart", || {
        healthy(&status(&["--json"]).1)
    });

    // The HEALTHCHECK's first run comes one interval (30 s) after the start.
    let health = eventually("the image's HEALTHCHECK to report", || {
        let state = engine.inspect(&medic)?["State"]["Health"]["Status"].clone();
        (state != "starting").then_some(state)
    });
    assert_eq!(health, "healthy", "{:?}", engine.inspect(&medic));
}

/// Removes a Docker volume when dropped.
struct RemoveVolume<'a>(&'a Engine, String);

impl Drop for RemoveVolume<'_> {
    fn drop(&mut self) {
        self.0.try_run(&["volume", "rm", "-f", &self.1]);
    }
}

/// The formula scripts/package wrote: valid Ruby, the archive's own sha256,
/// and the same paths as `medic install launchd` under the same prefix.
#[test]
fn the_formula_matches_its_archive_and_install_launchd() {
    let Some(dist) = dist() else { return };
    let (Some(ruby), Some(plistutil)) = (env::program("ruby"), env::program("plistutil")) else {
        return;
    };
    must(&ruby, &["-c", "medic.rb"], &dist);
    let formula = std::fs::read_to_string(dist.join("medic.rb")).unwrap();
    let archive = format!("medic-{VERSION}.tar.gz");
    let sum = must("sha256sum", &[&archive], &dist);
    let sum = sum.split_whitespace().next().unwrap();
    assert!(formula.contains(&format!("sha256 \"{sum}\"")), "{formula}");
    assert!(
        formula.contains(&format!("/v{VERSION}/{archive}\"")),
        "{formula}"
    );
    assert!(!formula.contains("@VERSION@") && !formula.contains("@SHA256@"));

    // `medic install launchd` run from <prefix>/bin/medic, as Homebrew links it.
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("homebrew");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::copy(bin("medic"), prefix.join("bin/medic")).unwrap();
    let agents = dir.path().join("LaunchAgents");
    must(
        prefix.join("bin/medic"),
        &["install", "launchd", "--dir", &agents.display().to_string()],
        dir.path(),
    );
    let plist_path = agents.join("com.medic.agent.plist");
    must(
        &plistutil,
        &["-i", &plist_path.display().to_string(), "-o", "/dev/null"],
        dir.path(),
    );
    let plist = plist::Value::from_file(&plist_path).unwrap();
    let plist = plist.as_dictionary().unwrap();
    let text = |key: &str| plist[key].as_string().unwrap().to_owned();
    let arguments: Vec<&str> = plist["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    let under = |path: &str| prefix.join(path).display().to_string();
    assert_eq!(
        arguments,
        [
            &under("bin/medic"),
            "run",
            "--config",
            &under("etc/medic/medic.toml")
        ]
    );
    // The formula's Ruby paths, read as a prefix-relative path each.
    let mut ruby_paths = Vec::new();
    for dir in ["etc", "var"] {
        let opening = format!("{dir}/\"");
        for (at, _) in formula.match_indices(&opening) {
            let rest = &formula[at + opening.len()..];
            ruby_paths.push(format!("{dir}/{}", &rest[..rest.find('"').unwrap()]));
        }
    }
    for (key, wanted) in [
        ("StandardOutPath", "var/log/medic/medic.out.log"),
        ("StandardErrorPath", "var/log/medic/medic.err.log"),
    ] {
        assert_eq!(text(key), under(wanted));
        assert!(
            ruby_paths.iter().any(|p| p == wanted),
            "{wanted} in {ruby_paths:?}"
        );
    }
    assert!(
        ruby_paths.iter().any(|p| p == "etc/medic/medic.toml"),
        "{ruby_paths:?}"
    );
    assert!(
        ruby_paths.iter().any(|p| p == "var/lib/medic"),
        "{ruby_paths:?}"
    );
    assert!(
        ruby_paths.iter().any(|p| p == "var/run/medic"),
        "{ruby_paths:?}"
    );

    // The config the formula installs (its inreplace applied) validates and
    // keeps state and socket under var.
    let config = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/medic.toml"),
    )
    .unwrap()
    .replace("/var/lib/medic", &under("var/lib/medic"))
    .replace("/run/medic", &under("var/run/medic"));
    let installed = prefix.join("etc/medic/medic.toml");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::write(&installed, config).unwrap();
    // Found there without --config: the install prefix's etc.
    let which = must(prefix.join("bin/medic"), &["config", "path"], dir.path());
    assert!(
        which.starts_with(&installed.display().to_string()),
        "{which}"
    );
    must(prefix.join("bin/medic"), &["config", "check"], dir.path());
}
