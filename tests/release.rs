//! Consent-gated release to recruiters over HTTP: the whole story, the push deliveries, who
//! may call what, and every kind of bad input.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use common::server::{self, As, Server};
use kiroku::config::Config;
use serde_json::{Value, json};

/// A served kiroku whose webhooks may go to loopback and give up fast, with its push
/// deliveries running; `tweak` applied.
async fn server(tweak: impl FnOnce(&mut Config)) -> Server {
    let s = server::start(|cfg| {
        cfg.webhooks.allow_private_addresses = true;
        cfg.webhooks.timeout_seconds = 1;
        cfg.webhooks.backoff_base_seconds = 1;
        tweak(cfg);
    })
    .await;
    tokio::spawn(kiroku::delivery::run(s.app.clone()));
    s
}

impl Server {
    /// How many entries of `event` the audit log holds.
    fn audit_count(&self, event: &str) -> usize {
        self.audit_events()
            .iter()
            .filter(|e| e["event"] == event)
            .count()
    }

    /// Operator setup: a notice and a recruiter; returns the recruiter's API key.
    async fn recruiter(&self, handle: &str) -> String {
        let (st, _) = self
            .call(
                "POST",
                "/v1/admin/notices",
                As::Operator,
                Some(json!({"id": "notice-v1", "language": "ja", "url": "https://example.invalid/privacy/v1", "text_sha256": "cd".repeat(32)})),
            )
            .await;
        assert!(st == 201 || st == 409, "{st}");
        let (st, v) = self
            .call(
                "POST",
                "/v1/admin/recruiters",
                As::Operator,
                Some(json!({"handle": handle})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["api_key"].as_str().unwrap().to_string()
    }

    async fn candidate(&self) -> String {
        let (st, v) = self
            .call(
                "POST",
                "/v1/candidates",
                As::Service,
                Some(json!({"external_ref": "applicant-8841", "home_country": "JP"})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["candidate_id"].as_str().unwrap().to_string()
    }

    /// Grants as the front-end collected it (`record`, `analyze`, ...), or, for `share.*`
    /// and `transfer`, as the candidate in their own session: the one online road for those.
    async fn grant(&self, c: &str, body: Value) -> Value {
        let scope = body["scope"].as_str().unwrap_or_default();
        let (st, v) = if scope.starts_with("share.") || scope == "transfer" {
            // A candidate's page offers sharing with the company its link names.
            let me = self.candidate_session(c, body["recipient"].as_str()).await;
            self.call("POST", "/v1/me/consents", As::Page(&me), Some(body))
                .await
        } else {
            self.call(
                "POST",
                &format!("/v1/candidates/{c}/consents"),
                As::Service,
                Some(body),
            )
            .await
        };
        assert_eq!(st, 201, "{v}");
        v
    }

    /// Withdraws the consent `id` of candidate `c` as the service: (status, body).
    async fn withdraw(&self, c: &str, id: &str) -> (u16, Value) {
        let path = format!("/v1/candidates/{c}/consents/{id}/withdraw");
        self.call("POST", &path, As::Service, None).await
    }

    /// The candidate's provision records, as the service reads them: (status, body).
    async fn provisions(&self, c: &str) -> (u16, Value) {
        let path = format!("/v1/candidates/{c}/provisions");
        self.call("GET", &path, As::Service, None).await
    }

    /// Sets the webhook of the recruiter whose key is `key`: (status, body).
    async fn set_webhook(&self, key: &str, url: &str) -> (u16, Value) {
        self.call(
            "PUT",
            "/v1/recruiter/webhook",
            As::Key(key),
            Some(json!({"url": url})),
        )
        .await
    }

    /// A finished interview for `recruiter`, made of the Chromium MediaRecorder recording.
    async fn interview(&self, c: &str, recruiter: &str) -> String {
        self.finished_interview(c, recruiter, "chromium-mediarecorder.webm", "video/webm")
            .await
    }

    fn export(&self, interview: &str) -> Vec<u8> {
        let out = self.data().join(format!("export-{interview}.webm"));
        common::cli::last_line(
            &common::cli::kiroku_cmd(self.data())
                .args([
                    "recording",
                    "export",
                    interview,
                    "--out",
                    out.to_str().unwrap(),
                ])
                .output()
                .unwrap(),
        );
        std::fs::read(out).unwrap()
    }

    fn audit_events(&self) -> Vec<Value> {
        common::audit::log(self.data())
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// What a webhook receiver on loopback got: (Kiroku-Signature, body).
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A recruiter `acme` whose webhook is a receiver on loopback, and a candidate who granted
/// `record` and `share.recording:acme`, with one finished interview for acme.
struct Shared {
    acme: String,
    got: Received,
    secret: String,
    candidate: String,
    interview: String,
}

impl Server {
    async fn shared_interview(&self) -> Shared {
        let acme = self.recruiter("acme").await;
        let (hook, got) = receiver(200, Duration::ZERO).await;
        let (st, v) = self.set_webhook(&acme, &hook).await;
        assert_eq!(st, 200, "{v}");
        let secret = v["signing_secret"].as_str().unwrap().to_string();
        let candidate = self.candidate().await;
        self.grant(&candidate, json!({"scope": "record"})).await;
        self.grant(
            &candidate,
            json!({"scope": "share.recording", "recipient": "acme"}),
        )
        .await;
        let interview = self.interview(&candidate, "acme").await;
        Shared {
            acme,
            got,
            secret,
            candidate,
            interview,
        }
    }
}

/// A webhook receiver answering with `status` after `delay`; `redirect` answers 302.
async fn receiver(status: u16, delay: Duration) -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let sig = headers
                    .get("kiroku-signature")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                seen.lock().unwrap().push((sig, body.to_vec()));
                tokio::time::sleep(delay).await;
                let mut resp = axum::response::Response::new(axum::body::Body::empty());
                *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                if status == 302 {
                    resp.headers_mut()
                        .insert("location", "http://127.0.0.1:9/elsewhere".parse().unwrap());
                }
                resp
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

/// Waits until `f` holds, for at most 20 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn deliveries_of(got: &Received, kind: &str, secret: &str) -> Vec<Value> {
    let now = kiroku::util::now_unix();
    got.lock()
        .unwrap()
        .iter()
        .map(|(sig, body)| {
            kiroku::delivery::verify_signature(secret, sig, body, now, 300)
                .expect("every delivery carries a valid signature");
            serde_json::from_slice::<Value>(body).unwrap()
        })
        .filter(|v| v["type"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recruiter_receives_a_recording_only_while_the_candidates_share_consent_stands() {
    let s = server(|_| {}).await;
    let acme = s.recruiter("acme").await;
    let globex = s.recruiter("globex").await;
    let (hook, got) = receiver(200, Duration::ZERO).await;
    let (st, v) = s.set_webhook(&acme, &hook).await;
    assert_eq!(st, 200, "{v}");
    let secret = v["signing_secret"].as_str().unwrap().to_string();

    // The candidate consents to be recorded; the receipt verifies offline.
    let c = s.candidate().await;
    let granted = s
        .grant(&c, json!({"scope": "record", "language": "ja"}))
        .await;
    let receipt_file = s.data().join("receipt.json");
    std::fs::write(&receipt_file, granted["receipt"].to_string()).unwrap();
    let (_, keys) = s.call("GET", "/v1/keys", As::Nobody, None).await;
    let verified = common::cli::kiroku_cmd(s.data())
        .args([
            "receipt",
            "verify",
            receipt_file.to_str().unwrap(),
            "--public-key",
        ])
        .arg(keys["public_key"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(
        granted["receipt"]["receipt"]["policyUrl"],
        "https://example.invalid/privacy/v1"
    );
    assert_eq!(granted["event"]["method"], "web_form");

    // The interview is streamed; without share consent the recruiter gets 403 and no bytes.
    let id = s.interview(&c, "acme").await;
    let path = format!("/v1/recruiter/interviews/{id}/recording");
    let (st, v) = s.call("GET", &path, As::Key(&acme), None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (403, Some("no_share_consent")),
        "{v}"
    );
    assert_eq!(v["scope"], "share.recording:acme");
    let (_, list) = s
        .call("GET", "/v1/recruiter/interviews", As::Key(&acme), None)
        .await;
    assert_eq!(list["interviews"], json!([]));

    // Share consent for acme: the recording arrives, equal to the export byte for byte.
    let share = s
        .grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    let share_id = share["consent_id"].as_str().unwrap().to_string();
    let (_, list) = s
        .call("GET", "/v1/recruiter/interviews", As::Key(&acme), None)
        .await;
    assert_eq!(list["interviews"][0]["interview_id"], id.as_str());
    let (st, h, body) = s.raw("GET", &path, As::Key(&acme), None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-type"], "video/webm");
    let export = s.export(&id);
    assert!(
        body == export,
        "the released recording equals `kiroku recording export`"
    );

    // A Range request equals the same slice, across a chunk and a segment boundary.
    let (a, b) = (60_000usize, export.len() - 1000);
    let (st, h, slice) = s
        .raw(
            "GET",
            &path,
            As::Key(&acme),
            None,
            &[("range", &format!("bytes={a}-{b}"))],
        )
        .await;
    assert_eq!(st, 206);
    assert_eq!(
        h["content-range"],
        format!("bytes {a}-{b}/{}", export.len()).as_str()
    );
    assert!(
        slice == export[a..=b],
        "the range equals the export's slice"
    );

    // Another recruiter cannot learn that the interview exists.
    let (st, other) = s.call("GET", &path, As::Key(&globex), None).await;
    let (_, nobody) = s
        .call(
            "GET",
            "/v1/recruiter/interviews/00000000-0000-4000-8000-000000000000/recording",
            As::Key(&globex),
            None,
        )
        .await;
    assert_eq!(st, 404);
    assert_eq!(
        other, nobody,
        "the same answer as for an interview nobody has"
    );

    // The push delivery came, signed, with a working short-lived link.
    eventually("recording.ready", || {
        !deliveries_of(&got, "recording.ready", &secret).is_empty()
    })
    .await;
    let ready = deliveries_of(&got, "recording.ready", &secret);
    assert_eq!(ready.len(), 1, "exactly one delivery: {ready:?}");
    assert_eq!(ready[0]["consent_event_id"], share_id.as_str());
    let link = ready[0]["download"]["url"].as_str().unwrap();
    let link_path = link.strip_prefix(&s.base).unwrap().to_string();
    // The link opens only with the key of the recruiter it was delivered to.
    assert_eq!(s.raw("GET", &link_path, As::Nobody, None, &[]).await.0, 401);
    assert_eq!(
        s.raw("GET", &link_path, As::Key(&globex), None, &[])
            .await
            .0,
        404,
        "another recruiter's key opens nothing"
    );
    let (st, _, via_link) = s.raw("GET", &link_path, As::Key(&acme), None, &[]).await;
    assert_eq!(st, 200);
    assert!(via_link == export);

    // Withdrawal: 403 again, on the API and the link; the recipient is told.
    let (st, w) = s.withdraw(&c, &share_id).await;
    assert_eq!(st, 200, "{w}");
    let (st, v) = s.call("GET", &path, As::Key(&acme), None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (403, Some("share_consent_withdrawn"))
    );
    assert_eq!(
        s.raw("GET", &link_path, As::Key(&acme), None, &[]).await.0,
        403
    );
    eventually("consent.withdrawn", || {
        !deliveries_of(&got, "consent.withdrawn", &secret).is_empty()
    })
    .await;
    let withdrawn = deliveries_of(&got, "consent.withdrawn", &secret);
    assert_eq!(withdrawn[0]["candidate_id"], c.as_str());
    assert_eq!(withdrawn[0]["interview_ids"], json!([id]));
    assert_eq!(got.lock().unwrap().len(), 2, "nothing else was delivered");

    // Provision records: the three releases, each resting on the share grant.
    let (_, p) = s.provisions(&c).await;
    let p = p["provisions"].as_array().unwrap().clone();
    assert_eq!(p.len(), 3, "{p:?}");
    for r in &p {
        assert_eq!(r["recipient"], "acme");
        assert_eq!(r["interview"], id.as_str());
        assert_eq!(r["item"], "recording");
        assert_eq!(r["basis"], "consent");
        assert_eq!(r["consent_event_id"], share_id.as_str());
    }
    assert_eq!(p[1]["byte_range"], format!("{a}-{b}").as_str());
    assert_eq!(p[0]["byte_range"], Value::Null);

    // The audit log holds exactly these releases and refusals.
    let log = s.audit_events();
    let provided: Vec<&Value> = log
        .iter()
        .filter(|e| e["event"] == "release.provided")
        .collect();
    let ids: Vec<&Value> = provided.iter().map(|e| &e["data"]["provision"]).collect();
    let want: Vec<&Value> = p.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, want);
    let refusals: Vec<&str> = log
        .iter()
        .filter(|e| e["event"] == "release.refused")
        .map(|e| e["data"]["refusal"]["reason"].as_str().unwrap())
        .collect();
    for expected in [
        "no_share_consent",
        "not_recipients_interview",
        "share_consent_withdrawn",
    ] {
        assert!(refusals.contains(&expected), "{refusals:?}");
    }
    let kinds: Vec<&str> = log.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for expected in [
        "consent.granted",
        "consent.withdrawn",
        "capture.started",
        "segment.stored",
        "capture.ended",
        "delivery.delivered",
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected} missing from {kinds:?}"
        );
    }
    let text = common::audit::log(s.data());
    assert!(
        !text.contains("applicant-8841"),
        "no external reference in the audit log"
    );

    // `kiroku audit verify` passes; one byte changed makes it fail and name the entry.
    let verify = || {
        common::cli::kiroku_cmd(s.data())
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut bytes = common::audit::log(s.data()).into_bytes();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let at = line_starts[6] + 40; // inside entry 7
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    common::audit::rewrite_log(s.data(), &String::from_utf8(bytes).unwrap());
    let bad = verify();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("entry 7"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_endpoints_that_fail_hang_or_redirect_are_recorded_as_failed_deliveries() {
    let s = server(|c| c.webhooks.max_attempts = 2).await;
    let c = s.candidate().await;
    let mut receivers = Vec::new();
    for (handle, status, delay) in [
        ("err500", 500, Duration::ZERO),
        ("hangs", 200, Duration::from_secs(5)),
        ("moves", 302, Duration::ZERO),
    ] {
        let key = s.recruiter(handle).await;
        let (url, got) = receiver(status, delay).await;
        let (st, _) = s.set_webhook(&key, &url).await;
        assert_eq!(st, 200);
        receivers.push((handle, got));
    }
    s.grant(&c, json!({"scope": "record"})).await;
    for (handle, _) in &receivers {
        s.interview(&c, handle).await;
        s.grant(&c, json!({"scope": "share.recording", "recipient": handle}))
            .await;
    }
    let app = s.app.clone();
    eventually("three failed deliveries", || {
        app.catalog
            .deliveries()
            .unwrap()
            .iter()
            .filter(|d| d.state == kiroku::vocab::OutboxState::Failed)
            .count()
            == 3
    })
    .await;
    let (_, v) = s
        .call("GET", "/v1/admin/deliveries", As::Operator, None)
        .await;
    let by = |h: &str| {
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["recruiter"] == h)
            .unwrap()
            .clone()
    };
    assert!(
        by("err500")["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500")
    );
    assert!(
        by("hangs")["last_error"]
            .as_str()
            .unwrap()
            .contains("did not answer within 1 s")
    );
    assert!(
        by("moves")["last_error"]
            .as_str()
            .unwrap()
            .contains("redirect")
    );
    for (handle, got) in &receivers {
        assert_eq!(by(handle)["attempts"], 2);
        assert_eq!(
            got.lock().unwrap().len(),
            2,
            "{handle}: each attempt reached it once"
        );
    }
    let failed = s.audit_count("delivery.failed");
    assert_eq!(failed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_before_delivery_cancels_it_and_nothing_more_is_sent() {
    let s = server(|c| {
        c.webhooks.max_attempts = 5;
        c.webhooks.backoff_base_seconds = 3600;
    })
    .await;
    let key = s.recruiter("acme").await;
    let (url, got) = receiver(503, Duration::ZERO).await;
    s.set_webhook(&key, &url).await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    s.interview(&c, "acme").await;
    let share = s
        .grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    eventually("the first attempt", || got.lock().unwrap().len() == 1).await;
    let sid = share["consent_id"].as_str().unwrap();
    let (st, _) = s
        .call(
            "POST",
            &format!("/v1/candidates/{c}/consents/{sid}/withdraw"),
            As::Service,
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200);
    let d = s.app.catalog.deliveries().unwrap();
    assert_eq!(
        d.len(),
        1,
        "no consent.withdrawn: the recruiter never received data"
    );
    assert_eq!(d[0].state, kiroku::vocab::OutboxState::Cancelled);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(got.lock().unwrap().len(), 1);
}

/// Who an endpoint admits.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Anyone,
    Service,
    Recruiter,
    Operator,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_admits_only_its_role() {
    let s = server(|_| {}).await;
    let key = s.recruiter("acme").await;
    let c = s.candidate().await;
    let i = "00000000-0000-4000-8000-000000000000";
    #[rustfmt::skip]
    let endpoints: &[(&str, String, Role)] = &[
        ("GET", "/healthz".into(), Role::Anyone),
        ("GET", "/v1/keys".into(), Role::Anyone),
        ("POST", "/v1/interviews".into(), Role::Service),
        ("GET", format!("/v1/interviews/{i}"), Role::Service),
        ("POST", format!("/v1/interviews/{i}/finish"), Role::Service),
        ("POST", "/v1/candidates".into(), Role::Service),
        ("POST", format!("/v1/candidates/{c}/consents"), Role::Service),
        ("GET", format!("/v1/candidates/{c}/consents"), Role::Service),
        ("POST", format!("/v1/candidates/{c}/consents/ce_x/withdraw"), Role::Service),
        ("GET", format!("/v1/candidates/{c}/consents/ce_x/receipt"), Role::Service),
        ("GET", format!("/v1/candidates/{c}/provisions"), Role::Service),
        ("GET", "/v1/recruiter/interviews".into(), Role::Recruiter),
        ("GET", format!("/v1/recruiter/interviews/{i}/recording"), Role::Recruiter),
        ("GET", format!("/v1/recruiter/interviews/{i}/analysis"), Role::Recruiter),
        ("PUT", "/v1/recruiter/webhook".into(), Role::Recruiter),
        ("DELETE", "/v1/recruiter/webhook".into(), Role::Recruiter),
        ("POST", "/v1/admin/notices".into(), Role::Operator),
        ("GET", "/v1/admin/notices".into(), Role::Operator),
        ("POST", "/v1/admin/recruiters".into(), Role::Operator),
        // Rotating acme's key as the operator revokes `key`: only operator rows follow.
        ("POST", "/v1/admin/recruiters/acme/rotate".into(), Role::Operator),
        ("POST", "/v1/admin/recruiters/nobody/revoke".into(), Role::Operator),
        ("POST", "/v1/admin/releases".into(), Role::Operator),
        ("GET", "/v1/admin/deliveries".into(), Role::Operator),
        ("GET", "/v1/admin/audit".into(), Role::Operator),
    ];
    for (method, path, role) in endpoints {
        for (who, name, admitted) in [
            (As::Nobody, "none", None),
            (As::Service, "service", Some(Role::Service)),
            (As::Operator, "operator", Some(Role::Operator)),
            (As::Key(&key), "recruiter", Some(Role::Recruiter)),
        ] {
            let (status, body) = s.call(method, path, who, Some(json!({}))).await;
            let allowed = *role == Role::Anyone || Some(*role) == admitted;
            if allowed {
                assert_ne!(status, 401, "{method} {path} as {name}: {body}");
            } else {
                assert_eq!(
                    status, 401,
                    "{method} {path} as {name} must be refused: {body}"
                );
                assert!(
                    body["error"].is_string(),
                    "{method} {path} as {name}: a JSON error body"
                );
            }
        }
    }
}

/// One bad consent request: (what is wrong, path, body as sent, status, error code where one
/// is promised).
type BadGrant<'a> = (&'a str, &'a str, Vec<u8>, u16, Option<&'a str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_consent_and_release_requests_get_precise_errors_and_change_nothing() {
    let s = server(|c| c.limits.max_json_body_bytes = 2048).await;
    let acme = s.recruiter("acme").await;
    let globex = s.recruiter("globex").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    let id = s.interview(&c, "acme").await;
    let share = s
        .grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    let history = |s: &Server| {
        let app = s.app.clone();
        let c = kiroku::ids::CandidateId::parse(&c).unwrap();
        app.catalog.consent_events(&c).unwrap().len()
    };
    let before = history(&s);
    let consents = format!("/v1/candidates/{c}/consents");
    let body = |v: Value| v.to_string().into_bytes();
    let escaping = "/v1/candidates/..%2F..%2Fetc/consents";
    #[rustfmt::skip]
    let rows: [BadGrant; 11] = [
        ("cut-off JSON", &consents, b"{\"scope\": ".to_vec(), 400, Some("malformed_json")),
        ("a body past the JSON limit", &consents, vec![b' '; 4096], 413, None),
        ("an unknown field", &consents, body(json!({"scope": "record", "extra": 1})), 400, Some("malformed_json")),
        ("an unknown scope", &consents, body(json!({"scope": "share.everything"})), 400, Some("unknown_scope")),
        ("a share without recipient", &consents, body(json!({"scope": "share.recording"})), 400, Some("recipient_required")),
        ("a recipient nobody registered", &consents, body(json!({"scope": "share.recording", "recipient": "initech"})), 422, Some("unknown_recruiter")),
        ("a recipient that is a path", &consents, body(json!({"scope": "share.recording", "recipient": "../acme"})), 400, Some("invalid_id")),
        ("a notice nobody registered", &consents, body(json!({"scope": "record", "notice": "notice-v9"})), 422, Some("unknown_notice")),
        ("a time zone that is not one", &consents, body(json!({"scope": "record", "time_zone": "Tokyo"})), 400, Some("invalid_field")),
        ("an unknown method", &consents, body(json!({"scope": "record", "method": "telepathy"})), 400, Some("malformed_json")),
        ("a candidate id that is a path", escaping, body(json!({"scope": "record"})), 400, Some("invalid_id")),
    ];
    for (what, path, body, status, code) in rows {
        let r = s.post_bytes(path, body).await;
        let st = r.status().as_u16();
        let v: Value = match code {
            Some(_) => r.json().await.unwrap(),
            None => Value::Null,
        };
        assert_eq!((st, v["error"].as_str()), (status, code), "{what}: {v}");
    }
    let (st, v) = s.withdraw(&c, "ce_never").await;
    assert_eq!((st, v["error"].as_str()), (404, Some("unknown_consent")));
    let sid = share["consent_id"].as_str().unwrap();
    let (st, _) = s.withdraw(&c, sid).await;
    assert_eq!(st, 200);
    let (st, v) = s.withdraw(&c, sid).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (409, Some("nothing_to_withdraw"))
    );
    assert_eq!(
        history(&s),
        before + 1,
        "only the one real withdrawal was recorded"
    );
    let regrant = s
        .grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    // A retried withdrawal naming the old grant does not withdraw the new one.
    let (st, v) = s.withdraw(&c, sid).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (409, Some("nothing_to_withdraw"))
    );
    let (_, now) = s.call("GET", &consents, As::Service, None).await;
    assert!(
        now["current"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["consent_id"] == regrant["consent_id"]),
        "{now}"
    );

    // Recruiter keys: wrong, malformed, revoked, another recruiter's.
    let path = format!("/v1/recruiter/interviews/{id}/recording");
    let wrong = format!("{}x", &acme[..acme.len() - 1]);
    for bad in [wrong.as_str(), "krk_nothing", "Bearer"] {
        let (st, v) = s.call("GET", &path, As::Key(bad), None).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (401, Some("recruiter_key_invalid")),
            "{bad}"
        );
    }
    let (st, _) = s.call("GET", &path, As::Key(&globex), None).await;
    assert_eq!(st, 404);
    let (st, v) = s
        .call(
            "POST",
            "/v1/admin/recruiters/acme/rotate",
            As::Operator,
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (st, e) = s.call("GET", &path, As::Key(&acme), None).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (401, Some("recruiter_key_revoked"))
    );
    let acme = v["api_key"].as_str().unwrap().to_string();

    // HEAD would record a provision for bytes never sent.
    let (st, _, _) = s.raw("HEAD", &path, As::Key(&acme), None, &[]).await;
    assert_eq!(st, 405);

    // Range headers.
    let total = s.export(&id).len();
    for (range, status, code) in [
        ("bytes=abc", 400, "range_malformed"),
        ("bytes=9-3", 400, "range_malformed"),
        ("pages=0-1", 400, "range_malformed"),
        ("bytes=0-1,5-9", 416, "multiple_ranges_unsupported"),
        (
            &format!("bytes={total}-") as &str,
            416,
            "range_not_satisfiable",
        ),
    ] {
        let (st, h, body) = s
            .raw("GET", &path, As::Key(&acme), None, &[("range", range)])
            .await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((st, v["error"].as_str()), (status, Some(code)), "{range}");
        if code == "range_not_satisfiable" {
            assert_eq!(h["content-range"], format!("bytes */{total}").as_str());
        }
    }
    let (st, _, one) = s
        .raw("GET", &path, As::Key(&acme), None, &[("range", "bytes=-1")])
        .await;
    assert_eq!((st, one.len()), (206, 1));

    // Webhook URLs.
    for url in ["ftp://x.example/", "https://u:p@x.example/", "not a url"] {
        let (st, v) = s.set_webhook(&acme, url).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (400, Some("invalid_webhook_url")),
            "{url}"
        );
    }
    // Legal exceptions need a known basis and a reference.
    for body in [
        json!({"interview": id, "recipient": "Tokyo District Court", "legal_basis": "curiosity", "reference": "x"}),
        json!({"interview": id, "recipient": "Tokyo District Court", "legal_basis": "required_by_law", "reference": " "}),
    ] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/admin/releases",
                As::Operator,
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, 400, "{body}: {v}");
    }
    let provisions = s
        .app
        .catalog
        .provisions(&kiroku::ids::CandidateId::parse(&c).unwrap())
        .unwrap();
    assert_eq!(
        provisions.len(),
        1,
        "only the one-byte range was provided: {provisions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_exception_release_is_recorded_with_its_basis_and_reference() {
    let s = server(|_| {}).await;
    s.recruiter("acme").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    let id = s.interview(&c, "acme").await;
    let (st, h, body) = s
        .raw(
            "POST",
            "/v1/admin/releases",
            As::Operator,
            Some(json!({"interview": id, "recipient": "Tokyo District Court", "legal_basis": "required_by_law", "reference": "2026(wa)1234"})),
            &[],
        )
        .await;
    assert_eq!(st, 200);
    assert!(body == s.export(&id));
    let (_, p) = s.provisions(&c).await;
    let r = &p["provisions"][0];
    assert_eq!(r["id"], h["kiroku-provision-id"].to_str().unwrap());
    assert_eq!(r["basis"], "legal_exception");
    assert_eq!(r["legal_basis"], "required_by_law");
    assert_eq!(r["reference"], "2026(wa)1234");
    assert_eq!(r["recipient"], "Tokyo District Court");
    assert!(
        s.audit_events()
            .iter()
            .any(|e| e["event"] == "release.legal_exception")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_stops_an_open_download_at_the_next_segment() {
    let s = server(|_| {}).await;
    s.recruiter("acme").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    let id = s.interview(&c, "acme").await;
    s.grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    let app = s.app.clone();
    let (sent, result) = tokio::task::spawn_blocking(move || {
        use kiroku::consent::{Scope, decision};
        let row = app
            .catalog
            .interview(&kiroku::ids::InterviewId::parse(&id).unwrap())
            .unwrap()
            .unwrap();
        assert!(app.catalog.segments(&row.id).unwrap().len() >= 2);
        let acme = kiroku::ids::RecruiterHandle::parse("acme").unwrap();
        let proof = decision::decide(&app.catalog, &app.audit, &acme, &row, decision::Recording)
            .unwrap()
            .unwrap();
        let release = kiroku::release::prepare_recording(&app, proof, None).unwrap();
        let mut sent = 0usize;
        let mut withdrawn = false;
        let result = kiroku::release::stream_recording(&app, release, |part| {
            sent += part.len();
            if !withdrawn {
                common::candidates::withdraw(
                    &app,
                    &row.candidate,
                    Scope::ShareRecording(acme.clone()),
                );
                withdrawn = true;
            }
            true
        });
        (sent, result)
    })
    .await
    .unwrap();
    assert!(matches!(
        result,
        Err(kiroku::release::ReleaseError::Withdrawn)
    ));
    let c = kiroku::ids::CandidateId::parse(&c).unwrap();
    let interview = s.app.catalog.interviews_of_candidate(&c).unwrap()[0].id;
    // The first part served is the finished header, which stands in for segment 0.
    let row = s.app.catalog.interview(&interview).unwrap().unwrap();
    let (verified, _) = kiroku::recording::VerifiedRecording::open(&s.app, row).unwrap();
    let first = verified.parts()[0];
    assert_eq!(
        first.source,
        kiroku::recording::PartSource::Finished(kiroku::recording::FinishedPart::Header)
    );
    assert_eq!(
        sent as u64, first.plain_len,
        "the part under way ends, nothing after it"
    );
    let interrupted: Vec<Value> = s
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "release.interrupted")
        .collect();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0]["data"]["segment"], 1);
}

#[test]
fn a_receipt_that_was_altered_or_signed_by_another_key_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::cli::privacy_basics(d);
    let c = common::cli::add_candidate(d, "r-1");
    let file = d.join("receipt.json");
    common::cli::grant(d, &c, "analyze", &["--receipt-out", file.to_str().unwrap()]);
    let verify = |path: &Path, extra: &[&str]| {
        common::cli::kiroku_cmd(d)
            .args(["receipt", "verify"])
            .arg(path)
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = verify(&file, &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("analyze"));
    let mut v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["receipt"]["piiPrincipalId"], c.as_str());
    assert_eq!(v["receipt"]["kiroku"]["notice"]["id"], "notice-2026-04");
    v["receipt"]["kiroku"]["scope"] = json!("share.recording:acme");
    let altered = d.join("altered.json");
    std::fs::write(&altered, v.to_string()).unwrap();
    let bad = verify(&altered, &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("altered or forged"));
    let other = "11".repeat(32);
    let bad = verify(&file, &["--public-key", &other]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not by the operator key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_opens_only_the_chunks_it_needs_and_a_damaged_chunk_stops_a_full_download() {
    let s = server(|_| {}).await;
    let acme = s.recruiter("acme").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    let id = s.interview(&c, "acme").await;
    s.grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    let export = s.export(&id);
    // Damage the last byte (a tag) of the last segment's object.
    let segs = s
        .app
        .catalog
        .segments(&kiroku::ids::InterviewId::parse(&id).unwrap())
        .unwrap();
    let last = segs.last().unwrap();
    let object = s
        .data()
        .join("regions/jp/objects")
        .join(last.object_key.as_str());
    let mut sealed = std::fs::read(&object).unwrap();
    *sealed.last_mut().unwrap() ^= 1;
    std::fs::write(&object, sealed).unwrap();

    let path = format!("/v1/recruiter/interviews/{id}/recording");
    let (st, _, head) = s
        .raw(
            "GET",
            &path,
            As::Key(&acme),
            None,
            &[("range", "bytes=0-99")],
        )
        .await;
    assert_eq!(st, 206);
    assert!(head == export[..100]);
    let resp = s
        .http
        .get(format!("{}{path}", s.base))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "the manifest and headers still check out"
    );
    assert!(
        resp.bytes().await.is_err(),
        "the body breaks off at the damaged chunk rather than pass it on"
    );
}

/// The finished recording (its header, media segments and Cues) is served as one file: any
/// range of it, inside one part or across several, is that slice of the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_anywhere_in_a_finished_recording_equals_that_slice_of_its_export() {
    let s = server(|_| {}).await;
    let shared = s.shared_interview().await;
    let export = s.export(&shared.interview);
    let total = export.len();
    let path = format!("/v1/recruiter/interviews/{}/recording", shared.interview);
    let (st, h, whole) = s.raw("GET", &path, As::Key(&shared.acme), None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-length"], total.to_string().as_str());
    assert!(whole == export, "the whole release is the export");
    // Starts spread over the file, lengths from one byte to past several 64 KiB chunks and
    // segments, and the ends: the header's first byte, the Cues' last bytes.
    let mut ranges: Vec<(usize, usize)> = (0..total)
        .step_by(total / 23)
        .zip(
            [1usize, 2, 100, 4_096, 65_536, 65_537, 150_000]
                .into_iter()
                .cycle(),
        )
        .map(|(start, len)| (start, (start + len).min(total) - 1))
        .collect();
    ranges.extend([(0, 0), (total - 1, total - 1), (total - 300, total - 1)]);
    for (start, end) in ranges {
        let spec = format!("bytes={start}-{end}");
        let (st, h, body) = s
            .raw(
                "GET",
                &path,
                As::Key(&shared.acme),
                None,
                &[("range", &spec)],
            )
            .await;
        assert_eq!(st, 206, "{spec}");
        assert_eq!(
            h["content-range"],
            format!("bytes {start}-{end}/{total}").as_str()
        );
        assert!(
            body == export[start..=end],
            "{spec} is that slice of the export"
        );
    }
    let (st, _, tail) = s
        .raw(
            "GET",
            &path,
            As::Key(&shared.acme),
            None,
            &[("range", "bytes=-10")],
        )
        .await;
    assert_eq!(st, 206);
    assert!(
        tail == export[total - 10..],
        "a suffix range ends in the Cues"
    );
    let (_, v) = s.provisions(&shared.candidate).await;
    let last = s
        .app
        .catalog
        .segments(&kiroku::ids::InterviewId::parse(&shared.interview).unwrap())
        .unwrap()
        .len()
        - 1;
    assert!(
        v.to_string()
            .contains(&format!("\"segments\":\"{last}-{last}\"")),
        "a range inside the Cues is recorded as the last segment's: {v}"
    );
    let finished: Vec<Value> = s
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "recording.finished")
        .collect();
    assert_eq!(finished.len(), 1, "finishing leaves its trace");
    let data = &finished[0]["data"];
    assert_eq!(data["interview"], shared.interview.as_str());
    assert!(data["duration_ms"].as_u64().unwrap() > 5_000, "{data}");
    // Chromium's recording has two keyframes (0 s and 5.05 s), each the start of a cluster.
    assert_eq!(data["seek_points"], 2, "{data}");
    assert_eq!(data["header"].as_str().unwrap().len(), 64, "{data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_is_pushed_and_pulled_only_under_share_analysis() {
    let s = server(|_| {}).await;
    let acme = s.recruiter("acme").await;
    let (hook, got) = receiver(200, Duration::ZERO).await;
    let (_, v) = s.set_webhook(&acme, &hook).await;
    let secret = v["signing_secret"].as_str().unwrap().to_string();
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    let analyze = s.grant(&c, json!({"scope": "analyze"})).await;
    let analyze_id = analyze["consent_id"].as_str().unwrap().to_string();
    s.grant(&c, json!({"scope": "share.analysis", "recipient": "acme"}))
        .await;
    let id = s
        .finished_interview(&c, "acme", "analysis/speech-pauses.webm", "audio/webm")
        .await;
    eventually("analysis.ready", || {
        !deliveries_of(&got, "analysis.ready", &secret).is_empty()
    })
    .await;
    let ready = deliveries_of(&got, "analysis.ready", &secret);
    assert_eq!(ready[0]["interview_id"], id.as_str());
    let url = ready[0]["analysis_url"].as_str().unwrap();
    let (st, v) = s
        .call(
            "GET",
            url.strip_prefix(&s.base).unwrap(),
            As::Key(&acme),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let talk = v["analyzers"]["kiroku-builtin"]["interview"]["talk_time"]["value"]
        .as_f64()
        .unwrap();
    assert!(talk > 5.0, "{v}");
    // The recording is not part of share.analysis.
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/recruiter/interviews/{id}/recording"),
            As::Key(&acme),
            None,
        )
        .await;
    assert_eq!((st, v["error"].as_str()), (403, Some("no_share_consent")));
    let (_, p) = s.provisions(&c).await;
    let items: Vec<&str> = p["provisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, vec!["analysis"]);
    // The list offers the analysis while it can be released, and not once `analyze` is gone.
    let offered = |list: &Value| {
        list["interviews"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["items"].as_array().unwrap().clone())
            .any(|it| it["item"] == "analysis")
    };
    let (_, list) = s
        .call("GET", "/v1/recruiter/interviews", As::Key(&acme), None)
        .await;
    assert!(offered(&list), "{list}");
    let (st, w) = s.withdraw(&c, &analyze_id).await;
    assert_eq!(st, 200, "{w}");
    let (_, list) = s
        .call("GET", "/v1/recruiter/interviews", As::Key(&acme), None)
        .await;
    assert!(!offered(&list), "{list}");
}

/// A Safari recording is released as it was recorded: `video/mp4`, equal to the export byte
/// for byte, a Range mapped onto its sealed segments, and the recruiter's list says it plays
/// in every browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_safari_recording_is_released_as_mp4_and_a_range_maps_onto_it() {
    let s = server(|_| {}).await;
    let acme = s.recruiter("acme").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record", "language": "ja"}))
        .await;
    let id = s
        .finished_interview(&c, "acme", "safari-like-fmp4-h264-aac.mp4", "video/mp4")
        .await;
    s.grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    let (_, list) = s
        .call("GET", "/v1/recruiter/interviews", As::Key(&acme), None)
        .await;
    let listed = &list["interviews"][0];
    assert_eq!(listed["interview_id"], id.as_str());
    assert_eq!(listed["playback"]["content_type"], "video/mp4");
    assert_eq!(listed["playback"]["codecs"], json!(["h264", "aac"]));
    assert_eq!(listed["playback"]["may_not_play_in"], json!([]));
    let path = format!("/v1/recruiter/interviews/{id}/recording");
    let (st, h, body) = s.raw("GET", &path, As::Key(&acme), None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-type"], "video/mp4");
    let export = s.export(&id);
    assert_eq!(&export[4..8], b"ftyp");
    assert!(body == export, "the release equals the export");
    let (a, b) = (1_000usize, export.len() * 3 / 4);
    let (st, h, slice) = s
        .raw(
            "GET",
            &path,
            As::Key(&acme),
            None,
            &[("range", &format!("bytes={a}-{b}"))],
        )
        .await;
    assert_eq!(st, 206);
    assert_eq!(
        h["content-range"],
        format!("bytes {a}-{b}/{}", export.len()).as_str()
    );
    assert!(
        slice == export[a..=b],
        "the range equals the export's slice"
    );
}

/// A download whose client stops reading: headers read, then nothing. The receive buffer is
/// kept small so that the server's writes stall soon.
async fn stalled_download(s: &Server, path: &str, key: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = s.base.trim_start_matches("http://").parse().unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: kiroku\r\nAuthorization: Bearer {key}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the download starts");
    tcp
}

/// Downloads that stop reading hold neither a thread nor more than their recipient's share:
/// beside them a live stream is acknowledged as promptly as ever, the recipient's next
/// download past its cap gets 429 (another recipient's does not), and each stalled reader is
/// cut at the write timeout, which gives its slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_downloads_neither_starve_a_live_stream_nor_exceed_their_recipients_cap() {
    let s = server(|cfg| {
        cfg.limits.max_downloads_per_recipient = 3;
        cfg.server.write_timeout_seconds = 3;
        cfg.server.send_buffer_bytes = Some(4096);
    })
    .await;
    let acme = s.recruiter("acme").await;
    let globex = s.recruiter("globex").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    // Larger than what hyper and the socket buffers would take in at once (about 3 MB).
    let long = s.data().join("long.webm");
    common::media::make_webm(&long, 20, 1200);
    let id = s
        .finished_interview(&c, "acme", long.to_str().unwrap(), "video/webm")
        .await;
    s.grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    let path = format!("/v1/recruiter/interviews/{id}/recording");
    let whole = s.export(&id).len();
    assert!(whole > 2_000_000, "{whole}");

    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(stalled_download(&s, &path, &acme).await);
    }
    let (st, v) = s.call("GET", &path, As::Key(&acme), None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (429, Some("too_many_downloads")),
        "{v}"
    );
    let (st, v) = s
        .call("GET", "/v1/recruiter/interviews", As::Key(&globex), None)
        .await;
    assert_eq!(st, 200, "another recipient is served: {v}");

    // A candidate streams in real time beside the stalled downloads.
    let live = s.create_interview().await;
    let mut ws = s.connect(&live.id, &live.ingest_token).await;
    let lags = common::ws::stream_in_real_time(
        &mut ws,
        common::fixtures::browser_chunks(),
        Duration::from_millis(500),
    )
    .await;
    assert!(
        lags.len() >= 2,
        "media segments were acknowledged: {lags:?}"
    );
    assert!(
        lags.iter().all(|l| *l < Duration::from_secs(2)),
        "every acknowledgement within 2 s of its media: {lags:?}"
    );

    // By now (over 7 s) the write timeout has cut the stalled readers: each got less than the
    // whole recording, and acme can download again.
    for mut tcp in stalled {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got))
            .await
            .expect("the server closed the stalled connection");
        assert!(got.len() < whole, "{} of {whole} bytes", got.len());
    }
    let (st, _, body) = s.raw("GET", &path, As::Key(&acme), None, &[]).await;
    assert_eq!((st, body.len()), (200, whole), "the slots were given back");
}

/// Revoking a recruiter cuts everything at once: its keys, its webhook, the download links it
/// was sent, and what would have been delivered for an interview finishing later under a
/// standing share consent, which the decision point refuses with its own reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_recruiter_receives_nothing_more_and_its_old_links_are_refused() {
    let s = server(|_| {}).await;
    let Shared {
        acme,
        got,
        secret,
        candidate: c,
        interview: first,
    } = s.shared_interview().await;
    eventually("recording.ready", || {
        deliveries_of(&got, "recording.ready", &secret).len() == 1
    })
    .await;
    let ready = deliveries_of(&got, "recording.ready", &secret);
    let link = ready[0]["download"]["url"].as_str().unwrap();
    let link_path = link.strip_prefix(&s.base).unwrap().to_string();
    // A second interview, created before the revocation and streamed after it.
    let (st, second) = s
        .call(
            "POST",
            "/v1/interviews",
            As::Service,
            Some(json!({"candidate": c, "recruiter": "acme"})),
        )
        .await;
    assert_eq!(st, 201, "{second}");

    let (st, v) = s
        .call(
            "POST",
            "/v1/admin/recruiters/acme/revoke",
            As::Operator,
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, _, _) = s.raw("GET", &link_path, As::Key(&acme), None, &[]).await;
    assert_eq!(st, 401, "the key that opened it is revoked");
    let token = link_path.rsplit('/').next().unwrap();
    let row = s
        .app
        .catalog
        .download_link(&kiroku::util::secret::token_hash(token), 0)
        .unwrap();
    assert!(row.is_none(), "the old link is gone");
    let path = format!("/v1/recruiter/interviews/{first}/recording");
    assert_eq!(s.call("GET", &path, As::Key(&acme), None).await.0, 401);

    let r = s
        .put_media(
            second["interview_id"].as_str().unwrap(),
            second["ingest_token"].as_str().unwrap(),
            Some("video/webm"),
            common::fixtures::read("chromium-mediarecorder.webm"),
        )
        .await;
    assert_eq!(r.status(), 200);
    // The decision point refuses the revoked recipient, with its own reason.
    let second_id =
        kiroku::ids::InterviewId::parse(second["interview_id"].as_str().unwrap()).unwrap();
    let row = s.app.catalog.interview(&second_id).unwrap().unwrap();
    let acme_handle = kiroku::ids::RecruiterHandle::parse("acme").unwrap();
    let decided = kiroku::consent::decision::decide(
        &s.app.catalog,
        &s.app.audit,
        &acme_handle,
        &row,
        kiroku::consent::decision::Recording,
    )
    .unwrap();
    assert_eq!(
        decided.err(),
        Some(kiroku::consent::Refusal::RecipientRevoked)
    );
    let (_, d) = s
        .call("GET", "/v1/admin/deliveries", As::Operator, None)
        .await;
    for delivery in d["deliveries"].as_array().unwrap() {
        if delivery["interview"] == second["interview_id"] {
            assert_ne!(delivery["state"], "delivered", "{delivery}");
        }
    }
    let revoked = s
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "recruiter.revoked")
        .expect("the revocation is audited");
    assert_eq!(revoked["data"]["recruiter"], "acme");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        got.lock().unwrap().len(),
        1,
        "nothing delivered after the revocation"
    );
}

