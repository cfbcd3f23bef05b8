//! The `kiroku` command line as operators and scripts use it: ids alone on the last line,
//! errors on stderr with a non-zero exit, config errors named by field.

mod common;

use std::path::Path;
use std::process::Output;

use common::cli::{self, last_line};

fn kiroku(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = cli::kiroku_cmd(data);
    cmd.args(args).envs(env.iter().copied());
    cmd.output().unwrap()
}

/// `kiroku ingest` of `file` for `candidate`, recruiter `acme`: the interview id.
fn ingest(data: &Path, candidate: &str, file: &str) -> String {
    last_line(&kiroku(
        data,
        &[
            "ingest",
            "--candidate",
            candidate,
            "--recruiter",
            "acme",
            file,
        ],
        &[],
    ))
}

#[test]
fn a_whole_interview_from_the_command_line_prints_ids_on_the_last_line_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let candidate = cli::add_candidate(d, "cand-77");
    assert_eq!(candidate.len(), 36);
    cli::privacy_basics(d);
    let event = cli::grant(d, &candidate, "record", &[]);
    assert!(event.starts_with("ce_"));
    let interview = ingest(d, &candidate, "fixtures/audio-opus.ogg");
    assert_eq!(interview.len(), 36);
    let out = d.join("export.mka");
    let o = kiroku(
        d,
        &[
            "--json",
            "recording",
            "export",
            &interview,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&last_line(&o)).unwrap();
    assert_eq!(v["content_type"], "audio/x-matroska");
    assert_eq!(
        std::fs::metadata(&out).unwrap().len(),
        v["bytes"].as_u64().unwrap()
    );
    // Plaintext written out is recorded like a release.
    let audit = common::audit::log(d);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"recording.exported\"") && l.contains(&interview)),
        "the export is audited"
    );
    // The external reference stays in the catalog: never in a log line.
    assert!(!String::from_utf8_lossy(&o.stderr).contains("cand-77"));
    let logs = kiroku(
        d,
        &[
            "ingest",
            "--candidate",
            &candidate,
            "--recruiter",
            "acme",
            "fixtures/audio-opus.webm",
        ],
        &[("KIROKU_LOG", "debug")],
    );
    let logs = String::from_utf8_lossy(&logs.stderr);
    assert!(
        logs.contains("segment stored") && logs.contains(&candidate),
        "traces carry the pseudonymous id"
    );
    assert!(!logs.contains("cand-77"));
}

#[test]
fn a_plain_mp4_file_is_ingested_by_its_bytes_and_exported_as_fragmented_mp4() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let candidate = cli::recorded_candidate(d, "cand-mp4");
    // No --content-type: `ftyp` tells MP4, and a file may keep its moov at the end.
    let interview = last_line(&kiroku(
        d,
        &[
            "ingest",
            "--candidate",
            &candidate,
            "--recruiter",
            "acme",
            "fixtures/non-fragmented-h264-aac.mp4",
        ],
        &[],
    ));
    let out = d.join("export.mp4");
    let o = kiroku(
        d,
        &[
            "--json",
            "recording",
            "export",
            &interview,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&last_line(&o)).unwrap();
    assert_eq!(v["content_type"], "video/mp4");
    let export = std::fs::read(&out).unwrap();
    assert!(
        export.windows(4).any(|w| w == b"moof"),
        "the export is fragmented"
    );
    common::media::assert_same_media(&common::fixtures::path("non-fragmented-h264-aac.mp4"), &out);
}

#[test]
fn logs_to_a_file_are_plain_lines_or_json_with_pseudonymous_ids_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let candidate = cli::recorded_candidate(d, "cand-logs-9");
    let ingest = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend([
            "ingest",
            "--candidate",
            &candidate,
            "--recruiter",
            "acme",
            "fixtures/audio-opus.webm",
        ]);
        String::from_utf8(kiroku(d, &args, &[]).stderr).unwrap()
    };
    // stderr is a pipe here, as when a service manager or a file takes it: no colour codes.
    let text = ingest(&[]);
    assert!(text.contains("segment stored"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in {text:?}");
    let json = ingest(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "segment stored" && l["level"] == "INFO"),
        "{json}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["candidate"] == candidate.as_str())
    );
    assert!(!json.contains("cand-logs-9") && !text.contains("cand-logs-9"));
}

