//! Regions on real S3 (Garage on loopback, one node per region): residency, cross-border
//! placement under `transfer` consent, tags as metadata, export and release from S3, and no
//! acknowledged segment lost when the store goes away for a while or kiroku is killed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::garage::Garage;
use common::serve::{Served, free_port};
use common::{candidates, cli, fixtures, interviews};
use kiroku::app::Kiroku;
use kiroku::capture::{self, CaptureEvent, Pushed};
use kiroku::config::{Config, Pkcs11Config, RegionConfig};
use kiroku::consent::Scope;
use kiroku::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle, RegionId};
use kiroku::store::Store;

/// The fixture every interview here is made of.
const MEDIA: &str = "interview-vp8-opus.webm";

fn region(country: &str, g: &Garage) -> RegionConfig {
    RegionConfig {
        country: country.into(),
        backend: "s3".into(),
        master_key_file: format!("keys/{}.master.key", country.to_lowercase()).into(),
        s3: Some(g.s3_config()),
    }
}

/// kiroku with a JP and a DE region, each its own Garage node; `placement` as given.
fn app(dir: &Path, jp: &Garage, de: &Garage, placement: &[(&str, &str)]) -> Arc<Kiroku> {
    app_with_keys(dir, jp, de, placement, None)
}

/// [`app`] with its epoch keys in the PKCS#11 token `pkcs11` (files in the keyring without).
fn app_with_keys(
    dir: &Path,
    jp: &Garage,
    de: &Garage,
    placement: &[(&str, &str)],
    pkcs11: Option<Pkcs11Config>,
) -> Arc<Kiroku> {
    common::app::ready(dir, |cfg| {
        cfg.keys.pkcs11 = pkcs11;
        cfg.default_region = "jp".into();
        cfg.regions = BTreeMap::from([
            ("jp".to_string(), region("JP", jp)),
            ("de".to_string(), region("DE", de)),
        ]);
        cfg.placement = placement
            .iter()
            .map(|(c, r)| (c.to_string(), r.to_string()))
            .collect();
    })
}

/// A candidate living in `home` with `record` consent.
fn candidate(app: &Kiroku, home: &str) -> CandidateId {
    candidates::add(app, home, &[Scope::Record])
}