/// A recruiter that receives data in another country than the candidate's gets a release
/// only under the candidate's `transfer` consent for that country (APPI Art. 28), which the
/// provision record names; once that consent is withdrawn, releases stop, though the share
/// consent stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_abroad_needs_the_candidates_transfer_consent_and_its_record_names_it() {
    let s = server(|_| {}).await;
    s.recruiter("acme").await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/admin/recruiters",
            As::Operator,
            Some(json!({"handle": "globex", "country": "US"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let globex = v["api_key"].as_str().unwrap().to_string();
    let c = s.candidate().await; // lives in Japan
    s.grant(&c, json!({"scope": "record"})).await;
    let id = s.interview(&c, "globex").await;
    s.grant(
        &c,
        json!({"scope": "share.recording", "recipient": "globex"}),
    )
    .await;
    let path = format!("/v1/recruiter/interviews/{id}/recording");
    let (st, v) = s.call("GET", &path, As::Key(&globex), None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (403, Some("no_transfer_consent")),
        "{v}"
    );
    assert_eq!(v["scope"], "transfer:US");
    let listed = || async {
        let (_, list) = s
            .call("GET", "/v1/recruiter/interviews", As::Key(&globex), None)
            .await;
        list["interviews"].as_array().unwrap().len()
    };
    assert_eq!(listed().await, 0, "not offered what would be refused");

    let transfer = s
        .grant(&c, json!({"scope": "transfer", "country": "US"}))
        .await;
    let transfer_id = transfer["consent_id"].as_str().unwrap().to_string();
    assert_eq!(listed().await, 1);
    let (st, _, body) = s.raw("GET", &path, As::Key(&globex), None, &[]).await;
    assert_eq!(st, 200);
    assert!(body == s.export(&id));
    let (_, p) = s.provisions(&c).await;
    let record = &p["provisions"][0];
    assert_eq!(record["recipient"], "globex");
    assert_eq!(
        record["transfer_consent_event_id"],
        transfer_id.as_str(),
        "{record}"
    );

    let (st, w) = s.withdraw(&c, &transfer_id).await;
    assert_eq!(st, 200, "{w}");
    let (st, v) = s.call("GET", &path, As::Key(&globex), None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (403, Some("no_transfer_consent")),
        "{v}"
    );
}

/// Webhook changes are audited with the SHA-256 of the old and new URL (never the URL, which
/// may carry a path secret), so a redirected endpoint can be proven afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_changes_are_audited_with_the_old_and_new_urls_hashes() {
    let s = server(|_| {}).await;
    let acme = s.recruiter("acme").await;
    let first = "http://127.0.0.1:9/hook-secret-path-1";
    let second = "http://127.0.0.1:9/hook-secret-path-2";
    assert_eq!(s.set_webhook(&acme, first).await.0, 200);
    assert_eq!(s.set_webhook(&acme, second).await.0, 200);
    assert_eq!(
        s.call("DELETE", "/v1/recruiter/webhook", As::Key(&acme), None)
            .await
            .0,
        204
    );
    let hash = |u: &str| hex::encode(kiroku::util::secret::sha256(u.as_bytes()));
    let log = s.audit_events();
    let of = |kind: &str| -> Vec<Value> {
        log.iter()
            .filter(|e| e["event"] == kind)
            .map(|e| e["data"].clone())
            .collect()
    };
    let set = of("recruiter.webhook_set");
    assert_eq!(set.len(), 2);
    assert_eq!(set[0]["url_sha256"], hash(first));
    assert!(set[0].get("previous_url_sha256").is_none());
    assert_eq!(set[1]["url_sha256"], hash(second));
    assert_eq!(set[1]["previous_url_sha256"], hash(first));
    assert_eq!(
        of("recruiter.webhook_removed")[0]["url_sha256"],
        hash(second)
    );
    let text = common::audit::log(s.data());
    assert!(
        !text.contains("hook-secret-path"),
        "no URL in the audit log"
    );
}

/// Withdrawals racing for one grant: exactly one is recorded, the others are told there is
/// nothing left to withdraw, and the candidate's history holds one withdrawal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_withdrawals_of_one_grant_record_exactly_one() {
    let s = server(|_| {}).await;
    s.recruiter("acme").await;
    let c = s.candidate().await;
    let share = s
        .grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    let id = share["consent_id"].as_str().unwrap().to_string();
    let answers = futures_util::future::join_all((0..8).map(|_| s.withdraw(&c, &id))).await;
    let ok = answers.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    for (st, v) in answers.iter().filter(|(st, _)| *st != 200) {
        assert_eq!(v["error"], "nothing_to_withdraw", "{st} {v}");
    }
    let (_, history) = s
        .call(
            "GET",
            &format!("/v1/candidates/{c}/consents"),
            As::Service,
            None,
        )
        .await;
    let text = history.to_string();
    assert_eq!(
        text.matches(&format!("\"withdraws\":\"{id}\"")).count(),
        1,
        "{history}"
    );
}

