//! Schema migrations: an ordered list in SQLite's words (put in PostgreSQL's by
//! [`crate::sqldb`]), applied once each, recorded in `schema_version`. Append new steps;
//! never edit a step that has shipped.

use crate::sqldb::Connection;

use super::CatalogError;

pub(super) const STEPS: &[&str] = &[
    // 1: the capture pipeline's tables.
    "CREATE TABLE candidates (
        id TEXT PRIMARY KEY,
        external_ref TEXT NOT NULL,
        home_country TEXT NOT NULL,
        created_at TEXT NOT NULL
     );
     CREATE TABLE candidate_keys (
        candidate_id TEXT NOT NULL REFERENCES candidates(id),
        region TEXT NOT NULL,
        version INTEGER NOT NULL,
        wrapped BLOB NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (candidate_id, region, version)
     );
     CREATE TABLE consent_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        candidate_id TEXT NOT NULL REFERENCES candidates(id),
        action TEXT NOT NULL CHECK (action IN ('grant', 'withdraw')),
        scope TEXT NOT NULL,
        recipient TEXT,
        country TEXT,
        at TEXT NOT NULL
     );
     CREATE TABLE interviews (
        id TEXT PRIMARY KEY,
        candidate_id TEXT NOT NULL REFERENCES candidates(id),
        recruiter TEXT NOT NULL,
        job_ref TEXT,
        region TEXT NOT NULL,
        content_type TEXT NOT NULL,
        profile TEXT NOT NULL,
        state TEXT NOT NULL,
        key_version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        ended_at TEXT,
        bytes_in INTEGER NOT NULL DEFAULT 0,
        end_reason TEXT
     );
     CREATE TABLE ingest_tokens (
        hash BLOB PRIMARY KEY,
        interview_id TEXT NOT NULL REFERENCES interviews(id),
        expires_at INTEGER NOT NULL,
        used_at INTEGER
     );
     CREATE TABLE segments (
        interview_id TEXT NOT NULL REFERENCES interviews(id),
        idx INTEGER NOT NULL,
        object_key TEXT NOT NULL,
        media_kind TEXT NOT NULL,
        plain_len INTEGER NOT NULL,
        sealed_len INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER NOT NULL,
        keyframe INTEGER NOT NULL,
        is_final INTEGER NOT NULL,
        commitment TEXT NOT NULL,
        tags TEXT NOT NULL,
        stored_at TEXT NOT NULL,
        PRIMARY KEY (interview_id, idx)
     );",
    // 2: the consent ledger made whole, recruiters, release and its records.
    "CREATE TABLE notices (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        language TEXT NOT NULL,
        url TEXT NOT NULL,
        text_sha256 TEXT NOT NULL,
        registered_at TEXT NOT NULL
     );
     ALTER TABLE consent_events ADD COLUMN notice_id TEXT REFERENCES notices(id);
     ALTER TABLE consent_events ADD COLUMN method TEXT;
     ALTER TABLE consent_events ADD COLUMN origin TEXT;
     ALTER TABLE consent_events ADD COLUMN language TEXT;
     ALTER TABLE consent_events ADD COLUMN withdraws TEXT;
     ALTER TABLE consent_events ADD COLUMN receipt TEXT;
     CREATE TABLE recruiters (
        handle TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
     );
     CREATE TABLE recruiter_keys (
        key_id TEXT PRIMARY KEY,
        handle TEXT NOT NULL REFERENCES recruiters(handle),
        hash BLOB NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
     );
     CREATE TABLE webhooks (
        handle TEXT PRIMARY KEY REFERENCES recruiters(handle),
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL
     );
     CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        handle TEXT NOT NULL REFERENCES recruiters(handle),
        kind TEXT NOT NULL,
        candidate_id TEXT NOT NULL REFERENCES candidates(id),
        interview_id TEXT REFERENCES interviews(id),
        scope TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'cancelled', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        done_at TEXT
     );
     CREATE TABLE download_links (
        hash BLOB PRIMARY KEY,
        handle TEXT NOT NULL REFERENCES recruiters(handle),
        interview_id TEXT NOT NULL REFERENCES interviews(id),
        expires_at INTEGER NOT NULL
     );
     CREATE TABLE provisions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        at TEXT NOT NULL,
        recipient TEXT NOT NULL,
        candidate_id TEXT NOT NULL REFERENCES candidates(id),
        interview_id TEXT NOT NULL REFERENCES interviews(id),
        item TEXT NOT NULL,
        segments TEXT NOT NULL,
        byte_range TEXT,
        basis TEXT NOT NULL CHECK (basis IN ('consent', 'legal_exception')),
        consent_event_id TEXT,
        legal_basis TEXT,
        reference TEXT,
        keep_until INTEGER NOT NULL
     );
     CREATE INDEX provisions_by_candidate ON provisions (candidate_id, seq);
     CREATE INDEX outbox_pending ON outbox (state, next_at);",
    // 3: analysis outputs (sealed objects in the interview's region) and failures.
    "CREATE TABLE analysis_outputs (
        interview_id TEXT NOT NULL REFERENCES interviews(id),
        analyzer TEXT NOT NULL,
        segment INTEGER,
        kind TEXT NOT NULL CHECK (kind IN ('wav', 'json')),
        object_key TEXT,
        plain_len INTEGER NOT NULL DEFAULT 0,
        commitment TEXT,
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        error TEXT,
        created_at TEXT NOT NULL
     );
     CREATE INDEX analysis_by_interview ON analysis_outputs (interview_id, analyzer, segment);",
    // The codecs a recording holds (`vp8,opus`), known once its first media segment is stored.
    "ALTER TABLE interviews ADD COLUMN codecs TEXT;",
    // The credential a front-end resumes a dropped stream with (its SHA-256).
    "CREATE TABLE resume_tokens (
        interview_id TEXT PRIMARY KEY REFERENCES interviews(id),
        hash BLOB NOT NULL
     );",
    // A recruiter revoked as a recipient (not only its keys): refused at the decision point.
    "ALTER TABLE recruiters ADD COLUMN revoked_at TEXT;",
    // Where a recruiter receives data (ISO country; NULL for recruiters registered before:
    // taken as the controller's own country), and the `transfer` consent a provision to
    // another country than the candidate's rested on.
    "ALTER TABLE recruiters ADD COLUMN country TEXT;
     ALTER TABLE provisions ADD COLUMN transfer_consent_event_id TEXT;",
    // A grant is withdrawn once: two withdrawals racing for it cannot both be recorded.
    "CREATE UNIQUE INDEX consent_withdrawn_once ON consent_events (withdraws)
     WHERE withdraws IS NOT NULL;",
    // An erased candidate: the row stays as a tombstone (its id is what provision records and
    // audit entries name), with nothing personal left in it.
    // The language a candidate is addressed in (`ja`, `en`), for what kiroku writes to them.
    // An interview's recording deleted when its retention ran out.
    "ALTER TABLE candidates ADD COLUMN erased_at TEXT;
     ALTER TABLE candidates ADD COLUMN language TEXT;
     ALTER TABLE interviews ADD COLUMN recording_expired_at TEXT;",
    // Web sessions of the pages: a candidate's single-use link and the session it opens, a
    // recruiter's or the operator's sign-in (each by its token's SHA-256, never the token);
    // and the rights requests candidates make from their privacy center.
    "CREATE TABLE web_sessions (
        hash BLOB PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('candidate_link', 'candidate', 'recruiter', 'operator')),
        candidate_id TEXT REFERENCES candidates(id),
        recruiter TEXT,
        csrf TEXT NOT NULL,
        language TEXT,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
     );
     CREATE INDEX web_sessions_by_candidate ON web_sessions (candidate_id);
     CREATE TABLE rights_requests (
        id TEXT PRIMARY KEY,
        candidate_id TEXT NOT NULL REFERENCES candidates(id),
        kind TEXT NOT NULL CHECK (kind IN ('disclosure', 'erasure')),
        created_at TEXT NOT NULL,
        closed_at TEXT
     );",
    // The node capturing an interview and until when its claim holds: another node stops the
    // capture once the claim has lapsed (the node died), never while it holds.
    "ALTER TABLE interviews ADD COLUMN lease_node TEXT;
     ALTER TABLE interviews ADD COLUMN lease_until INTEGER;",
    // `finish` asked on a node that does not hold the stream: the node that does sees it.
    "ALTER TABLE interviews ADD COLUMN finish_requested_at TEXT;",
    // Work one node at a time does, and which node holds it until when: a recipient's
    // deliveries (`deliveries:<handle>`: each sent once, in order), the hourly sweeps.
    "CREATE TABLE claims (
        what TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        until INTEGER NOT NULL
     );",
    // The order analysis outputs were made in, in a column both databases keep (SQLite's
    // rowid, which gave it before, is not PostgreSQL's).
    "ALTER TABLE analysis_outputs ADD COLUMN seq INTEGER;",
    // What the hot paths look up by something other than a key: a candidate's consent
    // events (read at every segment boundary of every capture), a candidate's interviews and
    // outbox rows (rights, erasure), interviews by state (sweeps, recovery), a recipient's
    // pending deliveries. Without them each lookup reads the whole table, and a capture's
    // boundary check grows with the number of candidates ever seen.
    "CREATE INDEX consent_events_by_candidate ON consent_events (candidate_id, seq);
     CREATE INDEX interviews_by_candidate ON interviews (candidate_id);
     CREATE INDEX interviews_by_state ON interviews (state);
     CREATE INDEX outbox_by_candidate ON outbox (candidate_id);
     CREATE INDEX outbox_by_recipient ON outbox (handle, state, seq);",
    // Where each cluster or fragment starts in its segment, its time and whether it starts
    // on a keyframe (JSON triples): a finished recording's Cues or `sidx` are written from it
    // when capture ends, without opening the media again.
    "ALTER TABLE segments ADD COLUMN clusters TEXT;",
];

pub fn run(conn: &Connection) -> Result<(), CatalogError> {
    Ok(conn.migrate("schema_version", STEPS)?)
}
