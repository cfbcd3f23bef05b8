//! kiroku's HTTP API served in-process on a free loopback port, and a client that calls it
//! with each kind of credential. The server lives as long as the test's runtime.

use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderMap;
use kiroku::app::Kiroku;
use kiroku::config::Config;
use serde_json::Value;

/// The service token the test front-end calls with.
pub const SERVICE: &str = "service-token-for-the-tests-0123456789";
/// The operator token the test operator calls with.
pub const OPERATOR: &str = "operator-token-for-the-tests-0123456789";

/// A served kiroku and a client for it.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub app: Arc<Kiroku>,
    /// `http://127.0.0.1:<port>`, also the configured `release.public_url`.
    pub base: String,
    pub http: reqwest::Client,
}

/// A credential to call with.
#[derive(Clone, Copy, Debug)]
pub enum As<'a> {
    Nobody,
    Service,
    Operator,
    Key(&'a str),
    /// A page's session: its cookie, and its CSRF token on requests that change anything.
    Page(&'a PageSession),
    /// A page's session cookie without the CSRF token (a forged cross-site request).
    CookieOnly(&'a PageSession),
}

/// A page's session as a browser holds it: the cookie kiroku set, and the CSRF token
/// `GET /v1/session` told the page.
#[derive(Clone, Debug)]
pub struct PageSession {
    pub cookie: String,
    pub csrf: String,
}

/// The `kiroku_session=…` pair of a response's `Set-Cookie`.
pub fn session_cookie(headers: &HeaderMap) -> String {
    let set = headers
        .get("set-cookie")
        .expect("a session cookie is set")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().trim().to_string()
}

/// Serves a fresh kiroku in a temporary data dir: [`super::app::config`] with the
/// [`SERVICE`] and [`OPERATOR`] tokens and its own address as the public URL, then `tweak`.
pub async fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut cfg = super::app::config(dir.path());
    cfg.service_token = Some(SERVICE.into());
    cfg.operator_token = Some(OPERATOR.into());
    cfg.release.public_url = base.clone();
    tweak(&mut cfg);
    let app = super::app::open(cfg);
    tokio::spawn(kiroku::http::serve_on(listener, app.clone()));
    Server {
        dir,
        app,
        base,
        // Redirects are the test's to follow: a link's 303 carries the session cookie.
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl Server {
    /// The data dir.
    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    /// Calls `method path` as `who` with an optional JSON body: (status, JSON body or null).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        who: As<'_>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, bytes) = self.raw(method, path, who, body, &[]).await;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v)
    }

    /// Calls `method path` as `who` with an optional JSON body and extra headers:
    /// (status, headers, body bytes).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        who: As<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, Vec<u8>) {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        r = match who {
            As::Nobody => r,
            As::Service => r.bearer_auth(SERVICE),
            As::Operator => r.bearer_auth(OPERATOR),
            As::Key(k) => r.bearer_auth(k),
            As::Page(p) => r
                .header("cookie", &p.cookie)
                .header("x-csrf-token", &p.csrf),
            As::CookieOnly(p) => r.header("cookie", &p.cookie),
        };
        if let Some(b) = body {
            r = r.json(&b);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        (status, h, resp.bytes().await.unwrap().to_vec())
    }

    /// The page session whose cookie a response set: the CSRF token from `GET /v1/session`.
    pub async fn page_session(&self, headers: &HeaderMap) -> PageSession {
        let cookie = session_cookie(headers);
        let mut s = PageSession {
            cookie,
            csrf: String::new(),
        };
        let (st, v) = self.call("GET", "/v1/session", As::Page(&s), None).await;
        assert_eq!(st, 200, "{v}");
        s.csrf = v["csrf"].as_str().unwrap().to_string();
        s
    }

    /// The path of a candidate's single-use link, asked for by the front-end's backend (for
    /// an interview with `recruiter`).
    pub async fn candidate_link(&self, c: &str, recruiter: Option<&str>) -> String {
        let body = match recruiter {
            Some(r) => serde_json::json!({"recruiter": r}),
            None => serde_json::json!({}),
        };
        let (st, v) = self
            .call(
                "POST",
                &format!("/v1/candidates/{c}/sessions"),
                As::Service,
                Some(body),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["path"].as_str().unwrap().to_string()
    }

    /// The candidate's own session, as their browser gets it: the front-end asks for a link,
    /// the candidate opens it and presses its button (a POST to the link).
    pub async fn candidate_session(&self, c: &str, recruiter: Option<&str>) -> PageSession {
        let link = self.candidate_link(c, recruiter).await;
        let (st, headers, _) = self.raw("POST", &link, As::Nobody, None, &[]).await;
        assert_eq!(st, 303, "opening the link sends the candidate on");
        self.page_session(&headers).await
    }

    /// A recruiter's or the operator's page sign-in (`path`, `body`).
    pub async fn sign_in(&self, path: &str, body: Value) -> PageSession {
        let (st, headers, bytes) = self.raw("POST", path, As::Nobody, Some(body), &[]).await;
        assert_eq!(st, 201, "{}", String::from_utf8_lossy(&bytes));
        self.page_session(&headers).await
    }

    /// A finished interview of `c` for `recruiter`, made of `fixtures/<fixture>` sent with
    /// `content_type` in one upload.
    pub async fn finished_interview(
        &self,
        c: &str,
        recruiter: &str,
        fixture: &str,
        content_type: &str,
    ) -> String {
        let media = super::fixtures::read(fixture);
        self.interview_of(c, recruiter, media, content_type).await
    }

    /// An interview of candidate `c` for `recruiter`, created over the API and uploaded whole
    /// (`media`, sent as `content_type`); returns its id once capture has ended.
    pub async fn interview_of(
        &self,
        c: &str,
        recruiter: &str,
        media: Vec<u8>,
        content_type: &str,
    ) -> String {
        let (st, v) = self
            .call(
                "POST",
                "/v1/interviews",
                As::Service,
                Some(serde_json::json!({"candidate": c, "recruiter": recruiter})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        let id = v["interview_id"].as_str().unwrap().to_string();
        let r = self
            .put_media(
                &id,
                v["ingest_token"].as_str().unwrap(),
                Some(content_type),
                media,
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        id
    }

    /// `PUT /v1/interviews/<id>/media` with an ingest token, the body sent as `content_type`
    /// (no header when `None`).
    pub async fn put_media(
        &self,
        id: &str,
        token: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut r = self
            .http
            .put(format!("{}/v1/interviews/{id}/media", self.base))
            .bearer_auth(token);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.body(body).send().await.unwrap()
    }

    /// `POST <path>` as the service with `body` sent verbatim as JSON, well-formed or not.
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(SERVICE)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

/// [`start`], with the privacy notice and the recruiter `acme` that interviews need.
pub async fn start_ready(tweak: impl FnOnce(&mut Config)) -> Server {
    let s = start(tweak).await;
    super::app::privacy_basics(&s.app);
    s
}

/// An interview created over the API for a candidate in Japan with `record` consent.
pub struct CreatedInterview {
    pub candidate: kiroku::ids::CandidateId,
    pub id: String,
    pub ingest_token: String,
    pub resume_token: String,
}

impl Server {
    /// `POST /v1/interviews` for a new candidate in Japan with `record` consent, recruiter
    /// `acme`.
    pub async fn create_interview(&self) -> CreatedInterview {
        let candidate = super::candidates::add(&self.app, "JP", &[kiroku::consent::Scope::Record]);
        let (status, body) = self
            .call(
                "POST",
                "/v1/interviews",
                As::Service,
                Some(serde_json::json!({"candidate": candidate.to_string(), "recruiter": "acme"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let field = |k: &str| body[k].as_str().unwrap().to_string();
        CreatedInterview {
            candidate,
            id: field("interview_id"),
            ingest_token: field("ingest_token"),
            resume_token: field("resume_token"),
        }
    }

    /// Exports interview `id` into the data dir and checks that it decodes to the same
    /// streams, frames and duration as `fixtures/<fixture>`.
    pub fn assert_exports_as(&self, id: &str, fixture: &str) {
        let out = self.dir.path().join(format!("{id}.export"));
        kiroku::recording::export(
            &self.app,
            &kiroku::ids::InterviewId::parse(id).unwrap(),
            &out,
        )
        .unwrap();
        super::media::assert_same_media(&super::fixtures::path(fixture), &out);
    }

    /// The interview's status as the service reads it.
    pub async fn status(&self, id: &str) -> Value {
        let (status, v) = self
            .call("GET", &format!("/v1/interviews/{id}"), As::Service, None)
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Waits, at most `within`, until the interview's capture has ended; its status then.
    pub async fn wait_until_ended(&self, id: &str, within: std::time::Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.status(id).await;
            if v["state"] != "capturing" && v["state"] != "created" {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still capturing: {v}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