/// One recipient's endpoint that hangs (every attempt runs into the timeout) holds up only
/// its own deliveries: another recipient's notification arrives at once, not after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_delays_no_other_recipients_deliveries() {
    let s = server(|_| {}).await;
    let acme = s.recruiter("acme").await;
    let globex = s.recruiter("globex").await;
    let (hanging, _) = receiver(200, Duration::from_secs(30)).await;
    let (hook, got) = receiver(200, Duration::ZERO).await;
    assert_eq!(s.set_webhook(&acme, &hanging).await.0, 200);
    let (_, v) = s.set_webhook(&globex, &hook).await;
    let secret = v["signing_secret"].as_str().unwrap().to_string();
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    for to in ["acme", "globex"] {
        s.grant(&c, json!({"scope": "share.recording", "recipient": to}))
            .await;
    }
    // Five deliveries to the hanging endpoint, each taking its 1 s timeout, queued first.
    for _ in 0..5 {
        s.interview(&c, "acme").await;
    }
    let id = s.interview(&c, "globex").await;
    let finished = std::time::Instant::now();
    eventually("globex's recording.ready", || {
        !deliveries_of(&got, "recording.ready", &secret).is_empty()
    })
    .await;
    let waited = finished.elapsed();
    assert_eq!(
        deliveries_of(&got, "recording.ready", &secret)[0]["interview_id"],
        id.as_str()
    );
    assert!(
        waited < Duration::from_millis(2500),
        "globex waited {waited:?} behind acme's hanging endpoint"
    );
}

