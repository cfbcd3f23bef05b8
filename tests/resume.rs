//! A stream whose connection drops is resumed: one interview, one recording, no gap and no
//! duplicate; and the resume refusals (too late, another interview's credential, a wrong
//! offset) change nothing.

mod common;

use std::time::Duration;

use common::fixtures;
use common::server::{self, As, Server};
use common::ws::{Ws, connect, finish, read_to_close};
use futures_util::{SinkExt, StreamExt};
use kiroku::config::Config;
use kiroku::ids::InterviewId;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

async fn server(tweak: impl FnOnce(&mut Config)) -> Server {
    server::start_ready(tweak).await
}

/// A created interview: (id, ingest token, resume token).
async fn interview(s: &Server) -> (String, String, String) {
    let i = s.create_interview().await;
    (i.id, i.ingest_token, i.resume_token)
}

fn resume_url(s: &Server, id: &str, resume: &str, offset: Option<u64>) -> String {
    let mut url = format!(
        "{}/v1/interviews/{id}/stream?resume={resume}",
        s.base.replacen("http", "ws", 1)
    );
    if let Some(n) = offset {
        url += &format!("&offset={n}");
    }
    url
}

async fn show(s: &Server, id: &str) -> Value {
    s.status(id).await
}

/// Streams `media` in 16 KiB messages until the first media segment is acknowledged, then
/// drops the connection without `finish` (a close frame, as a browser losing its page would
/// not even send: the server treats both alike).
async fn stream_then_drop(ws: &mut Ws, media: &[u8]) {
    for chunk in media.chunks(16_384) {
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(30), ws.next()).await
        {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "segment.stored" && v["segment"]["index"] == 1 {
                assert!(v["received_bytes"].as_u64().unwrap() > 0, "{v}");
                let _ = ws.close(None).await;
                return;
            }
        }
    }
    panic!("no media segment was acknowledged before the media ran out");
}

/// The first message on a resumed socket: how many bytes the server holds.
async fn resumed(ws: &mut Ws) -> u64 {
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Text(t) = msg else {
        panic!("expected stream.resumed, got {msg:?}")
    };
    let v: Value = serde_json::from_str(t.as_str()).unwrap();
    assert_eq!(v["type"], "stream.resumed", "{v}");
    v["received_bytes"].as_u64().unwrap()
}

/// The connection drops after the first segment; 2 s later the client reconnects with its
/// resume token, learns how many bytes the server holds and resends from there: one
/// interview, finished, whose export decodes to every frame of the input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_after_its_connection_dropped_is_one_recording_with_every_frame() {
    let s = server(|_| {}).await;
    let (id, token, resume) = interview(&s).await;
    let media = fixtures::read("interview-vp8-opus.webm");
    let mut ws = s.connect(&id, &token).await;
    stream_then_drop(&mut ws, &media).await;
    drop(ws);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        show(&s, &id).await["state"],
        "capturing",
        "kept for a resume"
    );
    let mut ws = connect(&resume_url(&s, &id, &resume, None)).await;
    let held = resumed(&mut ws).await as usize;
    assert!(held > 0 && held < media.len(), "{held}");
    for chunk in media[held..].chunks(16_384) {
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
    }
    let (texts, code) = finish(&mut ws).await;
    assert_eq!(code, 1000, "{texts:?}");
    let ended = texts.last().unwrap();
    assert_eq!(ended["state"], "finished", "{ended}");
    assert_eq!(
        ended["bytes_in"],
        media.len() as u64,
        "no byte twice, none missing"
    );
    s.assert_exports_as(&id, "interview-vp8-opus.webm");
}

/// Resuming from another offset than the server holds is refused (4409, naming the right
/// one) and changes nothing: the same stream then resumes from the right offset and the
/// recording is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_a_wrong_offset_is_refused_without_corrupting_anything() {
    let s = server(|_| {}).await;
    let (id, token, resume) = interview(&s).await;
    let media = fixtures::read("interview-vp8-opus.webm");
    let mut ws = s.connect(&id, &token).await;
    stream_then_drop(&mut ws, &media).await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut probe = connect(&resume_url(&s, &id, &resume, None)).await;
    let held = resumed(&mut probe).await;
    drop(probe); // dropped again: parked again
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut wrong = connect(&resume_url(&s, &id, &resume, Some(held + 5))).await;
    assert_eq!(resumed(&mut wrong).await, held);
    let (texts, code) = read_to_close(&mut wrong).await;
    assert_eq!(code, 4409, "{texts:?}");
    assert_eq!(texts[0]["error"], "resume_offset_mismatch");
    assert_eq!(texts[0]["received_bytes"], held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut right = connect(&resume_url(&s, &id, &resume, Some(held))).await;
    assert_eq!(resumed(&mut right).await, held);
    for chunk in media[held as usize..].chunks(16_384) {
        right.send(Message::binary(chunk.to_vec())).await.unwrap();
    }
    let (texts, code) = finish(&mut right).await;
    assert_eq!(code, 1000, "{texts:?}");
    s.assert_exports_as(&id, "interview-vp8-opus.webm");
}

