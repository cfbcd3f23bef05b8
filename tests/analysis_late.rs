//! Analysis that does not start with a stream: an `analyze` grant given after the interview
//! was captured, and `kiroku ingest` of a file under a standing `analyze` consent. Both must
//! analyse the stored interview off the capture path, like a streamed interview.

mod common;

use std::sync::Arc;

use common::{app, candidates, cli, fixtures, interviews};
use kiroku::app::Kiroku;
use kiroku::capture::Pushed;
use kiroku::consent::Scope;
use kiroku::ids::{CandidateId, InterviewId};

const SPEECH: &str = "analysis/speech-pauses.webm";

fn capture_without_analyze(app: &Arc<Kiroku>, c: &CandidateId) -> InterviewId {
    let (created, cap) = interviews::start(app, c, "audio/webm").unwrap();
    let feeder = cap.feeder();
    for piece in fixtures::read(SPEECH).chunks(64 * 1024) {
        assert_eq!(feeder.push(piece.to_vec()), Pushed::Accepted);
    }
    let outcome = cap.finish();
    assert!(outcome.reason.is_none(), "{:?}", outcome.reason);
    created.interview_id
}

fn whole_report_exists(app: &Kiroku, id: &InterviewId) -> bool {
    app.catalog.analysis_outputs(id).unwrap().iter().any(|o| {
        o.analyzer == kiroku::analysis::BUILTIN
            && o.segment.is_none()
            && o.status == kiroku::vocab::AnalysisStatus::Ok
    })
}

#[test]
fn an_analyze_grant_after_capture_analyses_the_interview_already_captured() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let id = capture_without_analyze(&app, &c);
    app.background.wait();
    assert!(
        app.catalog.analysis_outputs(&id).unwrap().is_empty(),
        "nothing is analysed without `analyze`"
    );

    candidates::grant(&app, &c, Scope::Analyze);
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
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let id = capture_without_analyze(&app, &c);
    candidates::grant(&app, &c, Scope::Analyze);
    app.background.wait();
    let first = app.catalog.analysis_outputs(&id).unwrap().len();
    assert!(first > 0);

    candidates::withdraw(&app, &c, Scope::Analyze);
    candidates::grant(&app, &c, Scope::Analyze);
    app.background.wait();

    assert_eq!(app.catalog.analysis_outputs(&id).unwrap().len(), first);
}

#[test]
fn kiroku_ingest_under_analyze_consent_analyses_before_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let candidate = cli::add_candidate(d, "c-1");
    cli::privacy_basics(d);
    for scope in ["record", "analyze"] {
        cli::grant(d, &candidate, scope, &[]);
    }
    let interview = cli::run(
        d,
        &[
            "ingest",
            "--candidate",
            &candidate,
            "--recruiter",
            "acme",
            fixtures::path(SPEECH).to_str().unwrap(),
        ],
    );

    // The process has exited: what it analysed is in the catalog now.
    let app = app::open(app::config(d));
    let id = InterviewId::parse(&interview).unwrap();
    assert!(
        whole_report_exists(&app, &id),
        "ingest analysed the interview: {:?}",
        app.catalog.analysis_outputs(&id).unwrap()
    );
}