/// A delivery retried after its endpoint failed carries the same download link on every
/// attempt: one link per delivery, not one more live link per retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_of_one_delivery_carries_the_same_link() {
    let s = server(|_| {}).await;
    let acme = s.recruiter("acme").await;
    let (hook, got) = receiver(500, Duration::ZERO).await;
    let (_, v) = s.set_webhook(&acme, &hook).await;
    let secret = v["signing_secret"].as_str().unwrap().to_string();
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    s.grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    s.interview(&c, "acme").await;
    eventually("a retried recording.ready", || {
        deliveries_of(&got, "recording.ready", &secret).len() >= 2
    })
    .await;
    let ready = deliveries_of(&got, "recording.ready", &secret);
    assert_eq!(
        ready[0]["id"], ready[1]["id"],
        "one delivery, attempted twice: {ready:?}"
    );
    assert_eq!(ready[0]["download"]["url"], ready[1]["download"]["url"]);
    let path = ready[1]["download"]["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&s.base)
        .unwrap()
        .to_string();
    assert_eq!(s.raw("GET", &path, As::Key(&acme), None, &[]).await.0, 200);
}

/// What a witness on loopback kept: (Authorization header, body) of each POST.
type Witnessed = Arc<Mutex<Vec<(String, String)>>>;

