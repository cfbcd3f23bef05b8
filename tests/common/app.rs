//! Opening a kiroku for a test: the config every test starts from and the one place an app is
//! opened, so a change to how kiroku opens is made in [`open`] alone.

use std::path::Path;
use std::sync::Arc;

use kiroku::app::Kiroku;
use kiroku::config::Config;
use kiroku::consent::Scope;
use kiroku::ids::CandidateId;

/// The default config on `dir`, with the checkout's pipeline descriptions.
pub fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        pipelines_dir: Some(super::fixtures::pipelines()),
        // In the test's own folder, so it goes with it (kiroku's default is the data dir's
        // sibling `<data_dir>.keys`).
        keys: kiroku::config::KeysConfig {
            dir: Some(dir.join("keyring")),
            database: super::postgres::whole_suite().then(|| super::postgres::keyring_url_for(dir)),
            ..Default::default()
        },
        catalog: super::postgres::whole_suite().then(|| super::postgres::catalog_url_for(dir)),
        ..Config::default()
    }
}

/// Opens kiroku on `cfg` with its listeners, as `kiroku serve` and the CLI do. Every test
/// opens its app here and nowhere else.
pub fn open(cfg: Config) -> Arc<Kiroku> {
    kiroku::node::open(cfg).unwrap()
}

/// A kiroku on `dir` ready to capture: [`config`] with `tweak` applied, opened, and the
/// [`privacy_basics`] registered.
pub fn ready(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Arc<Kiroku> {
    let mut cfg = config(dir);
    tweak(&mut cfg);
    let app = open(cfg);
    privacy_basics(&app);
    app
}

/// A kiroku [`ready`] in a fresh temporary data dir (deleted when the guard is dropped), and
/// one candidate in Japan who granted `scopes`.
pub fn with_candidate(
    scopes: &[Scope],
    tweak: impl FnOnce(&mut Config),
) -> (tempfile::TempDir, Arc<Kiroku>, CandidateId) {
    let dir = tempfile::tempdir().unwrap();
    let app = ready(dir.path(), tweak);
    let c = super::candidates::add(&app, "JP", scopes);
    (dir, app, c)
}

/// The privacy setup every capture needs: a registered notice version and the recruiter
/// `acme` the test interviews are run for. Idempotent.
pub fn privacy_basics(app: &Kiroku) {
    if app.catalog.notice("notice-2026-04").unwrap().is_none() {
        app.clerk()
            .register_notice(
                "notice-2026-04",
                "ja",
                "https://example.invalid/privacy/2026-04",
                &"ab".repeat(32),
            )
            .unwrap();
    }
    let acme = kiroku::ids::RecruiterHandle::parse("acme").unwrap();
    if !app.catalog.recruiter_exists(&acme).unwrap() {
        kiroku::recruiter::add(app, &acme, None).unwrap();
    }
}
