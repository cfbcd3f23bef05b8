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

fn every_input_of(target: &str, body: fn(&[u8])) {
    let (files, seeded) = inputs(target);
    assert!(seeded > 0, "{target} has seeds");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} breaks an invariant",
            f.display()
        );
    }
}

macro_rules! targets {
    ($($test:ident: $target:ident,)*) => {$(
        #[test]
        fn $test() {
            every_input_of(stringify!($target), kiroku::fuzzing::$target);
        }
    )*};
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
