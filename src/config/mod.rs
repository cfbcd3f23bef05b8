//! The operator's config: a TOML file (see `config/kiroku.example.toml`), every value of which
//! can be overridden by an environment variable named after it (`KIROKU_LISTEN`,
//! `KIROKU_LIMITS__MAX_BYTES_PER_INTERVIEW`, `KIROKU_REGIONS__JP__COUNTRY`: nested names joined
//! by `__`). Unknown fields are refused, and every error names the field. No I/O but reading
//! the file. `KIROKU_LOG` (the log filter) is the one `KIROKU_` variable that is not config.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::ids::{CountryCode, RegionId};

/// Why the config cannot be used; each names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Parse(String),
    #[error("`{field}`: {why}")]
    Invalid { field: String, why: String },
    #[error("config file {path}: {why}")]
    File { path: String, why: String },
}

/// The whole config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Where the catalog, the local stores, key files and generated secrets live.
    pub data_dir: PathBuf,
    /// The catalog on PostgreSQL, shared by every node: `postgres://user@host:port/db`
    /// (`KIROKU_CATALOG`; the password in `PGPASSWORD`, never in the URL). The candidates'
    /// wrapped keys and the audit log live there too. Unset: SQLite in the data dir, one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// Folder of GStreamer pipeline descriptions (one `*.toml` per ingest profile, and
    /// `analysis/audio-tap.toml`), read instead of the descriptions shipped in the binary.
    /// Unset: the built-in ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipelines_dir: Option<PathBuf>,
    /// Region used for new interviews.
    pub default_region: String,
    /// Front-ends' service token. Unset: generated on first run into `<data_dir>/secrets/`.
    pub service_token: Option<String>,
    /// Operator token. Unset: generated on first run into `<data_dir>/secrets/`.
    pub operator_token: Option<String>,
    /// Lifetime of a single-use ingest token, in seconds.
    pub ingest_token_ttl_seconds: u64,
    /// How long a WebSocket stream whose connection dropped waits for the front-end to
    /// reconnect with its resume credential before the interview ends as `client_gone`, in
    /// seconds (0: no resume).
    pub resume_grace_seconds: u64,
    pub segment: SegmentConfig,
    pub limits: Limits,
    /// Connection limits and timeouts of the HTTP listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// Storage regions by id.
    pub regions: BTreeMap<String, RegionConfig>,
    /// Where each home country's candidates are placed (country code → region id); others go
    /// to `default_region`.
    #[serde(default)]
    pub placement: BTreeMap<String, String>,
    /// The personal-information controller named in consent receipts.
    pub controller: Controller,
    pub audit: AuditConfig,
    pub release: ReleaseConfig,
    pub webhooks: WebhookConfig,
    /// How long each kind of personal data is kept (`subject::retention`).
    #[serde(default)]
    pub retention: RetentionConfig,
    /// The keyring: where candidates' wrapped keys and the epoch keys live, and how often
    /// epochs rotate.
    #[serde(default)]
    pub keys: KeysConfig,
    /// WHIP (WebRTC) ingest: where kiroku's ICE agent listens, which pages may publish.
    #[serde(default)]
    pub whip: WhipConfig,
    /// External analyzers, run on each segment's 16 kHz WAV under `analyze` consent.
    #[serde(default)]
    pub analyzers: Vec<AnalyzerConfig>,
    /// The pages kiroku serves to people: candidate links and sessions.
    #[serde(default)]
    pub pages: PagesConfig,
}

/// The pages (`[pages]`): how long a candidate link and a session last. Links are made on
/// `[release] public_url`; cookies are `Secure` when it is `https://`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagesConfig {
    /// Seconds a candidate link can be opened (once) after the front-end asked for it.
    #[serde(default = "default_link_ttl")]
    pub link_ttl_seconds: u64,
    /// Seconds a session (candidate, recruiter, operator) lasts after it was opened.
    #[serde(default = "default_session_ttl")]
    pub session_ttl_seconds: u64,
}

fn default_link_ttl() -> u64 {
    900
}

fn default_session_ttl() -> u64 {
    4 * 3600
}

impl Default for PagesConfig {
    fn default() -> PagesConfig {
        PagesConfig {
            link_ttl_seconds: default_link_ttl(),
            session_ttl_seconds: default_session_ttl(),
        }
    }
}

/// An operator's external analyzer: a command (WAV on stdin, JSON on stdout) or an HTTP
/// endpoint (WAV in the POST body, JSON in the answer).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnalyzerConfig {
    /// 1 to 32 of a-z, 0-9 and '-'; names its outputs.
    pub name: String,
    /// The program and its arguments.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The endpoint to POST the WAV to.
    #[serde(default)]
    pub url: Option<String>,
    /// Seconds one call may take before it is killed (or abandoned) and recorded as failed.
    #[serde(default = "default_analyzer_timeout")]
    pub timeout_seconds: u64,
    /// Names of kiroku's environment variables a command analyzer may see, besides `PATH`
    /// and `LANG`; it starts with nothing else (kiroku's tokens and S3 keys stay kiroku's).
    /// `KIROKU_*` and `AWS_*` may not be listed.
    #[serde(default)]
    pub environment: Vec<String>,
}

