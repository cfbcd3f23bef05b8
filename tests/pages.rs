//! The pages' sessions and rules over HTTP: a candidate's single-use link and what their
//! session may do (and only for them), sharing consents that need the candidate, CSRF,
//! recruiters' and the operator's sign-ins, the withheld reason a viewer shows, and every
//! page under a strict Content-Security-Policy.

mod common;

use common::server::{self, As, PageSession, Server};
use kiroku::consent::Scope;
use serde_json::{Value, json};

/// A served kiroku with the notice and recruiter `acme`, and a candidate in Japan.
async fn ready() -> (Server, String) {
    let s = server::start_ready(|_| {}).await;
    let c = common::candidates::add(&s.app, "JP", &[]);
    (s, c.to_string())
}

fn handle(h: &str) -> kiroku::ids::RecruiterHandle {
    kiroku::ids::RecruiterHandle::parse(h).unwrap()
}

async fn history_len(s: &Server, c: &str) -> usize {
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/candidates/{c}/consents"),
            As::Service,
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["history"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_service_token_alone_cannot_grant_sharing_or_transfer() {
    let (s, c) = ready().await;
    let path = format!("/v1/candidates/{c}/consents");
    for body in [
        json!({"scope": "share.recording", "recipient": "acme"}),
        json!({"scope": "share.analysis", "recipient": "acme"}),
        json!({"scope": "transfer", "country": "US"}),
    ] {
        let (st, v) = s.call("POST", &path, As::Service, Some(body)).await;
        assert_eq!(st, 403, "{v}");
        assert_eq!(v["error"], "candidate_session_required");
    }
    assert_eq!(history_len(&s, &c).await, 0, "nothing was recorded");
    // What the front-end collects itself it still records.
    let (st, v) = s
        .call("POST", &path, As::Service, Some(json!({"scope": "record"})))
        .await;
    assert_eq!(st, 201, "{v}");
    // An operator records sharing from a paper form, with its reference.
    let paper = format!("/v1/admin/candidates/{c}/consents");
    let (st, v) = s
        .call(
            "POST",
            &paper,
            As::Operator,
            Some(json!({"scope": "share.recording", "recipient": "acme", "reference": "  "})),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("paper_reference_required"))
    );
    let (st, v) = s
        .call(
            "POST",
            &paper,
            As::Operator,
            Some(json!({"scope": "share.recording", "recipient": "acme", "reference": "form-17"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["event"]["method"], "paper");
    assert_eq!(v["event"]["origin"], "paper:form-17");
}

#[tokio::test]
async fn a_candidate_link_opens_once_into_a_session_that_grants_for_that_candidate_only() {
    let (s, c) = ready().await;
    let other = common::candidates::add(&s.app, "JP", &[Scope::Record]).to_string();
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/candidates/{c}/sessions"),
            As::Service,
            Some(json!({"recruiter": "acme", "language": "ja"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert!(v["url"].as_str().unwrap().starts_with(&s.base));
    let link = v["path"].as_str().unwrap().to_string();
    // Fetching the link (a mail scanner, a preview) spends nothing: it is a page whose
    // button opens the session.
    for _ in 0..2 {
        let (st, h, body) = s.raw("GET", &link, As::Nobody, None, &[]).await;
        assert_eq!(st, 200);
        assert!(h.get("set-cookie").is_none());
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains(&format!("action=\"{link}\"")), "{html}");
    }
    // Another site's form cannot open it for the visitor (login CSRF); the link stays.
    let (st, _, body) = s
        .raw(
            "POST",
            &link,
            As::Nobody,
            None,
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(st, 403, "{}", String::from_utf8_lossy(&body));
    let (st, headers, _) = s
        .raw(
            "POST",
            &link,
            As::Nobody,
            None,
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(st, 303);
    assert_eq!(headers["location"], "/pages/interview.html");
    let set = headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    let me = s.page_session(&headers).await;
    // The link is spent: a second opening (another tab, a forwarded mail) gets nothing.
    for method in ["POST", "GET"] {
        let (st, _, body) = s.raw(method, &link, As::Nobody, None, &[]).await;
        assert_eq!(st, 410, "{method}");
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["error"],
            "link_spent"
        );
    }
    let (st, _, _) = s.raw("GET", "/c/%3Cscript%3E", As::Nobody, None, &[]).await;
    assert_eq!(st, 410, "no such link, and nothing of it echoed");

    let (st, v) = s.call("GET", "/v1/session", As::Page(&me), None).await;
    assert_eq!((st, v["kind"].as_str()), (200, Some("candidate")));
    assert_eq!(v["language"], "ja");
    let (st, v) = s.call("GET", "/v1/me", As::Page(&me), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["candidate_id"], c.as_str());
    assert_eq!(v["recruiter"]["handle"], "acme");
    let (st, v) = s
        .call(
            "POST",
            "/v1/me/consents",
            As::Page(&me),
            Some(json!({"scope": "share.recording", "recipient": "acme"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    // Only with the company the link names: a session cannot share with anyone else.
    kiroku::recruiter::add(&s.app, &handle("globex"), None).unwrap();
    let (st, refused) = s
        .call(
            "POST",
            "/v1/me/consents",
            As::Page(&me),
            Some(json!({"scope": "share.recording", "recipient": "globex"})),
        )
        .await;
    assert_eq!((st, refused["error"].as_str()), (403, Some("not_offered")));
    assert_eq!(v["event"]["method"], "web_form");
    assert_eq!(v["event"]["origin"], "kiroku-candidate-page");
    // The signed receipt says how and by whom it was given.
    let receipt = &v["receipt"]["receipt"];
    assert_eq!(receipt["kiroku"]["scope"], "share.recording:acme");
    assert_eq!(receipt["collectionMethod"], "web_form");
    assert_eq!(receipt["kiroku"]["origin"], "kiroku-candidate-page");
    let audit = common::audit::log(s.data());
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"consent.granted\"") && l.contains("\"candidate\"")),
        "the grant is audited as the candidate's own"
    );

    // Only for themselves: another candidate's consent is not theirs to withdraw, and the
    // service endpoints do not take a candidate's cookie.
    let theirs = s
        .call(
            "GET",
            &format!("/v1/candidates/{other}/consents"),
            As::Service,
            None,
        )
        .await
        .1["current"][0]["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/me/consents/{theirs}/withdraw"),
            As::Page(&me),
            None,
        )
        .await;
    assert_eq!((st, v["error"].as_str()), (404, Some("unknown_consent")));
    let (st, _) = s
        .call(
            "POST",
            &format!("/v1/candidates/{other}/consents"),
            As::Page(&me),
            Some(json!({"scope": "analyze"})),
        )
        .await;
    assert_eq!(st, 401);
    assert_eq!(
        history_len(&s, &other).await,
        1,
        "only their own record grant"
    );
}

#[tokio::test]
async fn a_change_without_the_sessions_csrf_token_is_refused_and_records_nothing() {
    let (s, c) = ready().await;
    let me = s.candidate_session(&c, Some("acme")).await;
    let forged = PageSession {
        cookie: me.cookie.clone(),
        csrf: "not-the-token".into(),
    };
    for who in [As::CookieOnly(&me), As::Page(&forged)] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/me/consents",
                who,
                Some(json!({"scope": "share.recording", "recipient": "acme"})),
            )
            .await;
        assert_eq!((st, v["error"].as_str()), (403, Some("csrf_failed")), "{v}");
    }
    assert_eq!(history_len(&s, &c).await, 0);
    // Reading needs no token; signing out does.
    let (st, _) = s.call("GET", "/v1/me", As::CookieOnly(&me), None).await;
    assert_eq!(st, 200);
    let (st, _) = s
        .call("POST", "/v1/session/logout", As::CookieOnly(&me), None)
        .await;
    assert_eq!(st, 403);
    let (st, _) = s
        .call("POST", "/v1/session/logout", As::Page(&me), None)
        .await;
    assert_eq!(st, 204);
    let (st, v) = s.call("GET", "/v1/me", As::Page(&me), None).await;
    assert_eq!((st, v["error"].as_str()), (401, Some("session_required")));
}

#[tokio::test]
async fn an_expired_link_and_an_erased_candidates_session_open_nothing() {
    let s = server::start_ready(|cfg| cfg.pages.link_ttl_seconds = 1).await;
    let c = common::candidates::add(&s.app, "JP", &[]).to_string();
    let (_, v) = s
        .call(
            "POST",
            &format!("/v1/candidates/{c}/sessions"),
            As::Service,
            Some(json!({})),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (st, _, _) = s
        .raw("POST", v["path"].as_str().unwrap(), As::Nobody, None, &[])
        .await;
    assert_eq!(st, 410);
    let me = s.candidate_session(&c, None).await;
    let cid = kiroku::ids::CandidateId::parse(&c).unwrap();
    kiroku::subject::erase(&s.app, &cid, &kiroku::audit::Actor::Operator).unwrap();
    let (st, v) = s.call("GET", "/v1/me", As::Page(&me), None).await;
    assert_eq!(st, 401, "the erasure ended their sessions: {v}");
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/candidates/{c}/sessions"),
            As::Service,
            Some(json!({})),
        )
        .await;
    assert_eq!((st, v["error"].as_str()), (410, Some("candidate_erased")));
}

#[tokio::test]
async fn a_recruiter_session_sees_its_own_interviews_and_the_reason_one_is_withheld() {
    let (s, c) = ready().await;
    common::candidates::grant(
        &s.app,
        &kiroku::ids::CandidateId::parse(&c).unwrap(),
        Scope::Record,
    );
    let acme = kiroku::recruiter::rotate(&s.app, &handle("acme")).unwrap();
    kiroku::recruiter::add(&s.app, &handle("globex"), None).unwrap();
    let id = s
        .finished_interview(&c, "acme", "chromium-mediarecorder.webm", "video/webm")
        .await;
    let me = s.candidate_session(&c, Some("acme")).await;
    let (_, g) = s
        .call(
            "POST",
            "/v1/me/consents",
            As::Page(&me),
            Some(json!({"scope": "share.recording", "recipient": "acme"})),
        )
        .await;
    let (st, _, _) = s
        .raw(
            "POST",
            "/v1/session/recruiter",
            As::Nobody,
            Some(json!({"api_key": "krk_0000000000000000_nope"})),
            &[],
        )
        .await;
    assert_eq!(st, 401, "a wrong key opens no session");
    let viewer = s
        .sign_in("/v1/session/recruiter", json!({"api_key": acme}))
        .await;
    let (st, v) = s
        .call("GET", "/v1/recruiter/interviews", As::Page(&viewer), None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["interviews"][0]["interview_id"], id.as_str());
    let status = format!("/v1/recruiter/interviews/{id}");
    let (st, v) = s.call("GET", &status, As::Page(&viewer), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["items"]["recording"]["released"], true);
    assert_eq!(v["items"]["analysis"]["error"], "no_share_consent");
    // The player's Range request works with the cookie alone.
    let (st, h, body) = s
        .raw(
            "GET",
            &format!("{status}/recording"),
            As::CookieOnly(&viewer),
            None,
            &[("range", "bytes=0-99")],
        )
        .await;
    assert_eq!((st, body.len()), (206, 100));
    assert!(
        h["content-range"]
            .to_str()
            .unwrap()
            .starts_with("bytes 0-99/")
    );

    // The candidate withdraws: the viewer is told why, and when.
    let withdraw = format!(
        "/v1/me/consents/{}/withdraw",
        g["consent_id"].as_str().unwrap()
    );
    let (st, w) = s.call("POST", &withdraw, As::Page(&me), None).await;
    assert_eq!(st, 200, "{w}");
    let (_, v) = s.call("GET", &status, As::Page(&viewer), None).await;
    let rec = &v["items"]["recording"];
    assert_eq!(rec["released"], false);
    assert_eq!(rec["error"], "share_consent_withdrawn");
    let at = w["event"]["at"].as_str().unwrap();
    assert_eq!(rec["details"]["withdrawn_at"], at);
    assert!(rec["message"].as_str().unwrap().contains(at));

    // Another recruiter's session does not see the interview at all.
    let globex = kiroku::recruiter::rotate(&s.app, &handle("globex")).unwrap();
    let other = s
        .sign_in("/v1/session/recruiter", json!({"api_key": globex}))
        .await;
    let (st, v) = s.call("GET", &status, As::Page(&other), None).await;
    assert_eq!((st, v["error"].as_str()), (404, Some("unknown_interview")));
    // A candidate's session is not a recruiter's.
    let (st, v) = s.call("GET", &status, As::Page(&me), None).await;
    assert_eq!((st, v["error"].as_str()), (403, Some("wrong_session")));
    // A new key for acme signs out the sessions opened with the old one.
    kiroku::recruiter::rotate(&s.app, &handle("acme")).unwrap();
    let (st, _) = s
        .call("GET", "/v1/recruiter/interviews", As::Page(&viewer), None)
        .await;
    assert_eq!(st, 401);
    let acme = kiroku::recruiter::rotate(&s.app, &handle("acme")).unwrap();
    let viewer = s
        .sign_in("/v1/session/recruiter", json!({"api_key": acme}))
        .await;
    // Revoking acme signs its people out.
    kiroku::recruiter::revoke(&s.app, &handle("acme")).unwrap();
    let (st, _) = s
        .call("GET", "/v1/recruiter/interviews", As::Page(&viewer), None)
        .await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn the_operator_console_session_sees_the_candidates_rights_requests() {
    let (s, c) = ready().await;
    let me = s.candidate_session(&c, None).await;
    let (st, r) = s
        .call(
            "POST",
            "/v1/me/requests",
            As::Page(&me),
            Some(json!({"kind": "erasure"})),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    let (st, _, _) = s
        .raw(
            "POST",
            "/v1/session/operator",
            As::Nobody,
            Some(json!({"token": "not-the-operator-token-at-all"})),
            &[],
        )
        .await;
    assert_eq!(st, 401);
    let console = s
        .sign_in("/v1/session/operator", json!({"token": server::OPERATOR}))
        .await;
    let (st, v) = s
        .call("GET", "/v1/admin/requests", As::Page(&console), None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["requests"][0]["candidate_id"], c.as_str());
    assert_eq!(v["requests"][0]["kind"], "erasure");
    let close = format!("/v1/admin/requests/{}/close", r["id"].as_str().unwrap());
    let (st, _) = s.call("POST", &close, As::CookieOnly(&console), None).await;
    assert_eq!(st, 403, "no CSRF token");
    let (st, _) = s.call("POST", &close, As::Page(&console), None).await;
    assert_eq!(st, 204);
    let (st, _) = s.call("POST", &close, As::Page(&console), None).await;
    assert_eq!(st, 404, "closed once");
    // A candidate's session is no operator's.
    let (st, _) = s
        .call("GET", "/v1/admin/requests", As::Page(&me), None)
        .await;
    assert_eq!(st, 403);
    let audit = common::audit::log(s.data());
    assert!(audit.contains("\"candidate.rights_requested\""));
}

#[tokio::test]
async fn every_page_is_served_under_a_strict_content_security_policy_with_no_inline_script() {
    let s = server::start(|_| {}).await;
    for page in [
        "index.html",
        "interview.html",
        "privacy.html",
        "recruiter.html",
        "console.html",
    ] {
        let (st, h, body) = s
            .raw("GET", &format!("/pages/{page}"), As::Nobody, None, &[])
            .await;
        assert_eq!(st, 200, "{page}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
                && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        let html = String::from_utf8(body).unwrap();
        for tag in html.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap();
            assert!(open.contains("src="), "{page} has an inline script");
        }
        assert!(
            !html.contains(" onclick=") && !html.contains(" style="),
            "{page}"
        );
        for script in html.split("src=\"/pages/").skip(1) {
            let name = script.split('"').next().unwrap();
            let (st, h, _) = s
                .raw("GET", &format!("/pages/{name}"), As::Nobody, None, &[])
                .await;
            assert_eq!(st, 200, "{page} loads {name}");
            assert!(
                h["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/javascript")
            );
        }
    }
    let (st, _, body) = s
        .raw("GET", "/pages/../Cargo.toml", As::Nobody, None, &[])
        .await;
    assert_eq!(st, 404, "{}", String::from_utf8_lossy(&body));
}

/// The candidate's own interview and requests refuse what their page cannot mean: an
/// interview when the link named no company (409 `no_recruiter`), a request of a kind that
/// does not exist (400), neither recording anything.
#[tokio::test]
async fn a_candidate_session_refuses_an_interview_without_a_company_and_an_unknown_request() {
    let (s, c) = ready().await;
    common::candidates::grant(
        &s.app,
        &kiroku::ids::CandidateId::parse(&c).unwrap(),
        Scope::Record,
    );
    let alone = s.candidate_session(&c, None).await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/me/interviews",
            As::Page(&alone),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (409, Some("no_recruiter")),
        "{v}"
    );
    let (st, _) = s
        .call(
            "POST",
            "/v1/me/requests",
            As::Page(&alone),
            Some(json!({"kind": "everything"})),
        )
        .await;
    assert_eq!(st, 400);
    let (_, me) = s.call("GET", "/v1/me", As::Page(&alone), None).await;
    assert_eq!(me["interviews"], json!([]));
    assert_eq!(me["requests"], json!([]));
    // With the company named, the page gets an interview and its tokens.
    let with_acme = s.candidate_session(&c, Some("acme")).await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/me/interviews",
            As::Page(&with_acme),
            Some(json!({"content_type": "video/webm"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert!(v["ingest_token"].is_string() && v["resume_token"].is_string());
}