/// Streams a file as one interview in small pieces; `after_first_ack` runs once the first
/// segment is acknowledged. Returns the interview and how many segments were acknowledged.
fn stream(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    mut after_first_ack: impl FnMut(),
) -> Result<(InterviewId, u32), capture::CaptureError> {
    let bytes = fixtures::read(MEDIA);
    let (created, mut cap) = interviews::start(app, c, "video/webm")?;
    let mut events = cap.take_events();
    let feeder = cap.feeder();
    let mut acked = 0;
    let mut fired = false;
    for piece in bytes.chunks(16 * 1024) {
        assert_eq!(feeder.push(piece.to_vec()), Pushed::Accepted);
        while let Ok(CaptureEvent::Stored(_)) = events.try_recv() {
            acked += 1;
        }
        if acked > 0 && !fired {
            fired = true;
            after_first_ack();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let outcome = cap.finish();
    assert!(outcome.reason.is_none(), "{:?}", outcome.reason);
    while let Ok(CaptureEvent::Stored(_)) = events.try_recv() {
        acked += 1;
    }
    assert_eq!(acked, outcome.segments);
    Ok((created.interview_id, acked))
}

fn s3(app: &Kiroku, id: &str) -> Arc<kiroku::store::S3Store> {
    match &app.region(&RegionId::parse(id).unwrap()).unwrap().store {
        Store::S3(s) => s.clone(),
        Store::Local(_) => panic!("{id} is not an S3 region"),
    }
}

fn objects(app: &Kiroku, region: &str) -> Vec<String> {
    s3(app, region).list("").unwrap()
}

/// Waits until every region's spool is empty: a slow PUT on a loaded machine spools the
/// object, and the counts below are of what is in the buckets.
fn drained(app: &Kiroku) {
    for id in ["jp", "de"] {
        let store = s3(app, id);
        wait_until("the spool to drain", Duration::from_secs(60), || {
            store.spool().keys().is_empty()
        });
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn each_candidates_interview_leaves_objects_only_in_the_region_of_their_home_country() {
    let (jp, de) = (Garage::start("kiroku-jp"), Garage::start("kiroku-de"));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &jp, &de, &[("JP", "jp"), ("DE", "de")]);
    let taro = candidate(&app, "JP");
    let anna = candidate(&app, "DE");
    app.start_uploaders();
    let (i_jp, n_jp) = stream(&app, &taro, || {}).unwrap();
    let (i_de, n_de) = stream(&app, &anna, || {}).unwrap();
    drained(&app);
    let (in_jp, in_de) = (objects(&app, "jp"), objects(&app, "de"));
    assert_eq!(
        in_jp.len(),
        n_jp as usize + 3,
        "segments, manifest, finished header and trailer: {in_jp:?}"
    );
    assert_eq!(in_de.len(), n_de as usize + 3, "{in_de:?}");
    assert!(
        in_jp
            .iter()
            .all(|k| k.contains(&taro.to_string()) && k.contains(&i_jp.to_string()))
    );
    assert!(
        in_de
            .iter()
            .all(|k| k.contains(&anna.to_string()) && k.contains(&i_de.to_string()))
    );
    assert!(
        std::fs::read_dir(dir.path().join("regions")).is_err(),
        "nothing was written to a local store"
    );
    // Every segment's tags travel as the object's metadata.
    let store = s3(&app, "jp");
    for key in in_jp.iter().filter(|k| k.contains("/segments/")) {
        let tags = store
            .get_tags(&kiroku::store::ObjectKey::parse(key).unwrap())
            .unwrap();
        assert_eq!(tags["consent-scopes"], "record", "{key}: {tags}");
        assert_eq!(tags["region"], "jp");
        assert_eq!(tags["key-version"], "1");
        assert_eq!(tags["candidate"], taro.to_string().as_str());
    }
    // Export works from S3 and decodes to the same media.
    let out = dir.path().join("jp.webm");
    kiroku::recording::export(&app, &i_jp, &out).unwrap();
    common::media::assert_same_media(&fixtures::path(MEDIA), &out);
}

#[test]
fn a_foreign_region_is_used_only_under_a_transfer_consent_for_its_country() {
    let (jp, de) = (Garage::start("kiroku-jp"), Garage::start("kiroku-de"));
    let dir = tempfile::tempdir().unwrap();
    // The operator would place Japanese candidates in Frankfurt.
    let app = app(dir.path(), &jp, &de, &[("JP", "de")]);
    app.start_uploaders();
    let taro = candidate(&app, "JP");
    let (first, _) = stream(&app, &taro, || {}).unwrap();
    drained(&app);
    assert_eq!(
        app.catalog
            .interview(&first)
            .unwrap()
            .unwrap()
            .region
            .as_str(),
        "jp"
    );
    assert!(
        objects(&app, "de").is_empty(),
        "without transfer:DE nothing goes to DE"
    );
    candidates::grant(
        &app,
        &taro,
        Scope::Transfer(CountryCode::parse("DE").unwrap()),
    );
    let (second, _) = stream(&app, &taro, || {}).unwrap();
    drained(&app);
    assert_eq!(
        app.catalog
            .interview(&second)
            .unwrap()
            .unwrap()
            .region
            .as_str(),
        "de"
    );
    assert!(
        objects(&app, "de")
            .iter()
            .all(|k| k.contains(&second.to_string()))
    );
    assert!(!objects(&app, "de").is_empty());
    // A Korean candidate: no region at home and no transfer consent.
    let min = candidate(&app, "KR");
    let err = match stream(&app, &min, || {}) {
        Err(e) => e,
        Ok(_) => panic!("placed without any allowed region"),
    };
    assert_eq!(err.code(), "no_allowed_region", "{err}");
    // The recruiter's release reads from the interview's region.
    candidates::grant(
        &app,
        &taro,
        Scope::ShareRecording(RecruiterHandle::parse("acme").unwrap()),
    );
    let row = app.catalog.interview(&second).unwrap().unwrap();
    let proof = kiroku::consent::decision::decide(
        &app.catalog,
        &app.audit,
        &RecruiterHandle::parse("acme").unwrap(),
        &row,
        kiroku::consent::decision::Recording,
    )
    .unwrap()
    .unwrap();
    let release = kiroku::release::prepare_recording(&app, proof, Some("bytes=100-70099")).unwrap();
    let mut got = Vec::new();
    kiroku::release::stream_recording(&app, release, |p| {
        got.extend_from_slice(&p);
        true
    })
    .unwrap();
    let whole = kiroku::recording::rebuild(&app, &second).unwrap().bytes;
    assert!(
        got == whole[100..70100],
        "a range served from S3 equals the slice"
    );
}

#[test]
fn an_s3_outage_mid_interview_costs_no_acknowledged_segment() {
    let (mut jp, de) = (Garage::start("kiroku-jp"), Garage::start("kiroku-de"));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &jp, &de, &[("JP", "jp")]);
    app.start_uploaders();
    let taro = candidate(&app, "JP");
    let (calm, _) = stream(&app, &taro, || {}).unwrap();
    let store = s3(&app, "jp");
    let mut stopped_at = None;
    let (stormy, acked) = stream(&app, &taro, || {
        jp.stop();
        stopped_at = Some(Instant::now());
    })
    .unwrap();
    assert!(
        !store.spool().keys().is_empty(),
        "segments acknowledged during the outage wait in the spool"
    );
    // About 20 s of outage in all, then the store comes back.
    let down = stopped_at.unwrap().elapsed();
    if down < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_secs(20) - down);
    }
    jp.resume();
    wait_until("the spool to drain", Duration::from_secs(90), || {
        store.spool().keys().is_empty()
    });
    let keys = objects(&app, "jp");
    let segs = app.catalog.segments(&stormy).unwrap();
    assert_eq!(segs.len() as u32, acked);
    for s in &segs {
        assert!(
            keys.iter().any(|k| k == s.object_key.as_str()),
            "segment {} reached S3",
            s.index
        );
    }
    // The export equals the undisturbed run's but for its finished header, which carries
    // the muxer's random segment UID (its encoded length varies too), and the Cues, whose
    // positions count from the end of that header.
    let a = kiroku::recording::rebuild(&app, &calm).unwrap();
    let b = kiroku::recording::rebuild(&app, &stormy).unwrap();
    assert_eq!(a.segments, b.segments);
    assert!(
        media_of(&app, &calm, &a.bytes) == media_of(&app, &stormy, &b.bytes),
        "every media segment is identical"
    );
    let spool_dir = dir.path().join("spool/jp/objects");
    let left = common::files::walk(&spool_dir);
    assert!(left.is_empty(), "spool is empty: {left:?}");
}

