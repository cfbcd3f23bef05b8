//! Analysis that does not start with a stream: an `analyze` grant given after the interview
//! was captured, and `kiroku ingest` of a file under a standing `analyze` consent. Both must
//! analyse the stored interview off the capture path, like a streamed interview.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiroku::app::Kiroku;
use kiroku::capture::{self, Capture, Pushed};
use kiroku::config::Config;
use kiroku::consent::Scope;
use kiroku::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle};

fn speech() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/analysis/speech-pauses.webm")
}

fn app(dir: &Path) -> Arc<Kiroku> {
    let app = kiroku::node::open(Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    })
    .unwrap();
    common::privacy_basics(&app);
    app
}

fn capture_without_analyze(app: &Arc<Kiroku>, c: &CandidateId) -> InterviewId {
    let created = capture::create_interview(
        app,
        c,
        &RecruiterHandle::parse("acme").unwrap(),
        None,
        "audio/webm",
    )
    .unwrap();
    capture::spend_ingest_token(app, &created.interview_id, &created.ingest_token).unwrap();
    let cap = Capture::start(app, &created.interview_id).unwrap();
    let feeder = cap.feeder();
    for piece in std::fs::read(speech()).unwrap().chunks(64 * 1024) {
        assert_eq!(feeder.push(piece.to_vec()), Pushed::Accepted);
    }
    let outcome = cap.finish();
    assert!(outcome.reason.is_none(), "{:?}", outcome.reason);
    created.interview_id
}

fn whole_report_exists(app: &Kiroku, id: &InterviewId) -> bool {
    app.catalog
        .analysis_outputs(id)
        .unwrap()
        .iter()
        .any(|o| o.analyzer == kiroku::analysis::BUILTIN && o.segment.is_none() && o.status == "ok")
}

#[test]
fn an_analyze_grant_after_capture_analyses_the_interview_already_captured() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let c = app
        .catalog
        .add_candidate("ref", &CountryCode::parse("JP").unwrap())
        .unwrap();
    common::grant(&app, &c, Scope::Record);
    let id = capture_without_analyze(&app, &c);
    app.background.wait();
    assert!(
        app.catalog.analysis_outputs(&id).unwrap().is_empty(),
        "nothing is analysed without `analyze`"
    );

    common::grant(&app, &c, Scope::Analyze);
    app.background.wait();

    assert!(
        whole_report_exists(&app, &id),
        "the late grant analysed the interview: {:?}",
        app.catalog.analysis_outputs(&id).unwrap()
    );
    let media_segments = app.catalog.segments(&id).unwrap().len() - 1;
    let per_segment = app
        .catalog
        .analysis_outputs(&id)
        .unwrap()
        .into_iter()
        .filter(|o| o.analyzer == kiroku::analysis::BUILTIN && o.segment.is_some())
        .count();
    assert_eq!(per_segment, media_segments, "one report per media segment");
}

#[test]
fn a_second_analyze_grant_does_not_analyse_an_interview_twice() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let c = app
        .catalog
        .add_candidate("ref", &CountryCode::parse("JP").unwrap())
        .unwrap();
    common::grant(&app, &c, Scope::Record);
    let id = capture_without_analyze(&app, &c);
    common::grant(&app, &c, Scope::Analyze);
    app.background.wait();
    let first = app.catalog.analysis_outputs(&id).unwrap().len();
    assert!(first > 0);

    common::withdraw(&app, &c, Scope::Analyze);
    common::grant(&app, &c, Scope::Analyze);
    app.background.wait();

    assert_eq!(app.catalog.analysis_outputs(&id).unwrap().len(), first);
}

#[test]
fn kiroku_ingest_under_analyze_consent_analyses_before_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let o = common::kiroku_cmd(d).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "kiroku {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        common::last_line(&o)
    };
    let candidate = run(&["candidate", "add", "--ref", "c-1", "--home-country", "JP"]);
    common::cli_privacy_basics(d);
    for scope in ["record", "analyze"] {
        run(&[
            "consent",
            "grant",
            "--candidate",
            &candidate,
            "--scope",
            scope,
        ]);
    }
    let interview = run(&[
        "ingest",
        "--candidate",
        &candidate,
        "--recruiter",
        "acme",
        speech().to_str().unwrap(),
    ]);

    // The process has exited: what it analysed is in the catalog now.
    let app = app(d);
    let id = InterviewId::parse(&interview).unwrap();
    assert!(
        whole_report_exists(&app, &id),
        "ingest analysed the interview: {:?}",
        app.catalog.analysis_outputs(&id).unwrap()
    );
}
