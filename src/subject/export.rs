//! Disclosure and portability (APPI Art. 33, GDPR Art. 15 and 20): everything kiroku holds
//! of one candidate in one archive a person can open, optionally encrypted to the requester.
//!
//! The archive is a tar file (`tar -xf`, or any archive tool), written as a stream straight
//! into its destination, through age when the requester gave an X25519 recipient or a
//! passphrase: an encrypted export never exists in the clear, not even in a temporary file.
//!
//! ```text
//! README.txt                          what is where, in the candidate's language (ja or en)
//! profile.json                        the profile: reference, home country, language
//! consents.json                       every consent event, with its signed receipt
//! provisions.json                     who received what, when, on which consent or legal basis
//! interviews/<id>/interview.json      the interview, its segments and tags, where it is stored
//! interviews/<id>/recording.<ext>     the recording, opened and verified segment by segment
//! interviews/<id>/analysis/<analyzer>/<segment|interview>.<json|wav>
//! ```

use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use age::secrecy::SecretString;
use serde_json::{Value, json};

use super::SubjectError;
use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::catalog::InterviewRow;
use crate::consent::ConsentError;
use crate::ids::CandidateId;
use crate::recording::{RecordingError, VerifiedRecording, open_output};
use crate::store::Store;
use crate::vocab::{AnalysisStatus, Language, OutputFormat};

/// Whom an export is encrypted to.
pub enum Sealing {
    /// Written in the clear (the command line's `--out`, on the operator's say).
    None,
    /// An age X25519 recipient (`age1…`): only its identity opens the archive.
    Recipient(Box<age::x25519::Recipient>),
    /// A passphrase the requester chose (age's scrypt recipient).
    Passphrase(SecretString),
}

impl Sealing {
    /// An age recipient in its text form.
    pub fn recipient(text: &str) -> Result<Sealing, SubjectError> {
        text.trim()
            .parse::<age::x25519::Recipient>()
            .map(|r| Sealing::Recipient(Box::new(r)))
            .map_err(|_| {
                SubjectError::Consent(ConsentError::Invalid {
                    field: "age_recipient",
                    why: "an age X25519 recipient, `age1…`",
                })
            })
    }

    pub fn is_encrypted(&self) -> bool {
        !matches!(self, Sealing::None)
    }
}

/// How far an export has come.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ExportProgress {
    pub interviews_done: usize,
    pub interviews_total: usize,
}

/// What an export held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub candidate: CandidateId,
    pub interviews: usize,
    pub recordings: usize,
    pub analysis_outputs: usize,
    pub consent_events: usize,
    pub provisions: usize,
    pub encrypted: bool,
}

/// Writes the candidate's archive into `out`, encrypted as `to` says; `progress` is told
/// after each interview. Fails whole on a recording or output that does not verify (the
/// caller discards what was written).
pub fn export<W: Write>(
    app: &Arc<Kiroku>,
    candidate: &CandidateId,
    out: W,
    to: &Sealing,
    progress: &mut dyn FnMut(ExportProgress),
    actor: &Actor,
) -> Result<ExportReport, SubjectError> {
    super::not_erased(app, candidate)?;
    let report = match to {
        Sealing::None => write_archive(app, candidate, out, progress)?.0,
        Sealing::Recipient(r) => {
            let enc = age::Encryptor::with_recipients(std::iter::once(&**r as _))
                .map_err(|e| io(std::io::Error::other(e.to_string())))?;
            seal_into(enc, app, candidate, out, progress)?
        }
        Sealing::Passphrase(p) => {
            let enc = age::Encryptor::with_user_passphrase(p.clone());
            seal_into(enc, app, candidate, out, progress)?
        }
    };
    let report = ExportReport {
        encrypted: to.is_encrypted(),
        ..report
    };
    app.audit.record(
        Event::CandidateExported {
            candidate: *candidate,
            interviews: report.interviews,
            encrypted: report.encrypted,
        },
        actor,
    )?;
    Ok(report)
}