/// Past the grace period the interview has ended as `client_gone`, its acknowledged segments
/// kept, and a resume is refused; a resume with another interview's credential is refused
/// while the right one would still be in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_resume_or_another_interviews_credential_is_refused() {
    let s = server(|c| c.resume_grace_seconds = 2).await;
    let (id, token, resume) = interview(&s).await;
    let (_, _, other_resume) = interview(&s).await;
    let media = fixtures::read("interview-vp8-opus.webm");
    let mut ws = s.connect(&id, &token).await;
    stream_then_drop(&mut ws, &media).await;
    drop(ws);
    let foreign = tokio_tungstenite::connect_async(resume_url(&s, &id, &other_resume, None))
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(r) = foreign else {
        panic!("{foreign}")
    };
    assert_eq!(r.status().as_u16(), 401);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = show(&s, &id).await;
    assert_eq!(v["state"], "stopped", "{v}");
    assert_eq!(v["end_reason"], "client_gone", "{v}");
    assert!(v["segments"].as_array().unwrap().len() >= 2, "{v}");
    let late = tokio_tungstenite::connect_async(resume_url(&s, &id, &resume, None))
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(r) = late else {
        panic!("{late}")
    };
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = serde_json::from_slice(r.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"], "not_resumable");
    assert!(kiroku::recording::rebuild(&s.app, &InterviewId::parse(&id).unwrap()).is_ok());
}

/// `finish` from the front-end's backend ends a stream that is waiting for its client: the
/// interview finishes cleanly with what it holds, without waiting for the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_ends_a_dropped_stream_without_waiting_for_the_grace_period() {
    let s = server(|_| {}).await;
    let (id, token, _) = interview(&s).await;
    let media = fixtures::read("interview-vp8-opus.webm");
    let mut ws = s.connect(&id, &token).await;
    stream_then_drop(&mut ws, &media).await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, v) = s
        .call(
            "POST",
            &format!("/v1/interviews/{id}/finish"),
            As::Service,
            None,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let shown = s.wait_until_ended(&id, Duration::from_secs(5)).await;
    assert_eq!(shown["state"], "finished", "{shown}");
    assert!(kiroku::recording::rebuild(&s.app, &InterviewId::parse(&id).unwrap()).is_ok());
}

/// An upload (chunked PUT) cut off mid-body waits like a dropped WebSocket. The client asks to
/// resume from a guess and is told, in a 409, how many bytes the server holds; a PUT of the
/// rest from there finishes one recording with every frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_mid_body_is_resumed_from_the_offset_the_server_holds() {
    use tokio::io::AsyncWriteExt;
    let s = server(|_| {}).await;
    let (id, token, resume) = interview(&s).await;
    let media = fixtures::read("interview-vp8-opus.webm");
    let cut = media.len() / 2;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /v1/interviews/{id}/media HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: video/webm\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    for chunk in media[..cut].chunks(8192) {
        tcp.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        tcp.write_all(chunk).await.unwrap();
        tcp.write_all(b"\r\n").await.unwrap();
    }
    tcp.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(tcp); // the network goes, mid-body
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        show(&s, &id).await["state"],
        "capturing",
        "kept for a resume"
    );
    // A connection of its own for each PUT: the server answers a refused one before reading
    // its body and closes that connection, so it cannot be reused.
    let put = |offset: usize, body: Vec<u8>| {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
            .put(format!(
                "{}/v1/interviews/{id}/media?resume={resume}&offset={offset}",
                s.base
            ))
            .body(body)
            .send()
    };
    let guess = put(0, media.clone()).await.unwrap();
    assert_eq!(guess.status().as_u16(), 409);
    let v: Value = guess.json().await.unwrap();
    assert_eq!(v["error"], "resume_offset_mismatch", "{v}");
    let held = v["received_bytes"].as_u64().unwrap() as usize;
    assert!(held > 0 && held <= cut, "{held} of {cut} sent");
    let done = put(held, media[held..].to_vec()).await.unwrap();
    assert_eq!(done.status().as_u16(), 200);
    let v: Value = done.json().await.unwrap();
    assert_eq!(v["state"], "finished", "{v}");
    assert_eq!(v["bytes_in"], media.len() as u64, "{v}");
    s.assert_exports_as(&id, "interview-vp8-opus.webm");
}

/// A shutdown ends a stream that is waiting for its client as `finish` would: finished, with
/// what it holds, not `client_gone` after the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_a_dropped_stream_cleanly() {
    let s = server(|_| {}).await;
    let (id, token, _) = interview(&s).await;
    let media = fixtures::read("interview-vp8-opus.webm");
    let mut ws = s.connect(&id, &token).await;
    stream_then_drop(&mut ws, &media).await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(show(&s, &id).await["state"], "capturing");
    s.app.shutdown();
    let shown = s.wait_until_ended(&id, Duration::from_secs(5)).await;
    assert_eq!(shown["state"], "finished", "{shown}");
    assert!(kiroku::recording::rebuild(&s.app, &InterviewId::parse(&id).unwrap()).is_ok());
}
