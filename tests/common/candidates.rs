//! Candidates and their consents, made through the library as the service would.

use kiroku::app::Kiroku;
use kiroku::audit::Actor;
use kiroku::consent::{Circumstances, GrantRequest, Method, Scope, WithdrawRequest, Withdrawal};
use kiroku::ids::{CandidateId, CountryCode};

/// A candidate living in `home` (an ISO country code) who granted each of `scopes`.
pub fn add(app: &Kiroku, home: &str, scopes: &[Scope]) -> CandidateId {
    let c = app
        .catalog
        .add_candidate("ref", &CountryCode::parse(home).unwrap())
        .unwrap();
    for scope in scopes {
        grant(app, &c, scope.clone());
    }
    c
}

/// How tests report consent events: a web form, from the test front-end.
pub fn web_form() -> Circumstances {
    Circumstances {
        method: Method::WebForm,
        origin: "test-front-end".into(),
        language: None,
        time_zone: None,
    }
}

/// Grants a scope under the newest notice; returns the consent id.
pub fn grant(app: &Kiroku, c: &CandidateId, scope: Scope) -> String {
    app.clerk()
        .grant(
            c,
            &GrantRequest {
                scope,
                notice: None,
                how: web_form(),
            },
            // The candidate, in their own session: the one online road for `share.*` and
            // `transfer` grants.
            &Actor::Candidate,
        )
        .unwrap()
        .event
        .id
}

/// Withdraws a standing scope.
pub fn withdraw(app: &Kiroku, c: &CandidateId, scope: Scope) {
    app.clerk()
        .withdraw(
            c,
            &WithdrawRequest {
                target: Withdrawal::Scope(scope),
                how: web_form(),
            },
            &Actor::Service,
        )
        .unwrap();
}