/// The built-in analyzer's name, which names its outputs. Kept here, with the analyzer
/// config, because it is what an operator's analyzer may not be called; `analysis` takes it
/// from here.
pub const BUILTIN_ANALYZER: &str = "kiroku-builtin";
/// The name under which the 16 kHz WAV renditions are stored beside analyzers' outputs; no
/// analyzer may take it either.
pub const RENDITION_ANALYZER: &str = "audio-16k";

fn default_analyzer_timeout() -> u64 {
    30
}

/// The operator as personal-information controller (Kantara receipt `piiControllers`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    pub name: String,
    pub contact: String,
    pub address: String,
    pub email: String,
    pub phone: String,
    /// Jurisdiction whose law the consent is given under (receipt `jurisdiction`).
    pub jurisdiction: String,
    /// Time zone offset consent events are recorded in unless the request names one.
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A signed checkpoint after this many entries…
    pub checkpoint_every_entries: u64,
    /// …and on the first entry after this many seconds without one.
    pub checkpoint_every_seconds: u64,
    /// A folder outside the data dir (another disk, a WORM mount) that receives a copy of
    /// every checkpoint, never overwritten; `audit verify` compares the log with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_dir: Option<PathBuf>,
    /// The operator's public signing key (hex), pinned: kiroku refuses to start with another
    /// key in the data dir, and `audit verify` checks against this one, not the data dir's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// An S3 bucket (of its own, not a region's) that receives every checkpoint, under Object
    /// Lock where the bucket has it; `audit verify` compares the log with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<AuditS3Config>,
    /// A witness service that receives every checkpoint by POST and keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessConfig>,
}

/// The keyring (`keyring`): outside the data dir, so a backup of it holds no key material.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The keys folder; unset: the data dir's sibling `<data_dir>.keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Days between epoch rotations (every live candidate key rewrapped, the old epoch key
    /// destroyed); 0: only `kiroku keys rotate`.
    #[serde(default = "default_epoch_days")]
    pub epoch_days: u64,
    /// Epoch keys kept after a rotation, beside the current one (0: destroyed at once).
    #[serde(default)]
    pub keep_epochs: u32,
    /// Epoch keys in a PKCS#11 token (an HSM) instead of files in the keys folder: made in
    /// the token, never extractable, used there to wrap and unwrap candidate keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<Pkcs11Config>,
    /// The wrapped candidate keys on PostgreSQL (`postgres://…`, `KIROKU_KEYS__DATABASE`),
    /// shared by every node; required with a PostgreSQL `catalog`. A database (or a schema,
    /// by `options=-csearch_path=…`) apart from the catalog's and backed up apart, as the keys
    /// folder is: restoring the catalog from a backup must not roll the keyring back to an
    /// epoch whose key was destroyed since. Unset: `keyring.db` in the keys folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// A PostgreSQL URL at `field` must not carry a password: URLs sit in config files, so the
/// password comes from `PGPASSWORD`.
fn passwordless(field: &str, url: &str) -> Result<(), ConfigError> {
    if url
        .parse::<postgres::Config>()
        .is_ok_and(|c| c.get_password().is_some())
    {
        return Err(ConfigError::Invalid {
            field: field.into(),
            why: "carries a password: give it in PGPASSWORD instead".into(),
        });
    }
    Ok(())
}

/// A PKCS#11 token that keeps the epoch keys (`[keys.pkcs11]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The vendor's PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label (as `softhsm2-util --show-slots` or the vendor's tool lists it).
    pub token: String,
    /// A file (0600) holding the user PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// The user PIN, when there is no `pin_file`: give it in the environment
    /// (`KIROKU_KEYS__PKCS11__PIN`), not in this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

fn default_epoch_days() -> u64 {
    30
}

impl Default for KeysConfig {
    fn default() -> KeysConfig {
        KeysConfig {
            dir: None,
            epoch_days: default_epoch_days(),
            keep_epochs: 0,
            pkcs11: None,
            database: None,
        }
    }
}

/// Days each kind of data is kept after it was made; 0 keeps it until the candidate is erased.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Recordings (segments and manifest), counted from the interview's end.
    #[serde(default)]
    pub recordings_days: u64,
    /// Analysis reports (JSON).
    #[serde(default)]
    pub analysis_days: u64,
    /// WAV renditions made for analyzers.
    #[serde(default)]
    pub renditions_days: u64,
}

