//! Pipeline descriptions ship in the binary: `kiroku` works from any folder, and a configured
//! `pipelines_dir` is read instead, with its path named in any error.

mod common;

use std::path::Path;
use std::process::Output;

use common::cli::last_line;

/// `kiroku` run from `cwd` (not the checkout) on the data dir `data`.
fn kiroku_in(cwd: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::cli::kiroku_cmd(data);
    cmd.current_dir(cwd)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn ingest_works_from_a_folder_without_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let (cwd, data) = (dir.path().join("elsewhere"), dir.path().join("data"));
    std::fs::create_dir_all(&cwd).unwrap();
    assert!(!cwd.join("pipelines").exists());
    let candidate = common::cli::recorded_candidate_by(
        |args| last_line(&kiroku_in(&cwd, &data, args, &[])),
        "cand-1",
    );
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/audio-opus.ogg");
    let interview = last_line(&kiroku_in(
        &cwd,
        &data,
        &[
            "ingest",
            "--candidate",
            &candidate,
            "--recruiter",
            "acme",
            media.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(interview.len(), 36, "{interview}");
}

#[test]
fn a_configured_folder_with_a_broken_description_fails_naming_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("my-pipelines");
    std::fs::create_dir_all(&broken).unwrap();
    let broken_file = broken.join("webm.toml");
    std::fs::write(&broken_file, "description = \"no pipeline here\"\n").unwrap();
    // Every profile there, but not the analysis tap: refused when kiroku opens, naming the
    // tap's file, rather than failing each analysis later.
    let no_tap = dir.path().join("no-tap");
    std::fs::create_dir_all(&no_tap).unwrap();
    for entry in std::fs::read_dir(common::fixtures::pipelines()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, no_tap.join(path.file_name().unwrap())).unwrap();
        }
    }
    let missing = dir.path().join("no-such-folder");
    for (n, (folder, named)) in [
        (&broken, broken_file.clone()),
        (&no_tap, no_tap.join("analysis").join("audio-tap.toml")),
        // A configured folder that is not there is named too, not the built-in ones used.
        (&missing, missing.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let out = kiroku_in(
            dir.path(),
            &dir.path().join("data"),
            &[
                "candidate",
                "add",
                "--ref",
                &format!("cand-{n}"),
                "--home-country",
                "JP",
            ],
            &[("KIROKU_PIPELINES_DIR", folder.to_str().unwrap())],
        );
        assert!(!out.status.success(), "{}", folder.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named.to_str().unwrap()), "{err}");
    }
}