fn seal_into<W: Write>(
    enc: age::Encryptor,
    app: &Arc<Kiroku>,
    candidate: &CandidateId,
    out: W,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<ExportReport, SubjectError> {
    let sealed = enc.wrap_output(out).map_err(io)?;
    let (report, sealed) = write_archive(app, candidate, sealed, progress)?;
    sealed.finish().map_err(io)?;
    Ok(report)
}

fn io(e: std::io::Error) -> SubjectError {
    SubjectError::Export(e.to_string())
}

/// Writes the tar archive into `w` and hands `w` back.
fn write_archive<W: Write>(
    app: &Arc<Kiroku>,
    candidate: &CandidateId,
    w: W,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<(ExportReport, W), SubjectError> {
    let mut tar = tar::Builder::new(w);
    let profile = app
        .catalog
        .candidate_profile(candidate)?
        .ok_or(SubjectError::UnknownCandidate)?;
    let language = app
        .catalog
        .candidate_language(candidate)?
        .unwrap_or(Language::Ja);
    let consents = app
        .ledger()
        .history(candidate)
        .map_err(SubjectError::Consent)?;
    let provisions = app.catalog.provisions(candidate)?;
    let interviews = app.catalog.interviews_of_candidate(candidate)?;
    add(&mut tar, "README.txt", readme(language).as_bytes())?;
    add_json(&mut tar, "profile.json", &serde_json::to_value(&profile)?)?;
    let consent_list: Vec<Value> = consents
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            // The receipt as the signed JSON it is, not a string inside a string.
            if let Some(r) = &e.receipt {
                v["receipt"] = serde_json::from_str(r).unwrap_or_else(|_| json!(r));
            }
            v
        })
        .collect();
    add_json(&mut tar, "consents.json", &json!(consent_list))?;
    add_json(
        &mut tar,
        "provisions.json",
        &serde_json::to_value(&provisions)?,
    )?;
    let mut report = ExportReport {
        candidate: *candidate,
        interviews: interviews.len(),
        recordings: 0,
        analysis_outputs: 0,
        consent_events: consents.len(),
        provisions: provisions.len(),
        encrypted: false,
    };
    let mut done = ExportProgress {
        interviews_done: 0,
        interviews_total: interviews.len(),
    };
    progress(done);
    for row in interviews {
        add_interview(app, &mut tar, &row, &mut report)?;
        done.interviews_done += 1;
        progress(done);
    }
    let w = tar.into_inner().map_err(io)?;
    Ok((report, w))
}

/// One interview: its description, its recording (when it ended with segments) and its
/// analysis outputs.
fn add_interview<W: Write>(
    app: &Arc<Kiroku>,
    tar: &mut tar::Builder<W>,
    row: &InterviewRow,
    report: &mut ExportReport,
) -> Result<(), SubjectError> {
    let dir = format!("interviews/{}", row.id);
    let region = app.region(&row.region);
    let segments = app.catalog.segments(&row.id)?;
    let described = json!({
        "interview_id": row.id,
        "recruiter": row.recruiter,
        "job_ref": row.job_ref,
        "state": row.state,
        "created_at": row.created_at,
        "ended_at": row.ended_at,
        "end_reason": row.end_reason,
        "content_type": row.content_type,
        "stored_in": {
            "region": row.region,
            "country": region.map(|r| r.region.country.to_string()),
            "backend": region.map(|r| r.store.backend()),
        },
        "segments": segments.iter().map(|s| json!({
            "index": s.index, "media_kind": s.media_kind, "start_ns": s.start_ns,
            "end_ns": s.end_ns, "bytes": s.plain_len, "stored_at": s.stored_at, "tags": s.tags,
        })).collect::<Vec<_>>(),
    });
    add_json(tar, &format!("{dir}/interview.json"), &described)?;
    if !row.state.is_ended() || segments.is_empty() {
        return Ok(());
    }
    let (verified, store) = VerifiedRecording::open(app, row.clone())?;
    let ext = extension(&crate::recording::content_type(app, row));
    let mut header = header(verified.plain_len());
    let mut reader = SegmentReader {
        verified: &verified,
        store,
        next: 0,
        buf: Cursor::new(Vec::new()),
    };
    tar.append_data(&mut header, format!("{dir}/recording.{ext}"), &mut reader)
        .map_err(|e| match e.into_inner() {
            Some(inner) => match inner.downcast::<RecordingError>() {
                Ok(r) => SubjectError::Recording(*r),
                Err(other) => SubjectError::Export(other.to_string()),
            },
            None => SubjectError::Export("the recording could not be written".into()),
        })?;
    report.recordings += 1;
    let key = verified.key();
    for output in app.catalog.analysis_outputs(&row.id)? {
        if output.status != AnalysisStatus::Ok || output.object_key.is_none() {
            continue;
        }
        let bytes = open_output(store, key, row, &output)?;
        let name = output
            .segment
            .map_or("interview".to_string(), |s| format!("{s:08}"));
        let ext = match output.kind {
            OutputFormat::Wav => "wav",
            OutputFormat::Json => "json",
        };
        add(
            tar,
            &format!("{dir}/analysis/{}/{name}.{ext}", output.analyzer),
            &bytes,
        )?;
        report.analysis_outputs += 1;
    }
    Ok(())
}