/// The bucket audit checkpoints are published to (`[audit.s3]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditS3Config {
    pub bucket: String,
    /// The S3 region name, e.g. `ap-northeast-1`.
    pub region: String,
    /// Endpoint of an S3-compatible store; unset for AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub path_style: bool,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Prefer the environment: `KIROKU_AUDIT__S3__SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Key prefix of the checkpoint objects (`<prefix>checkpoint-<seq>.json`).
    #[serde(default = "default_checkpoint_prefix")]
    pub prefix: String,
    /// Days each checkpoint object is locked for, where the bucket has Object Lock.
    #[serde(default = "default_checkpoint_retain_days")]
    pub retain_days: u64,
    /// Object Lock mode where the bucket has it: `compliance` (no one, root included, can
    /// shorten it) or `governance` (users with a bypass permission can).
    #[serde(default)]
    pub lock_mode: LockMode,
}

impl AuditS3Config {
    /// The bucket as the S3 client takes it.
    pub fn as_store(&self) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            path_style: self.path_style,
            profile: self.profile.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            upload_timeout_seconds: default_upload_timeout(),
            spool_limit_bytes: 0,
        }
    }
}

/// S3 Object Lock's two retention modes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    #[default]
    Compliance,
    Governance,
}

fn default_checkpoint_prefix() -> String {
    "kiroku-audit/".into()
}

fn default_checkpoint_retain_days() -> u64 {
    1096
}

/// A witness that receives every audit checkpoint (`[audit.witness]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Where each checkpoint is POSTed as JSON; any 2xx is taken as kept.
    pub url: String,
    /// Sent as `Authorization: Bearer …` when set (prefer `KIROKU_AUDIT__WITNESS__TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Seconds the witness has to answer one checkpoint.
    #[serde(default = "default_upload_timeout")]
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    /// How long provision records are kept, in days (APPI Art. 29: 3 years, leap day included).
    pub provision_retention_days: u64,
    /// Lifetime of the download link a webhook delivery carries, in seconds.
    pub download_link_ttl_seconds: u64,
    /// Base URL recruiters reach kiroku at, for download links.
    pub public_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Seconds a recruiter's endpoint has to answer one delivery.
    pub timeout_seconds: u64,
    /// Attempts before a delivery is recorded as failed.
    pub max_attempts: u32,
    /// First retry delay in seconds; doubled after each failure, at most one hour.
    pub backoff_base_seconds: u64,
    /// Accept endpoints on loopback and private addresses (for tests and closed networks).
    pub allow_private_addresses: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhipConfig {
    /// The local addresses kiroku gathers ICE candidates on, and so receives media at; only
    /// these appear in answers. With only loopback addresses, remote candidates elsewhere are
    /// dropped, so nothing is sent off the machine. Empty: every interface.
    pub ice_addresses: Vec<IpAddr>,
    /// Lowest and highest UDP port for media (both set, or neither: any port).
    pub ice_port_min: Option<u16>,
    pub ice_port_max: Option<u16>,
    /// Origins whose pages may publish with WHIP from the browser (`https://app.example.com`);
    /// the endpoint answers their CORS preflights. Empty: no cross-origin publishing.
    pub allowed_origins: Vec<String>,
}

impl Default for WhipConfig {
    fn default() -> Self {
        WhipConfig {
            ice_addresses: vec![IpAddr::from([127, 0, 0, 1])],
            ice_port_min: None,
            ice_port_max: None,
            allowed_origins: Vec::new(),
        }
    }
}

/// What one client may hold of the HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Most connections served at once; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and to start its next request on a
    /// kept-alive connection.
    pub header_read_timeout_seconds: u64,
    /// Seconds a connection may go with no byte moving either way before it is closed.
    pub idle_timeout_seconds: u64,
    /// Seconds one write may wait for the client to read (a stalled download) before the
    /// connection is cut.
    pub write_timeout_seconds: u64,
    /// The socket send buffer of each connection, in bytes; unset: the kernel's autotuning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_buffer_bytes: Option<usize>,
    /// Seconds a node's claim on the captures it runs lasts without renewal (renewed at every
    /// segment and every third of it). A node that dies leaves its captures to be stopped by
    /// another node once this has passed, every acknowledged segment kept.
    #[serde(default = "default_capture_lease")]
    pub capture_lease_seconds: u64,
}

