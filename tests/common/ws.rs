//! An interview's WebSocket stream as a front-end drives it: connect, send media, read what
//! the server says, finish, read to the close.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::server::Server;

/// A client's end of an interview stream.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The stream URL of interview `id` on the server at `base` (`http://host:port`).
pub fn stream_url(base: &str, id: &str, token: &str) -> String {
    format!(
        "{}/v1/interviews/{id}/stream?token={token}",
        base.replacen("http", "ws", 1)
    )
}

/// A WebSocket opened on `url`; fails the test if the server refuses the upgrade.
pub async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

impl Server {
    /// The stream URL of interview `id` with its ingest token.
    pub fn ws_url(&self, id: &str, token: &str) -> String {
        stream_url(&self.base, id, token)
    }

    /// A WebSocket opened on the interview's stream.
    pub async fn connect(&self, id: &str, token: &str) -> Ws {
        connect(&self.ws_url(id, token)).await
    }
}

/// Sends `media` as binary messages of 16 KiB.
pub async fn send_media(ws: &mut Ws, media: &[u8]) {
    for chunk in media.chunks(16_384) {
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
    }
}

/// Sends chunks until the server has sent `n` messages or the chunks run out; returns how many
/// messages came.
pub async fn send_until_acked(
    ws: &mut Ws,
    chunks: &mut impl Iterator<Item = Vec<u8>>,
    n: usize,
) -> usize {
    let mut acked = 0;
    while acked < n {
        let Some(chunk) = chunks.next() else { break };
        ws.send(Message::binary(chunk)).await.unwrap();
        while let Ok(Some(Ok(Message::Text(_)))) =
            tokio::time::timeout(Duration::from_millis(50), ws.next()).await
        {
            acked += 1;
        }
    }
    acked
}

/// The next text message that is not a segment acknowledgement; fails the test if none comes
/// within 10 s or the socket closes first.
pub async fn next_answer(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server answers")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] != "segment.stored" {
                return v;
            }
        }
    }
}

/// Reads server messages until the socket closes: (text messages, close code; 1005 for a
/// close frame without one, 1006 for a socket that ends without a close frame).
pub async fn read_to_close(ws: &mut Ws) -> (Vec<Value>, u16) {
    let mut texts = Vec::new();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("server answers")
    {
        match msg.unwrap() {
            Message::Text(t) => texts.push(serde_json::from_str(t.as_str()).unwrap()),
            Message::Close(Some(f)) => return (texts, u16::from(f.code)),
            Message::Close(None) => return (texts, 1005),
            _ => {}
        }
    }
    (texts, 1006)
}

/// Ends the stream as a front-end does and reads to the close: (text messages, close code).
pub async fn finish(ws: &mut Ws) -> (Vec<Value>, u16) {
    ws.send(Message::text(r#"{"type":"finish"}"#))
        .await
        .unwrap();
    read_to_close(ws).await
}

/// Sends `chunks` as a browser does, one every `timeslice` in real time (chunk `i` at
/// `(i + 1) × timeslice`, when the recorder would hand it over), while reading what comes
/// back; then finishes. Returns each media segment's acknowledgement lag: when its
/// `segment.stored` arrived, less the moment its last media (`end_ms`) was recorded.
pub async fn stream_in_real_time(
    ws: &mut Ws,
    chunks: Vec<Vec<u8>>,
    timeslice: Duration,
) -> Vec<Duration> {
    let start = tokio::time::Instant::now();
    let mut lags = Vec::new();
    let mut note = |msg: Message| {
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "segment.stored" && v["segment"]["media_kind"] != "header" {
                let recorded =
                    start + Duration::from_millis(v["segment"]["end_ms"].as_u64().unwrap());
                lags.push(tokio::time::Instant::now().saturating_duration_since(recorded));
            }
        }
    };
    for (i, chunk) in chunks.into_iter().enumerate() {
        let due = start + timeslice * (i as u32 + 1);
        while let Ok(Some(msg)) = tokio::time::timeout_at(due, ws.next()).await {
            note(msg.unwrap());
        }
        ws.send(Message::binary(chunk)).await.unwrap();
    }
    ws.send(Message::text(r#"{"type":"finish"}"#))
        .await
        .unwrap();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("the server answers")
    {
        let msg = msg.unwrap();
        if matches!(msg, Message::Close(_)) {
            break;
        }
        note(msg);
    }
    lags
}