/// A witness serving on `l` that keeps every checkpoint POSTed to it.
fn witness(l: tokio::net::TcpListener) -> Witnessed {
    let got: Witnessed = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/checkpoints",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                seen.lock().unwrap().push((auth, body));
                axum::http::StatusCode::CREATED
            }
        }),
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audit_checkpoint_reaches_the_witness_even_those_written_while_it_was_away() {
    let port = common::serve::free_port();
    let w = kiroku::config::WitnessConfig {
        url: format!("http://127.0.0.1:{port}/checkpoints"),
        token: Some("witness-token-0123456789".into()),
        timeout_seconds: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let open = {
        let (w, data) = (w.clone(), data.clone());
        move || common::app::ready(&data, |cfg| cfg.audit.witness = Some(w.clone()))
    };
    // The witness is away: the checkpoints of these consents wait, and the process ends.
    let app = tokio::task::spawn_blocking(open.clone()).await.unwrap();
    let away = tokio::task::spawn_blocking(move || {
        common::candidates::add(&app, "JP", &[kiroku::consent::Scope::Record]);
    });
    away.await.unwrap();
    // Back: a restart publishes what waited, and a new consent's checkpoint goes at once.
    let got = witness(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    let app = tokio::task::spawn_blocking(open).await.unwrap();
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        common::candidates::add(&app2, "JP", &[kiroku::consent::Scope::Analyze]);
    })
    .await
    .unwrap();
    let local: std::collections::BTreeSet<String> = common::audit::checkpoints(&data)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(local.len() >= 3, "{local:?}");
    eventually("every checkpoint at the witness", || {
        let kept: std::collections::BTreeSet<String> =
            got.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
        kept == local
    })
    .await;
    assert!(
        got.lock()
            .unwrap()
            .iter()
            .all(|(auth, _)| auth == "Bearer witness-token-0123456789")
    );
    drop(app);
}