fn default_capture_lease() -> u64 {
    30
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 4096,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            write_timeout_seconds: 30,
            send_buffer_bytes: None,
            capture_lease_seconds: default_capture_lease(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentConfig {
    /// Target media duration of a segment, in seconds (cut at the first cluster past it).
    pub target_seconds: f64,
    /// Profiles marked `direct` re-cluster Matroska/WebM with kiroku's own remuxer instead of
    /// their GStreamer pipeline (far cheaper under load). False: every profile's pipeline.
    #[serde(default = "yes")]
    pub direct_remux: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Highest average stream bitrate accepted, in kbit/s of media time.
    pub max_stream_kbps: u64,
    /// Most bytes one interview may stream.
    pub max_bytes_per_interview: u64,
    /// Longest media duration of one interview, in seconds.
    pub max_seconds_per_interview: u64,
    /// Most interviews captured at once.
    pub max_concurrent_interviews: usize,
    /// Largest JSON request body, in bytes.
    pub max_json_body_bytes: usize,
    /// Most muxed bytes one segment may gather before it is cut: a stream whose media time
    /// does not advance never reaches a cut and would otherwise grow in memory without end.
    pub max_segment_bytes: u64,
    /// Most downloads of recordings one recipient may have in flight at once; more get 429.
    pub max_downloads_per_recipient: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// ISO 3166-1 alpha-2 country the region's data is stored in.
    pub country: String,
    /// Storage backend: `local` (files under the data dir) or `s3`.
    pub backend: String,
    /// Legacy: the region's master key file (relative to the data dir) that candidate keys
    /// were wrapped under before the keyring. Read only to move those keys into the keyring
    /// at start, then destroyed; never created any more.
    pub master_key_file: PathBuf,
    /// The bucket, for `backend = "s3"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
}

/// An S3 (or S3-compatible) bucket backing a region.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// The S3 region name, e.g. `ap-northeast-1`.
    pub region: String,
    /// Endpoint of an S3-compatible store; unset for AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need.
    #[serde(default)]
    pub path_style: bool,
    /// A named profile of the AWS config files; unset: the standard chain (environment,
    /// profile, instance role).
    #[serde(default)]
    pub profile: Option<String>,
    /// Static credentials, for stores outside AWS (prefer the environment:
    /// `KIROKU_REGIONS__<ID>__S3__SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Seconds one upload may take before the segment goes to the local spool instead.
    #[serde(default = "default_upload_timeout")]
    pub upload_timeout_seconds: u64,
    /// Most bytes the region's local spool may hold; past it, new interviews in the region
    /// are refused rather than risk losing segments.
    #[serde(default = "default_spool_limit")]
    pub spool_limit_bytes: u64,
}

fn default_upload_timeout() -> u64 {
    10
}

fn default_spool_limit() -> u64 {
    2 * 1024 * 1024 * 1024
}

impl Default for Config {
    /// The embedded default: one local region in Japan, data under `./data`.
    fn default() -> Config {
        let mut regions = BTreeMap::new();
        regions.insert(
            "jp".to_string(),
            RegionConfig {
                country: "JP".into(),
                backend: "local".into(),
                master_key_file: "keys/jp.master.key".into(),
                s3: None,
            },
        );
        Config {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: PathBuf::from("data"),
            pipelines_dir: None,
            default_region: "jp".into(),
            service_token: None,
            operator_token: None,
            ingest_token_ttl_seconds: 900,
            resume_grace_seconds: 60,
            segment: SegmentConfig {
                target_seconds: 4.0,
                direct_remux: true,
            },
            limits: Limits {
                max_stream_kbps: 8_000,
                max_bytes_per_interview: 4 * 1024 * 1024 * 1024,
                max_seconds_per_interview: 3 * 3600,
                max_concurrent_interviews: 32,
                max_json_body_bytes: 64 * 1024,
                // 8 Mbit/s (max_stream_kbps) over a 4 s segment, eight times over.
                max_segment_bytes: 32 * 1024 * 1024,
                max_downloads_per_recipient: 4,
            },
            server: ServerConfig::default(),
            regions,
            placement: BTreeMap::new(),
            controller: Controller {
                name: "kiroku operator (set [controller] in the config)".into(),
                contact: "privacy desk".into(),
                address: "-".into(),
                email: "privacy@example.invalid".into(),
                phone: "-".into(),
                jurisdiction: "JP".into(),
                time_zone: "+09:00".into(),
            },
            audit: AuditConfig {
                checkpoint_every_entries: 100,
                checkpoint_every_seconds: 600,
                publish_dir: None,
                s3: None,
                witness: None,
                public_key: None,
            },
            release: ReleaseConfig {
                provision_retention_days: 1096,
                download_link_ttl_seconds: 900,
                public_url: "http://127.0.0.1:8080".into(),
            },
            retention: RetentionConfig::default(),
            keys: KeysConfig::default(),
            catalog: None,
            webhooks: WebhookConfig {
                timeout_seconds: 10,
                max_attempts: 8,
                backoff_base_seconds: 2,
                allow_private_addresses: false,
            },
            whip: WhipConfig::default(),
            pages: PagesConfig::default(),
            analyzers: Vec::new(),
        }
    }
}

/// Where a region's objects are stored: `backend` and `[regions.<id>.s3]` parsed together.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// Files under the data dir.
    Local,
    /// An S3 (or S3-compatible) bucket, checked, with a local spool in front of it.
    S3(S3Config),
}

/// A region as parsed from its config: id, country and backend checked. Only
/// [`Config::region_plan`] makes one.
#[derive(Debug, Clone)]
pub struct Region {
    pub id: RegionId,
    pub country: CountryCode,
    pub master_key_file: PathBuf,
    backend: Backend,
}

