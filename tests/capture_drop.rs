//! A capture dropped without `finish` (a handler that panicked, a bug upstream) still ends and
//! is recorded, gives its concurrency slot back, and, on an async worker, is concluded by a
//! thread of its own instead of joining the capture thread there.

mod common;

use std::time::{Duration, Instant};

use common::{app, fixtures, interviews};
use kiroku::catalog::InterviewState;
use kiroku::consent::Scope;

#[test]
fn a_capture_dropped_on_an_async_worker_still_ends_as_client_gone_and_frees_its_slot() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |cfg| {
        cfg.limits.max_concurrent_interviews = 1
    });
    let (created, cap) = interviews::start(&app, &c, "video/webm").unwrap();
    let media = fixtures::read("interview-vp8-opus.webm");
    let feeder = cap.feeder();
    for piece in media[..media.len() / 2].chunks(10_000) {
        feeder.push(piece.to_vec());
    }
    assert!(app.take_capture_slot().is_none(), "the one slot is held");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move { drop(cap) });
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let row = app
            .catalog
            .interview(&created.interview_id)
            .unwrap()
            .unwrap();
        if row.state.is_ended() || Instant::now() > deadline {
            break row;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(row.state, InterviewState::Stopped);
    assert_eq!(row.end_reason.as_deref(), Some("client_gone"));
    let slot = loop {
        match app.take_capture_slot() {
            Some(s) => break Some(s),
            None if Instant::now() > deadline => break None,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert!(slot.is_some(), "the dropped capture's slot was given back");
}