/// An operator erases a candidate in one call: the recipient that received their recording
/// is told (`candidate.erased`, signed like every delivery), and every path answers
/// `candidate_erased` from then on: the recruiter's pull, a new interview, a new consent.
/// Asking again finishes nothing new and says it was erased before; only the operator may ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_tells_each_recipient_and_every_path_then_answers_candidate_erased() {
    let s = server(|_| {}).await;
    let Shared {
        acme,
        got,
        secret,
        candidate: c,
        interview: first,
    } = s.shared_interview().await;
    let path = format!("/v1/recruiter/interviews/{first}/recording");
    let (st, _, _) = s.raw("GET", &path, As::Key(&acme), None, &[]).await;
    assert_eq!(st, 200, "the recording is released before");

    let erase = format!("/v1/admin/candidates/{c}/erase");
    for who in [As::Service, As::Key(&acme)] {
        let (st, _) = s.call("POST", &erase, who, None).await;
        assert!(st == 401 || st == 403, "{st}: only the operator erases");
    }
    let (st, report) = s.call("POST", &erase, As::Operator, None).await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["already_erased"], false);
    assert_eq!(report["interviews"], 1);
    assert_eq!(report["recipients_told"], json!(["acme"]));
    eventually("candidate.erased at acme", || {
        deliveries_of(&got, "candidate.erased", &secret).len() == 1
    })
    .await;
    let notice = &deliveries_of(&got, "candidate.erased", &secret)[0];
    assert_eq!(notice["candidate_id"], c.as_str());
    assert_eq!(notice["interview_ids"], json!([first]));

    let (st, v) = s.call("GET", &path, As::Key(&acme), None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (410, Some("candidate_erased")),
        "{v}"
    );
    let (_, list) = s
        .call("GET", "/v1/recruiter/interviews", As::Key(&acme), None)
        .await;
    assert!(!list.to_string().contains(&first), "{list}");
    let (st, v) = s
        .call(
            "POST",
            "/v1/interviews",
            As::Service,
            Some(json!({"candidate": c, "recruiter": "acme"})),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (410, Some("candidate_erased")),
        "{v}"
    );
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/candidates/{c}/consents"),
            As::Service,
            Some(json!({"scope": "record"})),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (410, Some("candidate_erased")),
        "{v}"
    );

    let (st, again) = s.call("POST", &erase, As::Operator, None).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["already_erased"], true);
    let unknown = "/v1/admin/candidates/11111111-1111-4111-8111-111111111111/erase";
    let (st, v) = s.call("POST", unknown, As::Operator, None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (404, Some("unknown_candidate")),
        "{v}"
    );
    let (st, v) = s
        .call(
            "POST",
            "/v1/admin/candidates/..%2F..%2Fetc/erase",
            As::Operator,
            None,
        )
        .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_id")), "{v}");
    let erased = s.audit_count("candidate.erased");
    assert_eq!(erased, 2, "each erasure is audited");
}