impl Region {
    /// Where the region's objects are stored.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }
}

/// The region settings, parsed once: every region's id and country checked, and the default
/// region and every placement naming a configured region. What the rest of kiroku holds
/// instead of the config's strings.
#[derive(Debug, Clone)]
pub struct RegionPlan {
    /// The regions, in id order; never empty.
    pub regions: Vec<Region>,
    /// The region of new interviews whose home country has no placement.
    pub default_region: RegionId,
    placement: BTreeMap<CountryCode, RegionId>,
}

impl RegionPlan {
    /// The region the placement policy names for a home country, else the default region.
    pub fn preferred(&self, home: &CountryCode) -> &RegionId {
        self.placement.get(home).unwrap_or(&self.default_region)
    }
}

impl RegionConfig {
    /// The region's backend: `backend` and the `[regions.<id>.s3]` section must agree, and the
    /// section must be valid.
    fn parse_backend(&self, id: &str) -> Result<Backend, ConfigError> {
        let invalid = |field: String, why: &str| {
            Err(ConfigError::Invalid {
                field,
                why: why.into(),
            })
        };
        match (self.backend.as_str(), &self.s3) {
            ("local", None) => Ok(Backend::Local),
            ("local", Some(_)) => invalid(format!("regions.{id}.s3"), "only for backend = \"s3\""),
            ("s3", None) => invalid(
                format!("regions.{id}.s3.bucket"),
                "backend = \"s3\" needs [regions.<id>.s3] with a bucket",
            ),
            ("s3", Some(s3)) => {
                s3.validate(id)?;
                Ok(Backend::S3(s3.clone()))
            }
            _ => invalid(
                format!("regions.{id}.backend"),
                "unknown backend (this build knows: local, s3)",
            ),
        }
    }
}

impl S3Config {
    fn validate(&self, id: &str) -> Result<(), ConfigError> {
        self.validate_at(&format!("regions.{id}.s3"))
    }

    /// Checks the bucket's settings; errors name fields under `at` (`audit.s3`).
    fn validate_at(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |field: &str, why: &str| {
            Err(ConfigError::Invalid {
                field: format!("{at}.{field}"),
                why: why.into(),
            })
        };
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            && !b.starts_with(['-', '.'])
            && !b.ends_with(['-', '.']);
        if !bucket_ok {
            return invalid(
                "bucket",
                "3 to 63 of a-z, 0-9, '-' and '.' (S3 bucket naming)",
            );
        }
        if self.region.is_empty() {
            return invalid("region", "the S3 region name, e.g. ap-northeast-1");
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return invalid("endpoint", "an http:// or https:// URL");
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return invalid(
                "secret_access_key",
                "access_key_id and secret_access_key go together",
            );
        }
        if self.upload_timeout_seconds == 0 {
            return invalid("upload_timeout_seconds", "must be greater than 0");
        }
        if self.spool_limit_bytes == 0 && !at.starts_with("audit.") {
            return invalid("spool_limit_bytes", "must be greater than 0");
        }
        Ok(())
    }
}

