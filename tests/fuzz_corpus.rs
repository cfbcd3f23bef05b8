//! Every saved input of every fuzz target, through the target's body
//! (`kiroku::fuzzing`), on the stable toolchain: the seeds `fuzz/seeds.sh` makes from the
//! fixtures, each regression fuzzing found (`fuzz/regressions/<target>/`, named after its
//! fault), and a local working corpus (`fuzz/corpus/<target>/`) when one is there. A target's
//! body panics when an invariant fails, so each test is the claim that every input holds them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The seeds, made once per run into a folder of their own.
fn seeds() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(dir.path())
            .output()
            .expect("bash runs fuzz/seeds.sh");
        assert!(
            out.status.success(),
            "fuzz/seeds.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

/// Every saved input of `target`, and how many there are of each kind.
fn inputs(target: &str) -> (Vec<PathBuf>, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    let mut seeded = 0;
    for (i, dir) in [
        seeds().join(target),
        root.join("regressions").join(target),
        root.join("corpus").join(target),
    ]
    .iter()
    .enumerate()
    {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() && path.file_name().is_some_and(|n| n != ".gitkeep") {
                files.push(path);
                seeded += usize::from(i == 0);
            }
        }
    }
    files.sort();
    (files, seeded)
}

/// libFuzzer's own line for a slow unit is 10 s, optimised; the suite runs unoptimised.
const SLOW: std::time::Duration = std::time::Duration::from_secs(5);

fn every_input_of(target: &str, body: fn(&[u8])) {
    let (files, seeded) = inputs(target);
    assert!(seeded > 0, "{target} has seeds");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let began = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} breaks an invariant",
            f.display()
        );
        // Some findings are slow units (minutes of CPU from a few bytes); each input takes
        // milliseconds, even unoptimised, so one that takes seconds has regressed.
        let took = began.elapsed();
        assert!(
            took < SLOW,
            "{target}: {} took {took:?}, a slow unit",
            f.display()
        );
    }
}

macro_rules! targets {
    ($($test:ident: $target:ident,)*) => {
        $(
            #[test]
            fn $test() {
                every_input_of(stringify!($target), kiroku::fuzzing::$target);
            }
        )*
        /// Every target's name, each a `fn(&[u8])` in `kiroku::fuzzing` (the tests above
        /// would not build otherwise).
        const TARGETS: &[&str] = &[$(stringify!($target)),*];
    };
}

targets! {
    every_saved_matroska_stream_cuts_back_into_itself: ebml_cutter,
    every_saved_mp4_stream_cuts_back_into_itself: mp4_cutter,
    every_saved_stream_scans_alike_however_it_is_split: input_scan,
    every_saved_webm_remuxes_alike_and_cuts: webm_remuxer,
    every_saved_sealed_object_opens_to_what_was_sealed_or_fails_by_name: sealed_object,
    every_saved_manifest_names_its_interview: manifest,
    every_saved_range_lies_inside_the_recording: byte_range,
    every_saved_live_header_finishes_to_a_segment_of_the_right_size: finished_header,
    every_saved_whip_offer_is_answered_or_refused: whip_offer,
    every_saved_receipt_fails_under_a_key_that_never_signed: receipt,
    every_saved_audit_log_fails_or_verifies_without_checkpoints: audit_log,
}

/// CI checks that the fuzz targets compile (`cargo check` of `fuzz/` in `scripts/test.sh`) but
/// does not build the libFuzzer binaries (README: Fuzzing). This keeps the rest in line: each
/// target is the one line that calls its body, so the saved inputs the suite runs through the
/// bodies are run through what the fuzzer runs, and `fuzz/Cargo.toml`, `fuzz/fuzz_targets/`,
/// `scripts/fuzz.sh` and this file name the same targets.
#[test]
fn every_fuzz_target_is_the_one_line_calling_a_body_the_suite_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut expected: Vec<&str> = TARGETS.to_vec();
    expected.sort();

    let mut files = Vec::new();
    for e in std::fs::read_dir(root.join("fuzz/fuzz_targets")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let code: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
            .map(str::to_string)
            .collect();
        assert_eq!(
            code,
            [
                "#![no_main]".to_string(),
                format!(
                    "libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::{name}(data));"
                ),
            ],
            "{} is the one line calling its body",
            path.display()
        );
        files.push(name);
    }
    files.sort();
    assert_eq!(
        files, expected,
        "fuzz/fuzz_targets/ holds a target per body"
    );

    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let mut bins: Vec<String> = manifest
        .split("[[bin]]")
        .skip(1)
        .map(|bin| {
            let name = bin
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .expect("a [[bin]] has a name");
            let name = name.trim_matches('"').to_string();
            assert!(
                bin.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
                "fuzz/Cargo.toml builds {name} from its own file"
            );
            name
        })
        .collect();
    bins.sort();
    assert_eq!(bins, expected, "fuzz/Cargo.toml builds every target");

    let script = std::fs::read_to_string(root.join("scripts/fuzz.sh")).unwrap();
    let list = script
        .split("targets=(")
        .nth(2)
        .and_then(|rest| rest.split(')').next())
        .expect("scripts/fuzz.sh lists its default targets");
    let mut listed: Vec<&str> = list.split_whitespace().collect();
    listed.sort();
    assert_eq!(listed, expected, "make fuzz runs every target");
}

/// The `name = …` and `version = …` of every package in a `Cargo.lock`, sorted.
fn locked_packages(lock: &str) -> Vec<(String, String)> {
    let mut packages: Vec<(String, String)> = lock
        .split("[[package]]")
        .skip(1)
        .map(|p| {
            let field = |key: &str| {
                p.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim_matches('"').to_string())
                    .expect("a locked package has a name and a version")
            };
            (field("name = "), field("version = "))
        })
        .collect();
    packages.sort();
    packages
}

/// The fuzzer runs the dependencies kiroku ships with: `fuzz/Cargo.lock` is kiroku's own with
/// libFuzzer's crates added (and the dev-dependencies' left out), not a lock of its own that
/// drifts. After `cargo update`, copy `Cargo.lock` to `fuzz/` and check `fuzz/` once.
#[test]
fn the_fuzz_lock_holds_the_versions_of_kirokus_lock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kiroku = locked_packages(&std::fs::read_to_string(root.join("Cargo.lock")).unwrap());
    let fuzz = locked_packages(&std::fs::read_to_string(root.join("fuzz/Cargo.lock")).unwrap());
    let fuzz_only = ["arbitrary", "kiroku-fuzz", "libfuzzer-sys"];
    let differing: Vec<&(String, String)> = fuzz
        .iter()
        .filter(|p| !fuzz_only.contains(&p.0.as_str()) && !kiroku.contains(p))
        .collect();
    assert!(
        differing.is_empty(),
        "fuzz/Cargo.lock locks what Cargo.lock does not: {differing:?}"
    );
    assert!(
        fuzz.iter().any(|p| p.0 == "libfuzzer-sys"),
        "fuzz/Cargo.lock locks libfuzzer-sys"
    );
}