/// A candidate's request to stop provision, then use, is carried out in one call each: every
/// standing grant of that kind is withdrawn (and recorded with the request's reference), the
/// recipient that received data is told, releases stop, and nothing else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_withdraws_every_grant_of_its_kind_and_the_recipient_is_told() {
    let s = server(|_| {}).await;
    let acme = s.recruiter("acme").await;
    let (hook, got) = receiver(200, Duration::ZERO).await;
    let (_, v) = s.set_webhook(&acme, &hook).await;
    let secret = v["signing_secret"].as_str().unwrap().to_string();
    let c = s.candidate().await;
    for body in [
        json!({"scope": "record"}),
        json!({"scope": "analyze"}),
        json!({"scope": "share.recording", "recipient": "acme"}),
        json!({"scope": "share.analysis", "recipient": "acme"}),
    ] {
        s.grant(&c, body).await;
    }
    let first = s.interview(&c, "acme").await;
    eventually("recording.ready", || {
        deliveries_of(&got, "recording.ready", &secret).len() == 1
    })
    .await;
    let suspend = format!("/v1/admin/candidates/{c}/suspend");
    let (st, v) = s
        .call("POST", &suspend, As::Operator, Some(json!({})))
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("nothing_to_suspend")),
        "{v}"
    );
    let (st, v) = s
        .call(
            "POST",
            &suspend,
            As::Operator,
            Some(json!({"provision": true, "reason": "x"})),
        )
        .await;
    assert_eq!(st, 400, "unknown fields are refused: {v}");

    let (st, report) = s
        .call(
            "POST",
            &suspend,
            As::Operator,
            Some(json!({"provision": true, "reference": "REQ-2026-0042"})),
        )
        .await;
    assert_eq!(st, 200, "{report}");
    let mut withdrawn: Vec<&str> = report["withdrawn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[0].as_str().unwrap())
        .collect();
    withdrawn.sort();
    assert_eq!(withdrawn, ["share.analysis:acme", "share.recording:acme"]);
    let (_, consents) = s
        .call(
            "GET",
            &format!("/v1/candidates/{c}/consents"),
            As::Service,
            None,
        )
        .await;
    let mut standing: Vec<&str> = consents["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["scope"].as_str().unwrap())
        .collect();
    standing.sort();
    assert_eq!(standing, ["analyze", "record"], "use goes on: {consents}");
    assert!(
        consents
            .to_string()
            .contains("suspension request REQ-2026-0042"),
        "{consents}"
    );
    eventually("consent.withdrawn at acme", || {
        !deliveries_of(&got, "consent.withdrawn", &secret).is_empty()
    })
    .await;
    let path = format!("/v1/recruiter/interviews/{first}/recording");
    let (st, v) = s.call("GET", &path, As::Key(&acme), None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (403, Some("share_consent_withdrawn"))
    );

    let (st, report) = s
        .call("POST", &suspend, As::Operator, Some(json!({"use": true})))
        .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["withdrawn"].as_array().unwrap().len(), 2, "{report}");
    let (st, v) = s
        .call(
            "POST",
            "/v1/interviews",
            As::Service,
            Some(json!({"candidate": c, "recruiter": "acme"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let r = s
        .put_media(
            v["interview_id"].as_str().unwrap(),
            v["ingest_token"].as_str().unwrap(),
            Some("video/webm"),
            common::fixtures::read("chromium-mediarecorder.webm"),
        )
        .await;
    assert_eq!(
        r.status(),
        403,
        "nothing is recorded while use is suspended"
    );
    let suspensions = s.audit_count("candidate.suspended");
    assert_eq!(suspensions, 2);
}

/// A candidate's profile is corrected in one call; the audit log names the fields, never a
/// value; a new home country moves nothing but names the interviews now abroad without a
/// `transfer` consent, until one is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_is_audited_without_values_and_names_interviews_left_abroad() {
    let s = server(|_| {}).await;
    s.recruiter("acme").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    let first = s.interview(&c, "acme").await;
    let patch = format!("/v1/admin/candidates/{c}");
    for (bad, code) in [
        (json!({}), "invalid_field"),
        (json!({"language": "fr"}), "invalid_field"),
        (json!({"home_country": "Germany"}), "invalid_id"),
        (json!({"external_ref": ""}), "invalid_field"),
        (json!({"name": "Taro"}), "malformed_json"),
    ] {
        let (st, v) = s
            .call("PATCH", &patch, As::Operator, Some(bad.clone()))
            .await;
        assert_eq!(st, 400, "{bad}: {v}");
        assert_eq!(v["error"], code, "{bad}: {v}");
    }
    let (st, _) = s
        .call(
            "PATCH",
            &patch,
            As::Service,
            Some(json!({"language": "en"})),
        )
        .await;
    assert!(st == 401 || st == 403, "only the operator corrects: {st}");

    let (st, report) = s
        .call(
            "PATCH",
            &patch,
            As::Operator,
            Some(
                json!({"external_ref": "applicant-8841-b", "home_country": "DE", "language": "en"}),
            ),
        )
        .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(
        report["corrected"],
        json!(["external_ref", "home_country", "language"])
    );
    assert_eq!(
        report["needs_transfer_consent"],
        json!([{"interview": first, "region": "jp", "country": "JP"}])
    );
    let id = kiroku::ids::CandidateId::parse(&c).unwrap();
    let row = s.app.catalog.candidate(&id).unwrap().unwrap();
    assert_eq!(row.home_country.as_str(), "DE");
    assert_eq!(
        s.app.catalog.candidate_language(&id).unwrap(),
        Some(kiroku::vocab::Language::En)
    );
    let corrected = s
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "candidate.corrected")
        .expect("audited");
    assert_eq!(
        corrected["data"]["fields"],
        json!(["external_ref", "home_country", "language"])
    );
    let log = common::audit::log(s.data());
    assert!(!log.contains("applicant-8841"), "no value, old or new");
    assert!(!log.contains("\"DE\""), "{log}");

    s.grant(&c, json!({"scope": "transfer", "country": "JP"}))
        .await;
    let (st, report) = s
        .call(
            "PATCH",
            &patch,
            As::Operator,
            Some(json!({"home_country": "DE"})),
        )
        .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["needs_transfer_consent"], json!([]));
}

/// Over the API a disclosure export is a job, always encrypted to its requester: refused
/// without a recipient or passphrase, followed by its status, fetched once done, opened with
/// the passphrase, and removed on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_job_is_encrypted_followed_fetched_and_removed() {
    use std::io::Read;
    let s = server(|_| {}).await;
    s.recruiter("acme").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    let interview = s.interview(&c, "acme").await;
    let start = format!("/v1/admin/candidates/{c}/export");
    let (st, v) = s.call("POST", &start, As::Operator, Some(json!({}))).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("encryption_required")),
        "{v}"
    );
    let (st, v) = s
        .call(
            "POST",
            &start,
            As::Operator,
            Some(json!({"age_recipient": "age1nope"})),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_field")),
        "{v}"
    );
    let (st, _) = s
        .call(
            "POST",
            &start,
            As::Service,
            Some(json!({"passphrase": "x".repeat(20)})),
        )
        .await;
    assert!(st == 401 || st == 403, "only the operator exports: {st}");
    let unknown = "/v1/admin/candidates/11111111-1111-4111-8111-111111111111/export";
    let (st, _) = s
        .call(
            "POST",
            unknown,
            As::Operator,
            Some(json!({"passphrase": "x".repeat(20)})),
        )
        .await;
    assert_eq!(st, 404);

    const PASSPHRASE: &str = "correct horse battery staple";
    let (st, v) = s
        .call(
            "POST",
            &start,
            As::Operator,
            Some(json!({"passphrase": PASSPHRASE})),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let job = v["status_url"].as_str().unwrap().to_string();
    let mut status = Value::Null;
    for _ in 0..200 {
        status = s.call("GET", &job, As::Operator, None).await.1;
        if status["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["status"], "done", "{status}");
    assert_eq!(status["recordings"], 1);
    assert_eq!(status["encrypted"], true);
    let (st, headers, sealed) = s
        .raw("GET", &format!("{job}/archive"), As::Operator, None, &[])
        .await;
    assert_eq!(st, 200);
    assert_eq!(sealed.len() as u64, status["bytes"].as_u64().unwrap());
    assert!(format!("{headers:?}").contains("kiroku-export-"));
    let identity = age::scrypt::Identity::new(PASSPHRASE.to_string().into());
    let mut plain = Vec::new();
    age::Decryptor::new(&sealed[..])
        .unwrap()
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let names: Vec<String> = tar::Archive::new(&plain[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    for expected in [
        "README.txt".to_string(),
        "profile.json".into(),
        "consents.json".into(),
        "provisions.json".into(),
        format!("interviews/{interview}/interview.json"),
        format!("interviews/{interview}/recording.webm"),
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let (st, _) = s.call("DELETE", &job, As::Operator, None).await;
    assert_eq!(st, 204);
    let (st, _) = s.call("GET", &job, As::Operator, None).await;
    assert_eq!(st, 404);
    assert!(
        std::fs::read_dir(s.data().join("exports"))
            .unwrap()
            .next()
            .is_none(),
        "the archive is gone"
    );
    let (st, _) = s
        .call(
            "GET",
            "/v1/admin/exports/..%2F..%2Fcatalog.db",
            As::Operator,
            None,
        )
        .await;
    assert_eq!(st, 404);
}

/// With recordings kept 30 days, a sweep deletes exactly the recording that ended before
/// that: the dry run lists it and changes nothing; then its objects go, every path answers
/// 410 `recording_expired`, the newer one is untouched, and a second sweep finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_sweep_deletes_exactly_the_expired_recordings_and_a_dry_run_nothing() {
    let s = server(|cfg| cfg.retention.recordings_days = 30).await;
    let acme = s.recruiter("acme").await;
    let c = s.candidate().await;
    s.grant(&c, json!({"scope": "record"})).await;
    s.grant(&c, json!({"scope": "share.recording", "recipient": "acme"}))
        .await;
    let old = s.interview(&c, "acme").await;
    let new = s.interview(&c, "acme").await;
    let db = common::postgres::catalog_db(s.data());
    db.execute(
        "UPDATE interviews SET ended_at = '2026-01-05T09:00:00+09:00' WHERE id = ?1",
        [&old],
    )
    .unwrap();
    let (old_id, new_id) = (
        kiroku::ids::InterviewId::parse(&old).unwrap(),
        kiroku::ids::InterviewId::parse(&new).unwrap(),
    );
    let app = s.app.clone();
    let now = kiroku::util::now_unix();
    let dry = tokio::task::spawn_blocking(move || kiroku::subject::sweep(&app, now, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        dry.expired,
        [kiroku::subject::Expired::Recording { interview: old_id }]
    );
    assert_eq!(dry.objects_deleted, 0);
    assert!(
        kiroku::recording::rebuild(&s.app, &old_id).is_ok(),
        "the dry run deleted nothing"
    );
    let segments = s.app.catalog.segments(&old_id).unwrap().len();

    let app = s.app.clone();
    let swept = tokio::task::spawn_blocking(move || kiroku::subject::sweep(&app, now, false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(swept.expired, dry.expired);
    assert_eq!(
        swept.objects_deleted,
        segments + 3,
        "segments, manifest, finished header and trailer"
    );
    let err = kiroku::recording::rebuild(&s.app, &old_id).err().unwrap();
    assert!(
        matches!(err, kiroku::recording::RecordingError::Expired),
        "{err}"
    );
    assert!(kiroku::recording::rebuild(&s.app, &new_id).is_ok());
    let path = format!("/v1/recruiter/interviews/{old}/recording");
    let (st, v) = s.call("GET", &path, As::Key(&acme), None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (410, Some("recording_expired")),
        "{v}"
    );
    let (_, list) = s
        .call("GET", "/v1/recruiter/interviews", As::Key(&acme), None)
        .await;
    assert!(!list.to_string().contains(&old), "{list}");
    assert!(list.to_string().contains(&new), "{list}");
    let objects = std::fs::read_dir(s.data().join(format!(
        "regions/jp/objects/candidates/{c}/interviews/{old}/segments"
    )))
    .map(|d| d.count())
    .unwrap_or(0);
    assert_eq!(
        objects, 0,
        "no segment object of the expired recording is left"
    );
    let finished = std::fs::read_dir(s.data().join(format!(
        "regions/jp/objects/candidates/{c}/interviews/{old}/finished"
    )))
    .map(|d| d.count())
    .unwrap_or(0);
    assert_eq!(finished, 0, "nor its finished header or trailer");
    assert!(
        s.audit_events()
            .iter()
            .any(|e| e["event"] == "retention.swept"),
        "the sweep is audited"
    );
    let app = s.app.clone();
    let again = tokio::task::spawn_blocking(move || kiroku::subject::sweep(&app, now, false))
        .await
        .unwrap()
        .unwrap();
    assert!(again.expired.is_empty(), "{:?}", again.expired);
}