impl Config {
    /// Loads defaults, then the file (if any), then `KIROKU_…` variables, and validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.display().to_string(),
                    why: "no such file".into(),
                });
            }
            // A file that names its own regions replaces the default region instead of adding to it.
            fig = Figment::from(Serialized::defaults(Config {
                regions: BTreeMap::new(),
                ..Config::default()
            }))
            .merge(Toml::file(path));
        }
        // `KIROKU_LOG` is the log filter, read by the command line, not a config value.
        let fig = fig.merge(Env::prefixed("KIROKU_").split("__").ignore(&["log"]));
        let cfg: Config = fig.extract().map_err(|e| ConfigError::Parse(explain(e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what types alone cannot, naming the field of each problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.region_plan()?;
        let invalid = |field: &str, why: &str| {
            Err(ConfigError::Invalid {
                field: field.into(),
                why: why.into(),
            })
        };
        if !(self.segment.target_seconds >= 1.0 && self.segment.target_seconds <= 60.0) {
            return invalid("segment.target_seconds", "must be between 1 and 60");
        }
        if let Some(url) = &self.catalog {
            if !crate::sqldb::Location::is_postgres_url(url) {
                return invalid(
                    "catalog",
                    "must be a postgres:// URL (unset: SQLite in the data dir)",
                );
            }
            passwordless("catalog", url)?;
            if self.keys.database.is_none() {
                return invalid(
                    "keys.database",
                    "must be set with a PostgreSQL catalog: the keyring's database, apart from \
                     the catalog's and backed up apart (so every node reads the wrapped keys)",
                );
            }
        }
        if let Some(url) = &self.keys.database {
            if !crate::sqldb::Location::is_postgres_url(url) {
                return invalid("keys.database", "must be a postgres:// URL");
            }
            passwordless("keys.database", url)?;
        }
        match (self.whip.ice_port_min, self.whip.ice_port_max) {
            (None, None) => {}
            (Some(min), Some(max)) if min > 0 && min <= max => {}
            _ => {
                return invalid(
                    "whip.ice_port_min",
                    "set both ice_port_min and ice_port_max, with 0 < min <= max",
                );
            }
        }
        if let Some(a) = &self.audit.s3 {
            a.as_store().validate_at("audit.s3")?;
            if a.retain_days == 0 {
                return invalid("audit.s3.retain_days", "must be greater than 0");
            }
        }
        if let Some(w) = &self.audit.witness {
            let ok = url::Url::parse(&w.url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return invalid("audit.witness.url", "an http:// or https:// URL");
            }
            if w.timeout_seconds == 0 {
                return invalid("audit.witness.timeout_seconds", "must be greater than 0");
            }
        }
        for origin in &self.whip.allowed_origins {
            let ok = url::Url::parse(origin).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && !origin.ends_with('/')
                    && u.query().is_none()
            });
            if !ok {
                return invalid(
                    "whip.allowed_origins",
                    "each is an origin, scheme://host[:port], with no path (https://app.example.com)",
                );
            }
        }
        let l = &self.limits;
        for (field, v) in [
            ("limits.max_stream_kbps", l.max_stream_kbps),
            ("limits.max_bytes_per_interview", l.max_bytes_per_interview),
            (
                "limits.max_seconds_per_interview",
                l.max_seconds_per_interview,
            ),
            (
                "limits.max_concurrent_interviews",
                l.max_concurrent_interviews as u64,
            ),
            ("limits.max_json_body_bytes", l.max_json_body_bytes as u64),
            ("limits.max_segment_bytes", l.max_segment_bytes),
            (
                "limits.max_downloads_per_recipient",
                l.max_downloads_per_recipient as u64,
            ),
            ("server.max_connections", self.server.max_connections as u64),
            (
                "server.header_read_timeout_seconds",
                self.server.header_read_timeout_seconds,
            ),
            (
                "server.idle_timeout_seconds",
                self.server.idle_timeout_seconds,
            ),
            (
                "server.write_timeout_seconds",
                self.server.write_timeout_seconds,
            ),
            ("ingest_token_ttl_seconds", self.ingest_token_ttl_seconds),
            ("pages.link_ttl_seconds", self.pages.link_ttl_seconds),
            (
                "server.capture_lease_seconds",
                self.server.capture_lease_seconds,
            ),
            ("pages.session_ttl_seconds", self.pages.session_ttl_seconds),
        ] {
            if v == 0 {
                return invalid(field, "must be greater than 0");
            }
        }
        for (field, t) in [
            ("service_token", &self.service_token),
            ("operator_token", &self.operator_token),
        ] {
            if t.as_ref().is_some_and(|t| t.len() < 24) {
                return invalid(field, "must be at least 24 characters");
            }
        }
        if let Some(p11) = &self.keys.pkcs11
            && p11.pin_file.is_none()
            && p11.pin.as_deref().is_none_or(str::is_empty)
        {
            return invalid(
                "keys.pkcs11.pin",
                "set pin_file, or the PIN in KIROKU_KEYS__PKCS11__PIN",
            );
        }
        if crate::util::parse_offset(&self.controller.time_zone).is_none() {
            return invalid("controller.time_zone", "an offset like +09:00 or Z");
        }
        for (field, v) in [
            (
                "audit.checkpoint_every_entries",
                self.audit.checkpoint_every_entries,
            ),
            (
                "release.provision_retention_days",
                self.release.provision_retention_days,
            ),
            (
                "release.download_link_ttl_seconds",
                self.release.download_link_ttl_seconds,
            ),
            ("webhooks.timeout_seconds", self.webhooks.timeout_seconds),
            ("webhooks.max_attempts", self.webhooks.max_attempts as u64),
        ] {
            if v == 0 {
                return invalid(field, "must be greater than 0");
            }
        }
        for (n, a) in self.analyzers.iter().enumerate() {
            let field = |f: &str| format!("analyzers[{n}].{f}");
            if let Some(name) = a
                .environment
                .iter()
                .find(|v| v.starts_with("KIROKU_") || v.starts_with("AWS_"))
            {
                return Err(ConfigError::Invalid {
                    field: field("environment"),
                    why: format!("{name}: kiroku's own secrets are never passed to an analyzer"),
                });
            }
            let slug = !a.name.is_empty()
                && a.name.len() <= 32
                && a.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && a.name != BUILTIN_ANALYZER
                && a.name != RENDITION_ANALYZER;
            if !slug {
                return invalid(
                    &field("name"),
                    "1 to 32 of a-z, 0-9 and '-', not a built-in name",
                );
            }
            match (&a.command, &a.url) {
                (Some(c), None) if !c.is_empty() => {}
                (None, Some(u)) if u.starts_with("http://") || u.starts_with("https://") => {}
                _ => {
                    return invalid(
                        &field("command"),
                        "exactly one of `command` (a non-empty list) or `url` (http:// or https://)",
                    );
                }
            }
            if a.timeout_seconds == 0 {
                return invalid(&field("timeout_seconds"), "must be greater than 0");
            }
        }
        if !(self.release.public_url.starts_with("http://")
            || self.release.public_url.starts_with("https://"))
        {
            return invalid("release.public_url", "an http:// or https:// URL");
        }
        Ok(())
    }

    /// Parses the region settings: ids, countries, the default region, the placement policy
    /// (whose keys match in any case, as environment variables arrive lowercased), then each
    /// region's backend and master key file. The one place a region's settings are read, so
    /// a config built in code is held to what a loaded one is.
    pub fn region_plan(&self) -> Result<RegionPlan, ConfigError> {
        let invalid = |field: String, why: &str| ConfigError::Invalid {
            field,
            why: why.into(),
        };
        if self.regions.is_empty() {
            return Err(invalid("regions".into(), "at least one region is needed"));
        }
        let mut named = Vec::with_capacity(self.regions.len());
        for (id, r) in &self.regions {
            named.push((
                RegionId::parse(id).map_err(|_| {
                    invalid(
                        format!("regions.{id}"),
                        "a region id is 1 to 32 of a-z, 0-9 and '-'",
                    )
                })?,
                CountryCode::parse(&r.country).map_err(|_| {
                    invalid(
                        format!("regions.{id}.country"),
                        "two uppercase letters, e.g. JP",
                    )
                })?,
            ));
        }
        let configured = |field: String, id: &str| {
            named
                .iter()
                .find(|(r, _)| r.as_str() == id)
                .map(|(r, _)| r.clone())
                .ok_or_else(|| invalid(field, "names no region in `regions`"))
        };
        let default_region = configured("default_region".into(), &self.default_region)?;
        let mut placement = BTreeMap::new();
        for (country, region) in &self.placement {
            let code = CountryCode::parse(&country.to_ascii_uppercase()).map_err(|_| {
                invalid(
                    format!("placement.{country}"),
                    "keys are country codes, e.g. JP",
                )
            })?;
            placement.insert(code, configured(format!("placement.{country}"), region)?);
        }
        let mut regions = Vec::with_capacity(named.len());
        for ((id, country), (key, r)) in named.into_iter().zip(&self.regions) {
            let backend = r.parse_backend(key)?;
            if r.master_key_file.as_os_str().is_empty() {
                return Err(invalid(
                    format!("regions.{key}.master_key_file"),
                    "must name a file",
                ));
            }
            regions.push(Region {
                id,
                country,
                master_key_file: r.master_key_file.clone(),
                backend,
            });
        }
        Ok(RegionPlan {
            regions,
            default_region,
            placement,
        })
    }
}

