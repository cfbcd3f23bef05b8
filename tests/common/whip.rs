//! A WHIP client that is not a browser: kiroku's own loopback publisher (a test pattern and a
//! tone, VP8 or H.264, packets dropped if asked) with the HTTP side of RFC 9725 done here:
//! POST the offer, apply the answer, DELETE the session.

use kiroku::segment::{WhipPublisher, WhipSource};

/// A publishing session.
pub struct WhipClient {
    publisher: Option<WhipPublisher>,
    /// The session's absolute URL (from the answer's `Location`).
    pub location: String,
    /// The SDP answer kiroku gave.
    pub answer: String,
    token: String,
}

/// What kiroku said to an offer that it did not answer with 201.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

/// Publishes VP8 and Opus to `url` (`…/v1/interviews/{id}/whip`) with `token`, losing `loss`
/// of each stream's RTP packets. Blocks until kiroku answered and the session connected.
pub fn publish(url: &str, token: &str, loss: f64) -> Result<WhipClient, Refused> {
    publish_from(
        url,
        token,
        WhipSource::TestPattern {
            h264: false,
            video_loss: loss,
            audio_loss: loss,
        },
    )
}

/// Publishes `source` to `url` with `token`.
pub fn publish_from(url: &str, token: &str, source: WhipSource<'_>) -> Result<WhipClient, Refused> {
    let (publisher, offer) = WhipPublisher::offer(source).unwrap();
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().unwrap();
    if status != 201 {
        return Err(Refused { status, body });
    }
    let location = url::Url::parse(url)
        .unwrap()
        .join(&location.expect("a 201 carries Location"))
        .unwrap()
        .to_string();
    publisher.answer(&body).unwrap();
    Ok(WhipClient {
        publisher: Some(publisher),
        location,
        answer: body,
        token: token.to_string(),
    })
}

impl WhipClient {
    /// `DELETE` on the session with `token`: the status.
    pub fn delete_with(&self, token: &str) -> u16 {
        reqwest::blocking::Client::new()
            .delete(&self.location)
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    /// Ends the session as a WHIP client should: `DELETE`, then stop sending.
    pub fn finish(mut self) -> u16 {
        let status = self.delete_with(&self.token);
        self.publisher.take();
        status
    }

    /// Stops sending without a `DELETE` (a closed tab, a lost network).
    pub fn vanish(mut self) {
        self.publisher.take();
    }
}
