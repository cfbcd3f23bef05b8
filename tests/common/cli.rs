//! The `kiroku` binary as operators and scripts run it.

use std::path::Path;
use std::process::{Command, Output};

/// The `kiroku` binary, run from the project's folder with `--data-dir data`.
pub fn kiroku_cmd(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiroku"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("KIROKU_KEYS__DIR", data.join("keyring"))
        .arg("--data-dir")
        .arg(data);
    if super::postgres::whole_suite() {
        cmd.env("KIROKU_CATALOG", super::postgres::catalog_url_for(data))
            .env(
                "KIROKU_KEYS__DATABASE",
                super::postgres::keyring_url_for(data),
            );
    }
    cmd
}

/// The last line of a successful command's stdout (where commands print the id they made).
pub fn last_line(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string()
}

/// Runs `kiroku <args>` on `data` and returns the last line it printed; fails on an error.
pub fn run(data: &Path, args: &[&str]) -> String {
    run_with(data, args, &[])
}

/// [`run`] with extra environment variables (config values given as `KIROKU_…`).
pub fn run_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    last_line(
        &kiroku_cmd(data)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap(),
    )
}

/// `kiroku candidate add`: a candidate living in Japan; returns its id.
pub fn add_candidate(data: &Path, external_ref: &str) -> String {
    add_candidate_by(|args| run(data, args), external_ref)
}

/// [`add_candidate`] through `run` (a command line that returns its last line).
pub fn add_candidate_by(run: impl Fn(&[&str]) -> String, external_ref: &str) -> String {
    run(&[
        "candidate",
        "add",
        "--ref",
        external_ref,
        "--home-country",
        "JP",
    ])
}

/// A candidate in Japan who granted `record`, after the privacy setup: its id.
pub fn recorded_candidate(data: &Path, external_ref: &str) -> String {
    recorded_candidate_by(|args| run(data, args), external_ref)
}

/// [`recorded_candidate`] through `run` (a command line that returns its last line): for
/// tests that run kiroku their own way (another config, another node).
pub fn recorded_candidate_by(run: impl Fn(&[&str]) -> String, external_ref: &str) -> String {
    let candidate = add_candidate_by(&run, external_ref);
    privacy_basics_by(&run);
    run(&[
        "consent",
        "grant",
        "--candidate",
        &candidate,
        "--scope",
        "record",
    ]);
    candidate
}

/// `kiroku consent grant` of `scope` for `candidate`, with `extra` arguments; returns the
/// consent id.
pub fn grant(data: &Path, candidate: &str, scope: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "consent",
        "grant",
        "--candidate",
        candidate,
        "--scope",
        scope,
    ];
    args.extend_from_slice(extra);
    run(data, &args)
}

/// The privacy setup every capture needs (see [`super::app::privacy_basics`]), through the
/// command line, for tests that drive the binary.
pub fn privacy_basics(data: &Path) {
    privacy_basics_by(|args| run(data, args));
}

/// The privacy setup through `run` (a command line that returns its last line): for tests
/// that run kiroku their own way (another config, another node).
pub fn privacy_basics_by(run: impl Fn(&[&str]) -> String) {
    run(&[
        "notice",
        "add",
        "--id",
        "notice-2026-04",
        "--language",
        "ja",
        "--url",
        "https://example.invalid/privacy/2026-04",
        "--sha256",
        &"ab".repeat(32),
    ]);
    let key = run(&["recruiter", "add", "acme"]);
    assert!(key.starts_with("krk_"), "{key}");
}