/// A config file with one S3 region per entry: (id, endpoint, bucket, secret); the first is
/// the default.
fn config_file(dir: &Path, regions: &[(&str, &str, &str, &str)]) -> PathBuf {
    let mut text = format!("default_region = \"{}\"\n", regions[0].0);
    for (id, endpoint, bucket, secret) in regions {
        text.push_str(&format!(
            "[regions.{id}]\ncountry = \"JP\"\nbackend = \"s3\"\nmaster_key_file = \"keys/{id}.key\"\n\
             [regions.{id}.s3]\nbucket = \"{bucket}\"\nregion = \"garage\"\nendpoint = \"{endpoint}\"\n\
             path_style = true\naccess_key_id = \"{}\"\nsecret_access_key = \"{secret}\"\n\
             upload_timeout_seconds = 5\n",
            common::garage::KEY_ID
        ));
    }
    let p = dir.join("kiroku.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn regions_check_names_each_failing_region_and_its_field() {
    let g = Garage::start("kiroku-jp");
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let wrong_secret = "0".repeat(64);
    let cfg = config_file(
        dir.path(),
        &[
            ("good", &g.endpoint, "kiroku-jp", common::garage::SECRET),
            (
                "nobucket",
                &g.endpoint,
                "kiroku-missing",
                common::garage::SECRET,
            ),
            ("badkeys", &g.endpoint, "kiroku-jp", &wrong_secret),
            (
                "down",
                &format!("http://127.0.0.1:{closed}"),
                "kiroku-jp",
                common::garage::SECRET,
            ),
        ],
    );
    let kiroku = |args: &[&str]| {
        cli::kiroku_cmd(&dir.path().join("data"))
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap()
    };
    let out = kiroku(&["regions", "check"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success());
    assert!(stdout.contains("good: bucket kiroku-jp ok"), "{stdout}");
    assert!(
        stdout.contains("object tagging") || stdout.contains("metadata"),
        "{stdout}"
    );
    for field in [
        "regions.nobucket.s3.bucket",
        "regions.badkeys.s3.access_key_id",
        "regions.down.s3.endpoint",
    ] {
        assert!(stderr.contains(field), "{field} not named: {stderr}");
    }
    assert!(!stderr.contains("regions.good"), "{stderr}");
    // `regions list` shows them all with their buckets; `config check` refuses an unknown backend.
    let list = kiroku(&["regions", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("kiroku-missing"));
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replacen("backend = \"s3\"", "backend = \"ftp\"", 1),
    )
    .unwrap();
    let bad = kiroku(&["config", "check"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("regions.good.backend"), "{err}");
}

/// The service token of the served kiroku.
const SERVICE: &str = "service-token-for-the-spool-crash-test";

/// `kiroku serve` on `port` with `cfg`, once /healthz answers (blocking).
fn serve(data: &Path, cfg: &Path, port: u16) -> Served {
    let mut cmd = cli::kiroku_cmd(data);
    cmd.arg("--config")
        .arg(cfg)
        .env("KIROKU_SERVICE_TOKEN", SERVICE);
    Served::start(cmd, port)
}

#[test]
fn kiroku_killed_while_segments_sit_in_the_spool_uploads_them_after_a_restart() {
    let mut g = Garage::start("kiroku-jp");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config_file(
        dir.path(),
        &[("good", &g.endpoint, "kiroku-jp", common::garage::SECRET)],
    );
    let cli = |args: &[&str]| {
        cli::last_line(
            &cli::kiroku_cmd(&data)
                .arg("--config")
                .arg(&cfg)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    cli(&[
        "notice",
        "add",
        "--id",
        "n1",
        "--language",
        "ja",
        "--url",
        "https://example.invalid/n1",
        "--sha256",
        &"ab".repeat(32),
    ]);
    cli(&["recruiter", "add", "acme"]);
    let c = cli(&["candidate", "add", "--ref", "r", "--home-country", "JP"]);
    cli(&["consent", "grant", "--candidate", &c, "--scope", "record"]);
    g.stop();
    let port = free_port();
    let mut server = serve(&data, &cfg, port);
    let http = reqwest::blocking::Client::new();
    let created: serde_json::Value = http
        .post(format!("http://127.0.0.1:{port}/v1/interviews"))
        .bearer_auth(SERVICE)
        .json(&serde_json::json!({"candidate": c, "recruiter": "acme"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["interview_id"].as_str().unwrap().to_string();
    let r = http
        .put(format!("http://127.0.0.1:{port}/v1/interviews/{id}/media"))
        .bearer_auth(created["ingest_token"].as_str().unwrap())
        .header("content-type", "video/webm")
        .body(fixtures::read(MEDIA))
        .timeout(Duration::from_secs(120))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let done: serde_json::Value = r.json().unwrap();
    let acked = done["segments"].as_u64().unwrap();
    assert!(acked >= 3, "{done}");
    let spool = data.join("spool/good/objects");
    assert!(
        common::files::walk(&spool).len() as u64 > acked,
        "segments, tags and manifest sit in the spool"
    );
    server.kill();

    g.resume();
    let mut server = serve(&data, &cfg, port);
    wait_until(
        "the spool to drain after the restart",
        Duration::from_secs(90),
        || common::files::walk(&spool).is_empty(),
    );
    server.kill();
    let out = dir.path().join("export.webm");
    cli(&["recording", "export", &id, "--out", out.to_str().unwrap()]);
    common::media::assert_same_media(&fixtures::path(MEDIA), &out);
    let cfg_loaded = Config::load(Some(&cfg)).unwrap();
    let mut cfg_loaded = cfg_loaded;
    cfg_loaded.data_dir = data.clone();
    cfg_loaded.pipelines_dir = Some(fixtures::pipelines());
    let app = common::app::open(cfg_loaded);
    let keys = s3(&app, "good").list("").unwrap();
    assert_eq!(
        keys.len() as u64,
        acked + 3,
        "every segment, the manifest, the finished header and trailer: {keys:?}"
    );
}

#[test]
fn past_its_spool_limit_a_region_refuses_new_interviews_until_the_spool_drains() {
    let (mut jp, de) = (Garage::start("kiroku-jp"), Garage::start("kiroku-de"));
    let dir = tempfile::tempdir().unwrap();
    let mut small = region("JP", &jp);
    small.s3.as_mut().unwrap().spool_limit_bytes = 1000;
    let app = common::app::ready(dir.path(), |cfg| {
        cfg.default_region = "jp".into();
        cfg.regions = BTreeMap::from([
            ("jp".to_string(), small),
            ("de".to_string(), region("DE", &de)),
        ]);
    });
    let taro = candidate(&app, "JP");
    jp.stop();
    // The interview under way keeps spooling past the limit: its segments are promised.
    let (spooled, acked) = stream(&app, &taro, || {}).unwrap();
    assert!(acked >= 3);
    assert!(s3(&app, "jp").spool().bytes() > 1000);
    let err = match stream(&app, &taro, || {}) {
        Err(e) => e,
        Ok(_) => panic!("a new interview was accepted past the spool limit"),
    };
    assert_eq!(err.code(), "region_spool_full", "{err}");
    assert_eq!(app.catalog.interviews_of_candidate(&taro).unwrap().len(), 1);
    jp.resume();
    app.start_uploaders();
    drained(&app);
    assert!(
        objects(&app, "jp")
            .iter()
            .any(|k| k.contains(&spooled.to_string()))
    );
    stream(&app, &taro, || {}).expect("accepted again once the spool drained");
}

/// `[audit.s3]` for the checkpoint bucket on `g`.
fn audit_bucket(g: &Garage) -> kiroku::config::AuditS3Config {
    let s = g.s3_config();
    kiroku::config::AuditS3Config {
        bucket: s.bucket,
        region: s.region,
        endpoint: s.endpoint,
        path_style: true,
        profile: None,
        access_key_id: s.access_key_id,
        secret_access_key: s.secret_access_key,
        prefix: "node-a/".into(),
        retain_days: 30,
        lock_mode: kiroku::config::LockMode::Compliance,
    }
}

/// The checkpoints are anchored in a bucket the data dir's owner cannot rewrite from there:
/// a log cut back with its checkpoints passes on its own and fails against the bucket,
/// naming the entries cut; `regions check` says whether the store locks them.
#[test]
fn a_log_cut_back_with_its_checkpoints_fails_against_the_checkpoint_bucket() {
    let g = Garage::start("kiroku-audit");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bucket = audit_bucket(&g);
    let app = common::app::ready(&data, |cfg| cfg.audit.s3 = Some(bucket.clone()));
    for _ in 0..3 {
        candidates::add(&app, "JP", &[Scope::Record, Scope::Analyze]);
    }
    let local = common::audit::checkpoints(&data);
    assert!(
        local.lines().count() >= 6,
        "every consent change is checkpointed"
    );
    drop(app);
    let cfg = dir.path().join("kiroku.toml");
    std::fs::write(
        &cfg,
        format!(
            "default_region = \"jp\"\n[regions.jp]\ncountry = \"JP\"\nbackend = \"local\"\n\
             master_key_file = \"keys/jp.master.key\"\n\
             [audit.s3]\nbucket = \"{}\"\nregion = \"garage\"\nendpoint = \"{}\"\npath_style = true\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nprefix = \"node-a/\"\nretain_days = 30\n",
            g.bucket,
            g.endpoint,
            common::garage::KEY_ID,
            common::garage::SECRET
        ),
    )
    .unwrap();
    let kiroku = |args: &[&str]| {
        cli::kiroku_cmd(&data)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap()
    };
    // Every local checkpoint reached the bucket before the process ended.
    let out = kiroku(&["audit", "verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published: std::collections::BTreeSet<u64> = local
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        said.contains(&format!(
            "{} published checkpoints compared",
            published.len()
        )),
        "{said}"
    );
    let check = kiroku(&["regions", "check"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}");
    // Garage does not implement Object Lock; the check says so rather than guess.
    assert!(
        said.contains("audit checkpoints: bucket kiroku-audit ok; object lock not supported"),
        "{said}"
    );
    // Cut the log and its checkpoints back to the first checkpoint, as someone holding the
    // data dir (and the signing key) could: the two files still agree with each other.
    let first = *published.first().unwrap();
    let last = *published.last().unwrap();
    let log = common::audit::log(&data);
    let kept: Vec<&str> = log.lines().take(first as usize).collect();
    common::audit::rewrite_log(&data, &(kept.join("\n") + "\n"));
    common::audit::rewrite_checkpoints(&data, &(local.lines().next().unwrap().to_string() + "\n"));
    let alone = kiroku::audit::verify_text(
        common::audit::log(&data).as_bytes(),
        &common::audit::checkpoints(&data),
        &signer_key(&data),
        &[],
    );
    assert!(
        alone.is_ok(),
        "the local files alone cannot tell: {alone:?}"
    );
    let out = kiroku(&["audit", "verify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("entries {} to {last} were cut", first + 1)),
        "{err}"
    );
}

/// The operator's public key in hex, read from the data dir.
fn signer_key(data: &Path) -> String {
    kiroku::signing::OperatorKey::load_or_create(&data.join("secrets/operator-signing.pk8"))
        .unwrap()
        .public_key_hex()
}

/// A candidate registered with `reference`, living in Japan, with `record` and an interview
/// in each region: in JP first, then in DE under `transfer:DE` (the placement sends Japanese
/// candidates to DE when they allow it). Returns (candidate, JP interview, DE interview).
fn candidate_in_both_regions(
    app: &Arc<Kiroku>,
    reference: &str,
) -> (CandidateId, InterviewId, InterviewId) {
    let c = app
        .clerk()
        .register_candidate(
            reference,
            &CountryCode::parse("JP").unwrap(),
            &kiroku::audit::Actor::Service,
        )
        .unwrap();
    candidates::grant(app, &c, Scope::Record);
    let (in_jp, _) = stream(app, &c, || {}).unwrap();
    candidates::grant(app, &c, Scope::Transfer(CountryCode::parse("DE").unwrap()));
    let (in_de, _) = stream(app, &c, || {}).unwrap();
    (c, in_jp, in_de)
}

/// Grants `share.recording:acme` and releases the interview's recording to acme whole, as
/// a pull does (decided, provision recorded).
fn release_to_acme(app: &Arc<Kiroku>, c: &CandidateId, interview: &InterviewId) {
    let acme = RecruiterHandle::parse("acme").unwrap();
    candidates::grant(app, c, Scope::ShareRecording(acme.clone()));
    let row = app.catalog.interview(interview).unwrap().unwrap();
    let proof = kiroku::consent::decision::decide(
        &app.catalog,
        &app.audit,
        &acme,
        &row,
        kiroku::consent::decision::Recording,
    )
    .unwrap()
    .unwrap();
    let release = kiroku::release::prepare_recording(app, proof, None).unwrap();
    kiroku::release::stream_recording(app, release, |_| true).unwrap();
}

/// Erasure reaches every region: both buckets and spools lose every object of the candidate,
/// a copy of a sealed segment put back cannot be opened (the key is destroyed), nothing of
/// their external reference is left in the catalog's files, the provision record and the
/// audit chain stay, and the recipient is queued `candidate.erased`. Another candidate's
/// recording is untouched.
#[test]
fn an_erased_candidate_leaves_no_object_and_no_key_in_any_region() {
    erasure_leaves_no_object_and_no_key(None);
}

/// The same erasure with the epoch keys in a PKCS#11 token (SoftHSM2): no key file in the
/// keyring, and the token refuses to let the epoch keys out.
#[test]
fn an_erased_candidate_leaves_no_object_and_no_key_with_epoch_keys_in_a_pkcs11_token() {
    let dir = erasure_leaves_no_object_and_no_key(Some(common::softhsm::token()));
    let key_files: Vec<_> = common::files::walk(&dir.path().join("keyring"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .collect();
    assert!(key_files.is_empty(), "{key_files:?}");
}

fn erasure_leaves_no_object_and_no_key(pkcs11: Option<Pkcs11Config>) -> tempfile::TempDir {
    let (jp, de) = (Garage::start("kiroku-jp"), Garage::start("kiroku-de"));
    let dir = tempfile::tempdir().unwrap();
    let in_token = pkcs11.is_some();
    let app = app_with_keys(dir.path(), &jp, &de, &[("JP", "de")], pkcs11);
    if in_token {
        for region in ["jp", "de"] {
            let extractable = app
                .keyring
                .epoch_key_extractable(&RegionId::parse(region).unwrap(), 1)
                .unwrap();
            assert_eq!(
                extractable,
                Some(false),
                "{region}'s epoch key stays in the token"
            );
        }
    }
    app.start_uploaders();
    const REFERENCE: &str = "applicant-erase-me-7731";
    let (taro, in_jp, in_de) = candidate_in_both_regions(&app, REFERENCE);
    let hanako = candidate(&app, "JP");
    let (other, _) = stream(&app, &hanako, || {}).unwrap();
    drained(&app);
    release_to_acme(&app, &taro, &in_de);
    let acme = RecruiterHandle::parse("acme").unwrap();
    let row = app.catalog.interview(&in_de).unwrap().unwrap();
    let prefix = format!("candidates/{taro}/");
    for region in ["jp", "de"] {
        assert!(
            objects(&app, region).iter().any(|k| k.starts_with(&prefix)),
            "{region} holds the candidate's objects before"
        );
    }
    let copied_key = objects(&app, "de")
        .into_iter()
        .find(|k| k.starts_with(&prefix) && k.ends_with("00000001.krk"))
        .unwrap();
    let copied = s3(&app, "de")
        .get(&kiroku::store::ObjectKey::parse(&copied_key).unwrap())
        .unwrap();

    let report = kiroku::subject::erase(&app, &taro, &kiroku::audit::Actor::Operator).unwrap();
    assert_eq!(report.interviews, 2);
    assert!(report.keys_destroyed >= 2, "{report:?}");
    assert!(report.objects_deleted > 0);
    assert_eq!(report.recipients_told, ["acme"]);
    for region in ["jp", "de"] {
        assert!(
            !objects(&app, region).iter().any(|k| k.starts_with(&prefix)),
            "{region} still holds an object of the erased candidate"
        );
        assert!(
            !s3(&app, region)
                .spool()
                .keys()
                .iter()
                .any(|k| k.as_str().starts_with(&prefix)),
            "{region}'s spool still holds one"
        );
    }
    // Every read path says so, plainly.
    for id in [&in_jp, &in_de] {
        let err = kiroku::recording::rebuild(&app, id).err().unwrap();
        assert!(
            matches!(err, kiroku::recording::RecordingError::CandidateErased),
            "{err}"
        );
    }
    let refused = kiroku::consent::decision::decide(
        &app.catalog,
        &app.audit,
        &acme,
        &row,
        kiroku::consent::decision::Recording,
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(refused.code(), "candidate_erased");
    assert_eq!(
        interviews::start(&app, &taro, "video/webm")
            .err()
            .unwrap()
            .code(),
        "candidate_erased"
    );
    // A copy of a sealed segment taken before opens for no one: the key it needs is gone.
    assert!(!copied.is_empty());
    assert!(
        app.interview_key(&row).unwrap().is_none(),
        "the key is gone"
    );
    // The provision record stays, under the pseudonymous id; the recipient is told.
    assert!(app.catalog.has_received(&taro, "acme").unwrap());
    let told = app
        .catalog
        .deliveries()
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == kiroku::vocab::OutboxKind::CandidateErased && d.candidate == taro)
        .count();
    assert_eq!(told, 1, "one candidate.erased notice for acme");
    // Nothing of the external reference is left in the catalog's files, nor in the audit log.
    drop(report);
    for file in ["catalog.db", "catalog.db-wal"] {
        let path = dir.path().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes
                    .windows(REFERENCE.len())
                    .any(|w| w == REFERENCE.as_bytes()),
                "{file} still holds the external reference"
            );
        }
    }
    let audit = common::audit::log(dir.path());
    assert!(!audit.contains(REFERENCE));
    assert!(audit.contains("\"candidate.erased\""));
    app.audit.verify(&app.signer.public_key_hex(), &[]).unwrap();
    // Another candidate's recording is untouched.
    assert!(kiroku::recording::rebuild(&app, &other).is_ok());
    // The tombstone is not what protects the media: with its mark undone, still no key.
    let db = common::postgres::catalog_db(dir.path());
    db.execute(
        "UPDATE candidates SET erased_at = NULL WHERE id = ?1",
        [taro.to_string()],
    )
    .unwrap();
    let err = kiroku::recording::rebuild(&app, &in_de).err().unwrap();
    assert!(
        matches!(err, kiroku::recording::RecordingError::KeyGone),
        "{err}"
    );
    drop(app);
    dir
}

/// A disclosure export of a candidate with an interview in each region holds everything kept
/// of them (profile, consents with receipts, the provision record, each interview with its
/// segments and where it is stored, each recording opened) and opens only with the
/// requester's age identity.
#[test]
fn a_disclosure_export_holds_every_region_and_opens_only_for_its_requester() {
    use std::io::Read;
    let (jp, de) = (Garage::start("kiroku-jp"), Garage::start("kiroku-de"));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &jp, &de, &[("JP", "de")]);
    app.start_uploaders();
    let (taro, in_jp, in_de) = candidate_in_both_regions(&app, "applicant-4410");
    drained(&app);
    release_to_acme(&app, &taro, &in_jp);

    let requester = age::x25519::Identity::generate();
    let mut sealed = Vec::new();
    let mut seen = Vec::new();
    let report = kiroku::subject::export(
        &app,
        &taro,
        &mut sealed,
        &kiroku::subject::Sealing::recipient(&requester.to_public().to_string()).unwrap(),
        &mut |p| seen.push((p.interviews_done, p.interviews_total)),
        &kiroku::audit::Actor::Operator,
    )
    .unwrap();
    assert_eq!(
        (report.interviews, report.recordings, report.provisions),
        (2, 2, 1)
    );
    assert_eq!(
        seen,
        [(0, 2), (1, 2), (2, 2)],
        "progress after each interview"
    );
    assert!(
        !sealed.windows(14).any(|w| w == b"applicant-4410"),
        "nothing readable without the identity"
    );
    let stranger = age::x25519::Identity::generate();
    let refused = age::Decryptor::new(&sealed[..])
        .unwrap()
        .decrypt(std::iter::once(&stranger as &dyn age::Identity));
    assert!(refused.is_err(), "another identity cannot open it");
    let mut plain = Vec::new();
    age::Decryptor::new(&sealed[..])
        .unwrap()
        .decrypt(std::iter::once(&requester as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let mut files = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(&plain[..]);
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        files.insert(name, bytes);
    }
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_slice(files.get(name).unwrap_or_else(|| panic!("{name} missing"))).unwrap()
    };
    assert!(files.contains_key("README.txt"));
    assert_eq!(json("profile.json")["external_ref"], "applicant-4410");
    let consents = json("consents.json");
    let grants: Vec<&serde_json::Value> = consents
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "grant")
        .collect();
    assert_eq!(grants.len(), 3);
    assert!(
        grants
            .iter()
            .all(|g| g["receipt"]["signature"]["value"].is_string()),
        "every grant with its signed receipt: {consents}"
    );
    assert_eq!(json("provisions.json")[0]["recipient"], "acme");
    for (id, country) in [(&in_jp, "JP"), (&in_de, "DE")] {
        let described = json(&format!("interviews/{id}/interview.json"));
        assert_eq!(described["stored_in"]["country"], country);
        assert!(!described["segments"].as_array().unwrap().is_empty());
        let recording = files
            .get(&format!("interviews/{id}/recording.webm"))
            .expect("the recording");
        assert_eq!(
            *recording,
            kiroku::recording::rebuild(&app, id).unwrap().bytes,
            "the recording as opened and verified"
        );
    }
}

/// Copies a folder tree (files and folders only), as a backup would.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Erasure reaches backups. The data dir holds no key material, so a copy of it taken before
/// an erasure and restored after opens nothing of the erased candidate, and kiroku erases them
/// again at start from its ledger, while every other candidate's recording in the copy still
/// exports. A copy of the keyring taken before the erasure, put back after a rotation, holds
/// the candidate's wrapped key under an epoch key that no longer exists.
#[test]
fn a_restored_backup_forgets_the_erased_candidate_and_an_old_keyring_opens_nothing_of_theirs() {
    restored_backup_and_old_keyring_open_nothing_of_the_erased(None);
}

/// The same with the epoch keys in a PKCS#11 token (SoftHSM2): the rotation destroys the old
/// epoch's key object in the token, so the old keyring's copy of the erased key stays shut.
#[test]
fn with_epoch_keys_in_a_pkcs11_token_a_restored_backup_and_an_old_keyring_open_nothing_erased() {
    restored_backup_and_old_keyring_open_nothing_of_the_erased(Some(common::softhsm::token()));
}

fn restored_backup_and_old_keyring_open_nothing_of_the_erased(pkcs11: Option<Pkcs11Config>) {
    let root = tempfile::tempdir().unwrap();
    let (data, keys) = (root.path().join("data"), root.path().join("keys"));
    let open = || {
        common::app::ready(&data, |cfg| {
            cfg.keys.dir = Some(keys.clone());
            cfg.keys.pkcs11 = pkcs11.clone();
        })
    };
    let app = open();
    let taro = candidate(&app, "JP");
    let hanako = candidate(&app, "JP");
    let (erased, _) = stream(&app, &taro, || {}).unwrap();
    let (kept, _) = stream(&app, &hanako, || {}).unwrap();
    let kept_bytes = kiroku::recording::rebuild(&app, &kept).unwrap().bytes;
    drop(app);
    let (data_backup, keyring_backup) = (
        root.path().join("data-backup"),
        root.path().join("keyring.db"),
    );
    copy_tree(&data, &data_backup);
    // On PostgreSQL the catalog's backup is a copy of its schema, and the keyring's (kept
    // apart, backed up apart) a copy of the keyring's schema.
    let on_postgres = common::postgres::whole_suite();
    let copies = (
        format!("{}_restored", common::postgres::schema_for(&data)),
        format!("{}_old_keyring", common::postgres::schema_for(&data)),
    );
    let old_keyring_db = on_postgres.then(|| {
        let schema = common::postgres::schema_for(&data);
        common::postgres::copy_schema(&schema, &copies.0);
        common::postgres::copy_schema(&format!("{schema}_keys"), &copies.1)
    });
    let wal_backup = root.path().join("keyring.db-wal");
    if !on_postgres {
        std::fs::copy(keys.join("keyring.db"), &keyring_backup).unwrap();
        let _ = std::fs::copy(keys.join("keyring.db-wal"), &wal_backup);
    }
    let key_files: Vec<_> = common::files::walk(&data_backup)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .collect();
    assert!(
        key_files.is_empty(),
        "no key file in a backup of the data dir: {key_files:?}"
    );

    let app = open();
    kiroku::subject::erase(&app, &taro, &kiroku::audit::Actor::Operator).unwrap();
    let rotated = kiroku::subject::keys::rotate(
        &app,
        &RegionId::parse("jp").unwrap(),
        &kiroku::audit::Actor::Operator,
    )
    .unwrap();
    assert_eq!((rotated.from_epoch, rotated.to_epoch), (1, 2));
    assert_eq!(rotated.destroyed_epochs, [1]);
    assert_eq!(rotated.rewrapped, 1, "hanako's key, not taro's");
    drop(app);

    // The data dir is restored from the copy taken before the erasure.
    std::fs::remove_dir_all(&data).unwrap();
    copy_tree(&data_backup, &data);
    if on_postgres {
        common::postgres::restore_schema(&data, &copies.0);
    }
    let app = open();
    assert!(
        app.catalog.erased_at(&taro).unwrap().is_some(),
        "the ledger erased them again at start"
    );
    let err = kiroku::recording::rebuild(&app, &erased).err().unwrap();
    assert!(
        matches!(err, kiroku::recording::RecordingError::CandidateErased),
        "{err}"
    );
    let row = app.catalog.interview(&erased).unwrap().unwrap();
    assert!(
        app.interview_key(&row).unwrap().is_none(),
        "no key for them anywhere"
    );
    assert_eq!(
        kiroku::recording::rebuild(&app, &kept).unwrap().bytes,
        kept_bytes,
        "everyone else's recording in the copy still exports"
    );
    drop(app);

    // The keyring from before the erasure still lists taro's key, wrapped under epoch 1,
    // whose key the rotation destroyed.
    let old_dir = root.path().join("old-keyring");
    if !on_postgres {
        drop(kiroku::keyring::Keyring::open(&old_dir, None, &[]).unwrap());
        std::fs::copy(&keyring_backup, old_dir.join("keyring.db")).unwrap();
        if wal_backup.exists() {
            std::fs::copy(&wal_backup, old_dir.join("keyring.db-wal")).unwrap();
        }
    }
    if pkcs11.is_none() {
        // The file provider's epoch keys as they are now: the token's are in the token.
        std::fs::create_dir_all(old_dir.join("epochs")).unwrap();
        copy_tree(&keys.join("epochs"), &old_dir.join("epochs"));
    }
    let old = kiroku::keyring::Keyring::open_in(
        &old_dir,
        old_keyring_db.as_deref(),
        pkcs11.as_ref(),
        &[],
    )
    .unwrap();
    let jp = RegionId::parse("jp").unwrap();
    let opened = old.version(&taro, &jp, 1);
    assert!(
        matches!(
            opened,
            Err(kiroku::keyring::KeyringError::EpochKeyMissing { epoch: 1, .. })
        ),
        "{:?}",
        opened.map(|k| k.is_some())
    );
}

/// A candidate's key rotated: the next interview is sealed under version 2, the one before
/// keeps version 1, and both export; `kiroku keys status` counts both versions in the epoch.
#[test]
fn after_a_candidates_key_rotation_new_interviews_use_the_new_version_and_old_ones_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let app = common::app::ready(dir.path(), |_| {});
    let taro = candidate(&app, "JP");
    let (before, _) = stream(&app, &taro, || {}).unwrap();
    let done =
        kiroku::subject::keys::rotate_candidate(&app, &taro, &kiroku::audit::Actor::Operator)
            .unwrap();
    assert_eq!(done, [(RegionId::parse("jp").unwrap(), 2)]);
    let (after, _) = stream(&app, &taro, || {}).unwrap();
    let version = |id| app.catalog.interview(&id).unwrap().unwrap().key_version;
    assert_eq!((version(before), version(after)), (1, 2));
    for id in [before, after] {
        // Every segment opens and verifies under the version it was sealed with.
        let rec = kiroku::recording::rebuild(&app, &id).unwrap();
        assert!(rec.segments > 0 && !rec.bytes.is_empty());
    }
    let status = kiroku::subject::keys::status(&app).unwrap();
    assert_eq!(
        status[0].keys_per_epoch,
        [(1, 2)],
        "two versions, one epoch"
    );
}

/// A region's store that is down stops an erasure half-way without undoing it: the candidate
/// is already marked erased and their keys destroyed, so nothing of theirs opens; asked again
/// once the store is back, the erasure finishes and no object is left in either bucket.
#[test]
fn an_erasure_cut_short_by_a_store_that_is_down_finishes_when_asked_again() {
    let (jp, mut de) = (Garage::start("kiroku-jp"), Garage::start("kiroku-de"));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &jp, &de, &[("JP", "de")]);
    app.start_uploaders();
    let (taro, in_jp, in_de) = candidate_in_both_regions(&app, "applicant-0417");
    drained(&app);
    de.stop();
    let err = kiroku::subject::erase(&app, &taro, &kiroku::audit::Actor::Operator).unwrap_err();
    assert!(
        matches!(&err, kiroku::subject::SubjectError::Store { region, .. } if region == "de"),
        "{err}"
    );
    assert!(app.catalog.erased_at(&taro).unwrap().is_some());
    for id in [&in_jp, &in_de] {
        let row = app.catalog.interview(id).unwrap().unwrap();
        assert!(
            app.interview_key(&row).unwrap().is_none(),
            "the keys went first"
        );
    }
    de.resume();
    let done = kiroku::subject::erase(&app, &taro, &kiroku::audit::Actor::Operator).unwrap();
    assert!(done.already_erased);
    let prefix = format!("candidates/{taro}/");
    for region in ["jp", "de"] {
        assert!(
            !objects(&app, region).iter().any(|k| k.starts_with(&prefix)),
            "{region} still holds an object of the erased candidate"
        );
    }
}

/// A region on a three-node Garage cluster (replication factor 3, one node per zone) keeps
/// recording while one node is down: the node is killed after the first acknowledgement,
/// every segment is still acknowledged and uploaded (the other two make the write quorum, so
/// nothing waits in the spool), and the recording exports. Read through another node than
/// kiroku's, the bucket holds every object.
#[test]
fn a_region_on_a_three_node_garage_cluster_keeps_recording_with_one_node_down() {
    let mut cluster = common::garage_cluster::Cluster::start("kiroku-jp");
    let dir = tempfile::tempdir().unwrap();
    let via_node_0 = cluster.s3_config(0);
    let app = common::app::ready(dir.path(), |cfg| {
        cfg.default_region = "jp".into();
        cfg.regions = BTreeMap::from([(
            "jp".to_string(),
            RegionConfig {
                country: "JP".into(),
                backend: "s3".into(),
                master_key_file: "keys/jp.master.key".into(),
                s3: Some(via_node_0),
            },
        )]);
    });
    app.start_uploaders();
    let taro = candidate(&app, "JP");
    let (id, acked) = stream(&app, &taro, || cluster.nodes[2].stop()).unwrap();
    assert!(acked >= 3, "{acked}");
    let store = s3(&app, "jp");
    wait_until("the spool to drain", Duration::from_secs(60), || {
        store.spool().keys().is_empty()
    });
    assert!(kiroku::recording::rebuild(&app, &id).is_ok());
    // Another node serves the same objects.
    let other = kiroku::store::S3Store::open(
        "jp-via-node-2",
        &cluster.s3_config(1),
        kiroku::store::Spool::open(&dir.path().join("other-spool")).unwrap(),
    )
    .unwrap();
    let prefix = format!("candidates/{taro}/");
    let ours: Vec<String> = objects(&app, "jp")
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .collect();
    let theirs: Vec<String> = other.list(&prefix).unwrap().into_iter().collect();
    assert!(ours.len() > acked as usize, "{ours:?}");
    assert_eq!(ours, theirs);
}

/// A machine lost for good with acknowledged segments still in its spool: its `spool` folder,
/// read back from its disk, is uploaded by `kiroku regions drain --from DIR` on another
/// machine. Tried while the bucket is down, it takes nothing and fails; once the bucket is
/// back every object reaches it, the folder empties, the interview exports; run again on a
/// second copy of the folder, everything is found already in the bucket and kept.
#[test]
fn a_lost_machines_spool_is_uploaded_from_its_folder_by_regions_drain_from() {
    let mut jp = Garage::start("kiroku-jp");
    let root = tempfile::tempdir().unwrap();
    let lost = root.path().join("lost");
    let jp_region = region("JP", &jp);
    let open = || {
        common::app::ready(&lost, |cfg| {
            cfg.default_region = "jp".into();
            cfg.regions = BTreeMap::from([("jp".to_string(), jp_region.clone())]);
        })
    };
    let app = open();
    let taro = candidate(&app, "JP");
    jp.stop();
    let (id, acked) = stream(&app, &taro, || {}).unwrap();
    let spooled = s3(&app, "jp").spool().keys().len();
    assert!(
        spooled as u32 > acked,
        "segments and manifest wait in the spool"
    );
    drop(app);
    // The machine is gone; its disk is read elsewhere.
    let recovered = root.path().join("recovered-spool");
    let second_copy = root.path().join("second-copy");
    copy_tree(&lost.join("spool"), &recovered);
    copy_tree(&lost.join("spool"), &second_copy);
    std::fs::remove_dir_all(lost.join("spool")).unwrap();

    let other = root.path().join("other-machine");
    let cfg = config_file(
        root.path(),
        &[("jp", &jp.endpoint, "kiroku-jp", common::garage::SECRET)],
    );
    let drain = |from: &Path| {
        cli::kiroku_cmd(&other)
            .arg("--config")
            .arg(&cfg)
            .args(["regions", "drain", "--from"])
            .arg(from)
            .output()
            .unwrap()
    };
    // While the bucket is down, nothing is taken from the folder and the command says so.
    let o = drain(&recovered);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("still to upload"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        common::files::walk(&recovered).len(),
        common::files::walk(&second_copy).len(),
        "the folder is whole"
    );
    jp.resume();
    // Before the recovery, the interview does not export: its objects are nowhere.
    let app = open();
    let err = kiroku::recording::rebuild(&app, &id).err().unwrap();
    assert!(err.to_string().contains("not found"), "{err}");
    drop(app);
    let line = cli::last_line(&drain(&recovered));
    assert!(
        line.contains(&format!(
            "uploaded {spooled}, 0 already in the bucket, 0 left"
        )),
        "{line}"
    );
    assert!(common::files::walk(&recovered.join("jp/objects")).is_empty());
    let line = cli::last_line(&drain(&second_copy));
    assert!(
        line.contains(&format!(
            "uploaded 0, {spooled} already in the bucket, 0 left"
        )),
        "{line}"
    );
    let o = drain(&root.path().join("nothing-here"));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no region's spool"));

    // Everything acknowledged is in the bucket: the interview exports.
    let app = open();
    assert!(s3(&app, "jp").spool().keys().is_empty());
    let rec = kiroku::recording::rebuild(&app, &id).unwrap();
    assert_eq!(rec.segments, acked);
}

/// The media segments of a served recording: its bytes without the finished header and
/// trailer.
fn media_of<'a>(app: &Arc<Kiroku>, id: &InterviewId, bytes: &'a [u8]) -> &'a [u8] {
    use kiroku::recording::{FinishedPart, PartSource, VerifiedRecording};
    let row = app.catalog.interview(id).unwrap().unwrap();
    let (verified, _) = VerifiedRecording::open(app, row).unwrap();
    let parts = verified.parts();
    let len = |p: Option<&kiroku::recording::Part>, which| {
        p.filter(|p| p.source == PartSource::Finished(which))
            .map_or(0, |p| p.plain_len as usize)
    };
    let head = len(parts.first(), FinishedPart::Header);
    let tail = len(parts.last(), FinishedPart::Trailer);
    &bytes[head..bytes.len() - tail]
}