/// The recording's parts, opened one at a time as the archive reads them.
struct SegmentReader<'a> {
    verified: &'a VerifiedRecording,
    store: &'a Store,
    next: usize,
    buf: Cursor<Vec<u8>>,
}

impl Read for SegmentReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.buf.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            if self.next == self.verified.parts().len() {
                return Ok(0);
            }
            let plain = self
                .verified
                .open_part(self.store, self.next)
                .map_err(std::io::Error::other)?;
            self.next += 1;
            self.buf = Cursor::new(plain);
        }
    }
}

fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o600);
    h.set_mtime(crate::util::now_unix().max(0) as u64);
    h
}

fn add<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<(), SubjectError> {
    tar.append_data(&mut header(bytes.len() as u64), path, bytes)
        .map_err(io)
}

fn add_json<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    v: &Value,
) -> Result<(), SubjectError> {
    let text = serde_json::to_vec_pretty(v)?;
    add(tar, path, &text)
}

fn extension(content_type: &str) -> &'static str {
    match content_type.split(';').next().unwrap_or_default().trim() {
        "video/webm" | "audio/webm" => "webm",
        "video/x-matroska" | "audio/x-matroska" => "mkv",
        "video/mp4" | "audio/mp4" => "mp4",
        "audio/ogg" => "ogg",
        "audio/wav" | "audio/x-wav" => "wav",
        _ => "bin",
    }
}

/// The archive's README, in the candidate's language.
fn readme(language: Language) -> String {
    match language {
        Language::Ja => "kiroku — あなたの個人データの開示\n\
\n\
このアーカイブには、kiroku があなたについて保有しているすべてのデータが含まれています。\n\
\n\
  profile.json      プロフィール(外部参照、居住国、言語)\n\
  consents.json     同意と撤回の全履歴(署名付きの受領証を含む)\n\
  provisions.json   第三者提供の記録(提供先、日時、項目、同意または法令上の根拠)\n\
  interviews/       面接ごとに:面接の情報、セグメントとタグ、保存場所(リージョンと国)、\n\
                    録画(recording.*)、分析結果(analysis/)\n\
\n\
録画は一般的な動画プレーヤー(ブラウザなど)で再生できます。JSON ファイルはテキストエディタで\n\
開けます。受領証の署名は、事業者の公開鍵(GET /v1/keys)で検証できます。\n"
            .to_string(),
        Language::En => "kiroku — disclosure of your personal data\n\
\n\
This archive holds everything kiroku keeps about you.\n\
\n\
  profile.json      your profile (external reference, home country, language)\n\
  consents.json     every consent and withdrawal, with its signed receipt\n\
  provisions.json   every provision to a third party: to whom, when, what, and on which\n\
                    consent or legal basis\n\
  interviews/       per interview: its details, its segments and their tags, where it is\n\
                    stored (region and country), the recording (recording.*) and the\n\
                    analysis outputs (analysis/)\n\
\n\
Recordings play in a common video player or a browser. JSON files open in a text editor.\n\
Receipts are signed with the operator's public key (GET /v1/keys).\n"
            .to_string(),
    }
}