#[test]
fn errors_go_to_stderr_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let o = kiroku(
        dir.path(),
        &["recording", "export", "../../etc/passwd", "--out", "/tmp/x"],
        &[],
    );
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("is not valid: expected a lowercase hyphenated UUID")
    );
    let o = kiroku(
        dir.path(),
        &[
            "consent",
            "grant",
            "--candidate",
            "11111111-1111-4111-8111-111111111111",
            "--scope",
            "share.recording",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--recipient"));
    cli::privacy_basics(dir.path());
    let c = cli::add_candidate(dir.path(), "r");
    let o = kiroku(
        dir.path(),
        &[
            "ingest",
            "--candidate",
            &c,
            "--recruiter",
            "acme",
            "fixtures/audio-pcm.wav",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("record"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn config_check_names_the_field_whether_it_comes_from_the_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let ok = kiroku(dir.path(), &["config", "check"], &[("KIROKU_LOG", "debug")]);
    assert!(
        ok.status.success(),
        "KIROKU_LOG is the log filter, not config: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // (arguments, a bad setting in the environment, the field the error must name)
    #[rustfmt::skip]
    let rows: [(&[&str], (&str, &str), &str); 3] = [
        (&["config", "check"], ("KIROKU_LIMITS__MAX_JSON_BODY_BYTES", "0"), "limits.max_json_body_bytes"),
        (&["config", "check"], ("KIROKU_LISTNE", "0.0.0.0:1"), "listne"),
        (&["config", "check", "--config", "config/kiroku.example.toml"], ("KIROKU_REGIONS__JP__BACKEND", "ftp"), "regions.jp.backend"),
    ];
    for (args, env, field) in rows {
        let o = kiroku(dir.path(), args, &[env]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{env:?} is refused");
        assert!(
            stderr.contains(field),
            "{env:?}: {field} not named: {stderr}"
        );
    }
}

/// The load benchmark at a small N, so that it keeps working: 20 real-time streams of the
/// Chromium recording against a `kiroku serve` it starts, every stream finished, every media
/// segment acknowledged, and its figures printed.
#[test]
fn the_load_benchmark_drives_twenty_live_streams_without_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::cli::kiroku_cmd(dir.path())
        .args(["bench", "streams", "--streams", "20", "--ramp-seconds", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("errors: 0 of 20 streams"), "{text}");
    // Two media segments (4 s each) per 8 s stream.
    assert!(
        text.contains("acknowledgement lag over 40 segments"),
        "{text}"
    );
    assert!(text.contains("CPU s per media minute; peak RSS"), "{text}");
}

/// Everything kiroku writes is its own: after a whole interview from the command line
/// (catalog, audit log, keys, tokens, sealed objects, an export), no file in the data dir is
/// readable by group or others, no folder open to them, and the data dir itself is 0700.
#[test]
fn every_file_kiroku_writes_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let candidate = cli::recorded_candidate(&d, "cand-modes");
    let interview = ingest(&d, &candidate, "fixtures/audio-opus.ogg");
    let out = d.join("export.mka");
    last_line(&kiroku(
        &d,
        &[
            "recording",
            "export",
            &interview,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d), 0o700);
    let files = common::files::walk(&d);
    assert!(files.len() > 10, "{files:?}");
    for f in files.iter().chain([&out]) {
        assert_eq!(mode(f) & 0o077, 0, "{} is {:o}", f.display(), mode(f));
        let folder = f.parent().unwrap();
        assert_eq!(
            mode(folder) & 0o077,
            0,
            "{} is {:o}",
            folder.display(),
            mode(folder)
        );
    }
}

/// A token or the signing key that others can read is refused at start, naming the file,
/// as the master keys already were: kiroku does not go on trusting a secret that may have
/// leaked.
#[test]
fn kiroku_refuses_to_start_with_a_secret_file_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli::add_candidate(d, "cand-1");
    let mut secrets: Vec<_> = common::files::walk(&d.join("secrets"));
    secrets.retain(|p| p.is_file());
    assert!(
        secrets.len() >= 3,
        "tokens and the signing key: {secrets:?}"
    );
    for secret in secrets {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = kiroku(
            d,
            &[
                "candidate",
                "add",
                "--ref",
                "cand-2",
                "--home-country",
                "JP",
            ],
            &[],
        );
        assert!(!o.status.success(), "{}", secret.display());
        let err = String::from_utf8_lossy(&o.stderr);
        let name = secret.file_name().unwrap().to_string_lossy();
        assert!(
            err.contains(name.as_ref()) && err.contains("readable by others"),
            "{err}"
        );
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    cli::add_candidate(d, "cand-3");
}

/// With the operator's public key pinned in the config, a data dir whose signing key was
/// swapped for another is refused at start (a log re-signed with that key cannot pass for
/// the operator's); the right key starts as before.
#[test]
fn a_signing_key_other_than_the_pinned_one_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli::add_candidate(d, "cand-1");
    let ours =
        kiroku::signing::OperatorKey::load_or_create(&d.join("secrets/operator-signing.pk8"))
            .unwrap()
            .public_key_hex();
    let other_dir = tempfile::tempdir().unwrap();
    let other = kiroku::signing::OperatorKey::load_or_create(&other_dir.path().join("k.pk8"))
        .unwrap()
        .public_key_hex();
    let add = [
        "candidate",
        "add",
        "--ref",
        "cand-2",
        "--home-country",
        "JP",
    ];
    let o = kiroku(d, &add, &[("KIROKU_AUDIT__PUBLIC_KEY", &other)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pinned"), "{err}");
    last_line(&kiroku(d, &add, &[("KIROKU_AUDIT__PUBLIC_KEY", &ours)]));
}

/// A loopback listener that counts the connections made to it and answers each request with
/// `answer`; for a webhook receiver and a proxy that must never be used.
fn counting_listener(
    answer: &'static str,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut conn in l.incoming().flatten() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(500)));
            let mut buf = [0u8; 64 * 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    (port, count)
}

/// Webhook deliveries go straight to the recruiter's endpoint: a proxy from the environment
/// (which would resolve and reach the endpoint itself, past kiroku's address checks) is never
/// used, whatever `HTTP_PROXY` and the like say.
#[test]
fn webhook_deliveries_ignore_the_proxy_variables_of_the_environment() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (hook, delivered) = counting_listener("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    let (proxy, proxied) =
        counting_listener("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
    let candidate = cli::recorded_candidate(data, "applicant-1");
    cli::grant(
        data,
        &candidate,
        "share.recording",
        &["--recipient", "acme", "--reference", "form-2026-0001"],
    );
    let key = cli::run(data, &["recruiter", "rotate", "acme"]);
    let port = common::serve::free_port();
    let proxy_url = format!("http://127.0.0.1:{proxy}");
    let mut cmd = cli::kiroku_cmd(data);
    cmd.env("KIROKU_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES", "true");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env(var, &proxy_url);
    }
    let _served = common::serve::Served::start(cmd, port);
    let set = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .put(format!("http://127.0.0.1:{port}/v1/recruiter/webhook"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": format!("http://127.0.0.1:{hook}/hook")}))
        .send()
        .unwrap();
    assert!(set.status().is_success(), "{}", set.status());
    ingest(data, &candidate, "fixtures/interview-vp8-opus.webm");
    let start = std::time::Instant::now();
    while delivered.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the recording.ready delivery never reached the endpoint (proxy saw {})",
            proxied.load(Ordering::SeqCst)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        proxied.load(Ordering::SeqCst),
        0,
        "a delivery went through the proxy"
    );
}

/// Epoch keys in a PKCS#11 token (SoftHSM2) from the command line: a wrong PIN or an unknown
/// token refuses the start naming the token; with the right PIN from the environment, the
/// keys are made in the token (no key file anywhere), a rotation destroys the old epoch's key
/// there, and `kiroku keys status` says where the current key is.
#[test]
fn with_epoch_keys_in_a_pkcs11_token_the_cli_names_the_token_and_rotates_there() {
    let token = common::softhsm::token();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let module = token.module.display().to_string();
    let env = |label: &str, pin: &str| -> Vec<(String, String)> {
        vec![
            ("KIROKU_KEYS__PKCS11__MODULE".into(), module.clone()),
            ("KIROKU_KEYS__PKCS11__TOKEN".into(), label.into()),
            ("KIROKU_KEYS__PKCS11__PIN".into(), pin.into()),
        ]
    };
    let run = |args: &[&str], env: &[(String, String)]| {
        let mut cmd = cli::kiroku_cmd(d);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.output().unwrap()
    };
    let add = [
        "candidate",
        "add",
        "--ref",
        "cand-1",
        "--home-country",
        "JP",
    ];
    let o = run(&add, &env(&token.token, "not-the-pin"));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&token.token) && err.contains("PIN"), "{err}");
    let o = run(&add, &env("kiroku-no-such-token", common::softhsm::PIN));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no token labelled \"kiroku-no-such-token\""),
        "{err}"
    );

    let env = env(&token.token, common::softhsm::PIN);
    let ok = |args: &[&str]| last_line(&run(args, &env));
    let candidate = cli::recorded_candidate_by(ok, "cand-1");
    let interview = ok(&[
        "ingest",
        "--candidate",
        &candidate,
        "--recruiter",
        "acme",
        "fixtures/audio-opus.ogg",
    ]);
    let o = run(&["keys", "rotate", "--region", "jp"], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        last_line(&o).contains("epoch 1 -> 2, 1 key(s) rewrapped, destroyed epochs [1]"),
        "{}",
        last_line(&o)
    );
    let o = run(&["--json", "keys", "status"], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let jp = &status[0];
    assert_eq!(jp["current_epoch"], 2);
    let place = jp["current_key"].as_str().unwrap();
    assert!(
        place.contains(&token.token) && place.ends_with("/jp/2"),
        "{place}"
    );
    let key_files: Vec<_> = common::files::walk(d)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .collect();
    assert!(key_files.is_empty(), "{key_files:?}");
    // The key rewrapped in the token still opens the recording.
    let out = d.join("export.mka");
    ok(&[
        "recording",
        "export",
        &interview,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(std::fs::metadata(&out).unwrap().len() > 1000);
}

/// An operator records `share.*` and `transfer` only from a signed paper form, named by its
/// reference; the receipt's event says so (`paper:<reference>`). `record` needs none.
#[test]
fn a_sharing_consent_at_the_command_line_needs_its_paper_forms_reference() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let candidate = cli::recorded_candidate(d, "applicant-2");
    let args = [
        "consent",
        "grant",
        "--candidate",
        &candidate,
        "--scope",
        "share.recording",
        "--recipient",
        "acme",
    ];
    let o = kiroku(d, &args, &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("paper form") && err.contains("--reference"),
        "{err}"
    );
    let mut with_ref = args.to_vec();
    with_ref.extend(["--reference", "form-2026-0002"]);
    let id = last_line(&kiroku(d, &with_ref, &[]));
    assert!(id.starts_with("ce_"), "{id}");
    let shown = cli::run(d, &["--json", "consent", "show", "--candidate", &candidate]);
    assert!(shown.contains("paper:form-2026-0002"), "{shown}");
}
