//! kiroku records AI job interviews for the companies that run them.
//!
//! A candidate's browser streams the interview's voice and video; kiroku cuts the stream into
//! segments with GStreamer, seals every segment with that candidate's own key, tags it with the
//! consent scopes in force and the region it is stored in, keeps it in the region's store and
//! indexes it in the catalog. A recording can be rebuilt from the sealed segments, and every
//! segment proves on opening that it is the one the catalog expects.
//!
//! # Data flows one way
//!
//! ```text
//! front-end ──► http (ingest) ──► capture ──► segment (GStreamer) ──► seal (ring) ──► store ──► catalog
//!                                    │                                                  │
//!                              consent gate                                             ▼
//! recruiter ◄── http ◄── release ◄── recording (verify) ◄── seal (open) ◄── store ◄── catalog
//! ```
//!
//! # Layers
//!
//! Each module imports only modules in the rows below its own. A lower module never calls up:
//! it announces what happened ([`events::Happened`]: a consent changed, an interview finished,
//! an analysis completed) and the modules above listen, wired once in [`node`].
//!
//! ```text
//! cli                               the command line
//! http, bench, fuzzing              the edge; `kiroku bench`; the fuzz targets' bodies
//! node                              open + wire the listeners
//! capture, delivery                 one interview's capture; push release (listens)
//! analysis, release, subject, sessions  consent-gated analysis (listens); pull release;
//!                                   the candidate's rights (export, erasure, suspension);
//!                                   who is at a page (candidate links, sign-ins, CSRF)
//! recording, recruiter              one verified road to plaintext; recipients
//! app, placement                    wiring: config, catalog, regions, keys; where data lives
//! consent, anchor                   ledger, consent-state replay, decision point; audit
//!                                   checkpoints published outside the data dir
//! events, audit                     announcements; the audit log
//! catalog                           the typed rows (SQLite or PostgreSQL)
//! store, segment, keyring           object stores; GStreamer; candidates' wrapped keys and
//!                                   the epoch keys, outside the data dir
//! seal, signing, config             AEAD; Ed25519; the operator's config
//! vocab                             the records' words (scopes, items, outbox states…)
//! ids, util, sqldb                  identifiers; files, clock, secrets; SQLite or PostgreSQL
//! metrics                           counters every module records into (as it logs)
//! ```
//!
//! `tests/layering.rs` reads `src/` and fails naming the cycle if any module imports one that
//! imports it back, directly or through others, and if a module is missing from this page.
//!
//! # Modules, each owning one thing
//!
//! - [`analysis`]: consent-gated audio analysis off the ingest path; sealed outputs.
//! - [`app`]: wiring: config, pipelines, catalog, each region's store and master key.
//! - [`config`]: the operator's config (TOML + `KIROKU_…` environment), parsed, errors by field name.
//! - [`events`]: what lower modules announce to the modules above them.
//! - [`node`]: opens kiroku with the listeners wired; what `serve`, the CLI and tests use.
//! - [`ids`]: identifiers that can never escape a folder or carry personal data.
//! - [`seal`]: the only user of ring's AEAD: keys, the sealed-object format, seal and open,
//!   and which 64 KiB chunks a byte range needs (`seal::chunks`).
//! - [`segment`]: the only user of GStreamer: pipelines (built in or `pipelines_dir`), remux, cuts
//!   (Matroska at clusters, MP4 at fragments), and WHIP sessions received by `webrtcbin`.
//! - [`store`]: object stores; accepts only sealed objects.
//! - [`keyring`]: candidates' wrapped keys under rotating epoch keys, kept outside the data
//!   dir, and the erasure ledger.
//! - [`catalog`]: the database of candidates, interviews, segments, consents, the outbox.
//! - [`sqldb`]: one connection type over SQLite or PostgreSQL; statements and schema steps
//!   written once.
//! - [`consent`]: the consent ledger, receipts, and the release decision point.
//! - [`placement`]: which region an interview's data lives in (home country, `transfer`).
//! - [`recruiter`]: recruiting companies, their API keys and webhook endpoints.
//! - [`sessions`]: the pages' sessions: a candidate's single-use link, recruiters' and the
//!   operator's sign-ins, each with its CSRF token.
//! - [`subject`]: the candidate's rights carried out in one call: disclosure export,
//!   erasure by crypto-shredding, suspension, correction.
//! - [`release`]: the only road from sealed bytes to a recipient; provision records.
//! - [`delivery`]: push release: the signed webhook outbox.
//! - [`audit`]: the append-only, hash-chained, signed audit log.
//! - [`anchor`]: publishes each audit checkpoint outside the data dir (an S3 bucket under
//!   Object Lock, a witness URL) and reads the bucket back for `audit verify`.
//! - [`signing`]: the operator's Ed25519 key (receipts, audit checkpoints).
//! - [`capture`]: one interview's capture session, from bytes in to acknowledged segments.
//! - [`recording`]: the one verification of a recording (`recording::verify`: manifest,
//!   catalog, key, region) that export and release both use; each segment proven on opening.
//! - [`http`]: the HTTP, WebSocket and WHIP edge; maps each module's error to a status once.
//! - [`cli`]: the `kiroku` command line.
//! - [`bench`](mod@bench): `kiroku bench`, ratios measured in one run.
//! - [`fuzzing`]: the fuzz targets' bodies (`fuzz/`), each a parser of untrusted bytes and its
//!   invariants; the saved corpora run through them in the normal suite.
//! - [`vocab`]: the records' words (scopes, items, legal bases, outbox kinds…) as enums.
//! - [`metrics`]: the process's counters, gauges and histograms, which any module records into
//!   (as it logs) and `GET /metrics` renders; it imports nothing of kiroku's.
//! - [`util`]: durable atomic file writes, the clock, random tokens, SHA-256, secret comparison.
//!
//! # Non-features
//!
//! - No plaintext media and no unwrapped key is ever written to disk by kiroku; the only
//!   plaintext file it writes is the one an operator asks for with `kiroku recording export`.
//! - Traces carry pseudonymous ids only (candidate and interview UUIDs), never a candidate's
//!   external reference.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod anchor;
pub mod app;
pub mod audit;
pub mod bench;
pub mod capture;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod consent;
pub mod delivery;
pub mod events;
pub mod fuzzing;
pub mod http;
pub mod ids;
pub mod keyring;
pub mod metrics;
pub mod node;
pub mod placement;
pub mod recording;
pub mod recruiter;
pub mod release;
pub mod seal;
pub mod segment;
pub mod sessions;
pub mod signing;
pub mod sqldb;
pub mod store;
pub mod subject;
pub mod util;
pub mod vocab;