/// Figment's error, reworded to lead with the field's name.
fn explain(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let field = if e.path.is_empty() {
                "config".to_string()
            } else {
                e.path.join(".")
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            format!("`{field}`: {}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(Some(&p))
    }

    const MINIMAL: &str =
        "[regions.jp]\ncountry = \"JP\"\nbackend = \"local\"\nmaster_key_file = \"keys/jp.key\"\n";

    #[test]
    fn the_example_config_in_config_folder_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kiroku.example.toml");
        Config::load(Some(&p)).unwrap();
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let err = load_text(&format!("listne = \"1.2.3.4:5\"\n{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn a_bad_country_names_its_field() {
        let err = load_text(&MINIMAL.replace("\"JP\"", "\"Japan\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("regions.jp.country"), "{err}");
    }

    #[test]
    fn a_postgres_catalog_needs_the_keyrings_database_and_no_password_in_either_url() {
        let refusal = |text: String| load_text(&text).unwrap_err().to_string();
        let catalog = "catalog = \"postgres://kiroku@db:5432/kiroku\"\n";
        let err = refusal(format!("{catalog}{MINIMAL}"));
        assert!(err.contains("keys.database"), "{err}");
        let keys = "[keys]\ndatabase = \"postgres://kiroku@keys:5432/keyring\"\n";
        let cfg = load_text(&format!("{catalog}{MINIMAL}{keys}")).unwrap();
        assert!(cfg.keys.database.is_some());
        for (text, field, says) in [
            (
                format!("catalog = \"postgres://kiroku:hunter2@db/kiroku\"\n{MINIMAL}{keys}"),
                "catalog",
                "PGPASSWORD",
            ),
            (
                format!(
                    "{catalog}{MINIMAL}[keys]\ndatabase = \"postgres://kiroku:hunter2@keys/keyring\"\n"
                ),
                "keys.database",
                "PGPASSWORD",
            ),
            (
                format!("catalog = \"mysql://db/kiroku\"\n{MINIMAL}{keys}"),
                "catalog",
                "postgres://",
            ),
        ] {
            let err = refusal(text);
            assert!(err.contains(field) && err.contains(says), "{err}");
        }
    }

    #[test]
    fn an_unknown_backend_names_its_region() {
        let err = load_text(&MINIMAL.replace("\"local\"", "\"ftp\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("regions.jp.backend"), "{err}");
    }

    #[test]
    fn an_s3_region_without_a_bucket_names_the_field() {
        let err = load_text(&MINIMAL.replace("\"local\"", "\"s3\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("regions.jp.s3.bucket"), "{err}");
        let err = load_text(&format!(
            "{}\n[regions.jp.s3]\nbucket = \"Bad_Bucket\"\nregion = \"x\"\n",
            MINIMAL.replace("\"local\"", "\"s3\"")
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("regions.jp.s3.bucket"), "{err}");
    }

    /// A config built in code goes through the same parse as a loaded one: `backend = "s3"`
    /// without its section is refused, not taken for a local region.
    #[test]
    fn the_plan_refuses_an_s3_backend_without_its_section_naming_the_field() {
        let mut cfg = Config::default();
        let jp = cfg.regions.get_mut("jp").unwrap();
        jp.backend = "s3".into();
        jp.s3 = None;
        let err = cfg.region_plan().unwrap_err().to_string();
        assert!(err.contains("regions.jp.s3.bucket"), "{err}");
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("regions.jp.s3.bucket"), "{err}");

        let jp = cfg.regions.get_mut("jp").unwrap();
        jp.backend = "local".into();
        jp.s3 = Some(S3Config {
            bucket: "kiroku-jp".into(),
            region: "ap-northeast-1".into(),
            endpoint: None,
            path_style: false,
            profile: None,
            access_key_id: None,
            secret_access_key: None,
            upload_timeout_seconds: 10,
            spool_limit_bytes: 1,
        });
        let err = cfg.region_plan().unwrap_err().to_string();
        assert!(err.contains("regions.jp.s3"), "{err}");
    }

    #[test]
    fn the_plan_carries_each_regions_backend() {
        let text = format!(
            "{MINIMAL}[regions.us]\ncountry = \"US\"\nbackend = \"s3\"\nmaster_key_file = \"keys/us.key\"\n\
             [regions.us.s3]\nbucket = \"kiroku-us\"\nregion = \"us-east-1\"\n"
        );
        let plan = load_text(&text).unwrap().region_plan().unwrap();
        let by_id = |id: &str| plan.regions.iter().find(|r| r.id.as_str() == id).unwrap();
        assert_eq!(by_id("jp").backend(), &Backend::Local);
        match by_id("us").backend() {
            Backend::S3(s3) => assert_eq!(s3.bucket, "kiroku-us"),
            other => panic!("expected an S3 backend, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_master_key_file_names_its_field() {
        let mut cfg = Config::default();
        cfg.regions.get_mut("jp").unwrap().master_key_file = PathBuf::new();
        let err = cfg.region_plan().unwrap_err().to_string();
        assert!(err.contains("regions.jp.master_key_file"), "{err}");
    }

    #[test]
    fn placement_must_name_known_regions() {
        let err = load_text(&format!("{MINIMAL}[placement]\nDE = \"de\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("placement.DE"), "{err}");
    }

    #[test]
    fn the_regions_example_with_the_policys_storage_countries_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/regions.example.toml");
        let cfg = Config::load(Some(&p)).unwrap();
        let countries: Vec<String> = cfg
            .region_plan()
            .unwrap()
            .regions
            .iter()
            .map(|r| r.country.to_string())
            .collect();
        for c in ["JP", "US", "KR", "SG", "DE", "CA"] {
            assert!(countries.contains(&c.to_string()), "{c} missing");
        }
    }

    #[test]
    fn an_analyzer_may_not_take_a_reserved_name() {
        for name in [BUILTIN_ANALYZER, RENDITION_ANALYZER] {
            let err = load_text(&format!(
                "[[analyzers]]\nname = \"{name}\"\ncommand = [\"true\"]\n{MINIMAL}"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("analyzers[0].name"), "{name}: {err}");
        }
        load_text(&format!(
            "[[analyzers]]\nname = \"pitch\"\ncommand = [\"true\"]\n{MINIMAL}"
        ))
        .unwrap();
    }

    #[test]
    fn a_default_region_or_placement_outside_regions_names_its_field() {
        let err = load_text(&format!("default_region = \"de\"\n{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("default_region"), "{err}");
        let plan = load_text(&format!("[placement]\nus = \"jp\"\n{MINIMAL}"))
            .unwrap()
            .region_plan()
            .unwrap();
        let us = CountryCode::parse("US").unwrap();
        assert_eq!(plan.preferred(&us).as_str(), "jp");
        assert_eq!(plan.default_region.as_str(), "jp");
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let err = load_text(&format!("[segment]\ntarget_seconds = \"four\"\n{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment.target_seconds"), "{err}");
    }
}
