//! External analyzers, registered by the operator in `[[analyzers]]`: a command that reads a
//! segment's 16 kHz WAV on stdin and prints JSON on stdout, or an HTTP endpoint that takes the
//! WAV as a POST body and answers JSON. Each call has a timeout; a crash, a hang or output
//! that is not JSON is an error for the caller to record, never a reason to stop anything.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::AnalyzerConfig;

/// Most bytes of output kept from an analyzer.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// Runs one analyzer on one WAV; its JSON, or why there is none.
pub fn run(a: &AnalyzerConfig, wav: &[u8]) -> Result<serde_json::Value, String> {
    let timeout = Duration::from_secs(a.timeout_seconds);
    let out = match (&a.command, &a.url) {
        (Some(cmd), _) => {
            let env = environment(&a.environment, std::env::vars());
            command(cmd, &env, wav, timeout)?
        }
        (None, Some(url)) => http(url, wav, timeout)?,
        (None, None) => return Err("neither command nor url".into()),
    };
    serde_json::from_slice(&out).map_err(|e| {
        format!(
            "output is not JSON ({e}); it began {:?}",
            String::from_utf8_lossy(&out[..out.len().min(40)])
        )
    })
}

/// What an analyzer's process sees of kiroku's environment `ours`: `PATH` (a default when
/// kiroku has none), `LANG`, and the variables the operator listed; never more, so the
/// service and operator tokens, S3 keys and anything else kiroku was given stay with it.
pub fn environment(
    listed: &[String],
    ours: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ours
        .filter(|(k, _)| k == "PATH" || k == "LANG" || listed.contains(k))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env
}

fn command(
    cmd: &[String],
    env: &[(String, String)],
    wav: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start `{}`: {e}", cmd[0]))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = wav.to_vec();
    // Written and read on their own threads, so a program that reads little or writes much
    // cannot stall this one.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("piped");
    let (out_tx, out_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_OUTPUT).read_to_end(&mut out);
        let _ = out_tx.send(out);
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "timed out after {} s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    // A process it left running may still hold its output open: it is not waited for (the
    // reading thread is left to end with it).
    let left = timeout
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(100));
    let out = match out_rx.recv_timeout(left) {
        Ok(out) => out,
        Err(_) => {
            return Err(format!(
                "left processes holding its output open for more than {} s",
                timeout.as_secs()
            ));
        }
    };
    drop(writer);
    if !status.success() {
        return Err(match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".into(),
        });
    }
    Ok(out)
}

fn http(url: &str, wav: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(url)
        .header("content-type", "audio/wav")
        .body(wav.to_vec())
        .send()
        .map_err(|e| {
            if e.is_timeout() {
                format!("did not answer within {} s", timeout.as_secs())
            } else {
                "the request failed".to_string()
            }
        })?;
    if !resp.status().is_success() {
        return Err(format!("answered HTTP {}", resp.status().as_u16()));
    }
    let mut out = Vec::new();
    resp.take(MAX_OUTPUT)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An analyzer that prints its whole environment, started as kiroku starts one, from an
    /// environment full of kiroku's secrets.
    #[test]
    fn an_analyzer_that_prints_its_environment_sees_none_of_kirokus_secrets() {
        let ours = [
            ("PATH", "/usr/bin:/bin"),
            ("KIROKU_SERVICE_TOKEN", "service-secret"),
            ("KIROKU_OPERATOR_TOKEN", "operator-secret"),
            ("KIROKU_REGIONS__JP__S3__SECRET_ACCESS_KEY", "s3-secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("HOME", "/root"),
            ("MODEL_DIR", "/opt/models"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env = environment(&["MODEL_DIR".to_string()], ours.into_iter());
        let cmd = ["sh", "-c", "cat >/dev/null; env"].map(String::from);
        let out = command(&cmd, &env, b"RIFF", Duration::from_secs(10)).unwrap();
        let seen = String::from_utf8(out).unwrap();
        for secret in [
            "service-secret",
            "operator-secret",
            "s3-secret",
            "aws-secret",
            "/root",
        ] {
            assert!(!seen.contains(secret), "{secret} leaked: {seen}");
        }
        assert!(
            seen.contains("MODEL_DIR=/opt/models"),
            "a listed variable is passed: {seen}"
        );
        assert!(seen.contains("PATH=/usr/bin:/bin"), "{seen}");
    }
}
