//! Wiring: one [`Kiroku`] holds the config, the loaded pipelines, the catalog and each
//! region's store and master key. The command line and the HTTP edge both work through it, so
//! `kiroku ingest FILE` runs the very same path as a streamed interview.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::audit::{Audit, AuditError, CheckpointPolicy};
use crate::catalog::{Catalog, CatalogError, InterviewRow};
use crate::config::{Backend, Config, Region, RegionPlan};
use crate::consent::{Clerk, Ledger};
use crate::events::{Announcer, Background};
use crate::ids::{CandidateId, CountryCode, InterviewId, RegionId};
use crate::metrics::{Held, METRICS};
use crate::seal::{CandidateKey, KeyError, MasterKey};
use crate::segment::{PipelineSource, Profiles, SegmentError, WhipDescription};
use crate::signing::{OperatorKey, SigningError};
use crate::store::{LocalStore, S3Store, Spool, Store, StoreError};

/// Why kiroku could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Pipelines(#[from] SegmentError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Anchor(#[from] crate::anchor::AnchorError),
    #[error(transparent)]
    Keyring(#[from] crate::keyring::KeyringError),
    #[error(
        "region {region}: the catalog holds candidate keys wrapped under {path}, which is gone: \
         restore it so they can be moved into the keyring"
    )]
    LegacyKeyMissing { region: String, path: String },
    #[error("secret file {path}: {source}")]
    Secret {
        path: String,
        source: std::io::Error,
    },
}

/// Why a candidate key could not be looked up (or made): the catalog or the keyring failed,
/// or the wrapped key does not open under its epoch key. None says anything about a recording.
#[derive(Debug, thiserror::Error)]
pub enum KeyLookupError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Keyring(#[from] crate::keyring::KeyringError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// One storage region at run time.
pub struct RegionRuntime {
    pub region: Region,
    pub store: Store,
}

/// A bearer secret and, when kiroku generated it, the file it lives in.
pub struct Secret {
    pub value: String,
    pub file: Option<PathBuf>,
}

pub struct Kiroku {
    pub config: Config,
    pub profiles: Profiles,
    /// The WHIP ingest description (`pipelines/webrtc/whip.toml`).
    pub whip: WhipDescription,
    pub catalog: Catalog,
    pub regions: BTreeMap<RegionId, RegionRuntime>,
    /// The default region and the placement policy, parsed from the config at open; every
    /// region it names is in `regions`.
    plan: RegionPlan,
    pub service_token: Secret,
    pub operator_token: Secret,
    /// The operator's Ed25519 key: signs consent receipts and audit checkpoints.
    pub signer: Arc<OperatorKey>,
    pub audit: Audit,
    /// Publishes audit checkpoints outside the data dir (`[audit.s3]`, `[audit.witness]`).
    pub anchor: Option<Arc<crate::anchor::Anchor>>,
    /// Candidates' wrapped keys and the epoch keys, outside the data dir.
    pub keyring: crate::keyring::Keyring,
    /// Woken when a push delivery is queued.
    pub deliveries_wake: tokio::sync::Notify,
    /// What lower modules announce to those above them (see [`crate::events`]).
    pub events: Announcer,
    /// Work listeners started that a command-line process waits for before it exits.
    pub background: Background,
    /// One permit per interview that may be captured at once (`limits.max_concurrent_interviews`).
    capture_slots: Arc<tokio::sync::Semaphore>,
    /// This process's name in capture leases and claims (see [`Kiroku::node`]).
    node: std::sync::OnceLock<String>,
    host: String,
    /// The interviews this process is capturing, whose leases it renews.
    live_here: std::sync::Mutex<std::collections::BTreeSet<InterviewId>>,
    /// Set once, when `serve` is asked to stop; the long-running loops watch it.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The S3 spool uploaders' threads, so a shutdown can wait for them.
    uploaders: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Kiroku {
    /// Opens the data dir: catalog (migrated), master keys (created on first run), regions'
    /// stores, secrets (generated on first run when the config names none), pipelines.
    pub fn open(config: Config) -> Result<Arc<Kiroku>, StartError> {
        // Everything kiroku creates is its own: the catalog (webhook secrets, external
        // references), the audit log, spools, exports. Files 0600, folders 0700.
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let data = config.data_dir.clone();
        std::fs::create_dir_all(&data)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|source| StartError::Secret {
                path: data.display().to_string(),
                source,
            })?;
        let plan = config.region_plan()?;
        let source = PipelineSource::new(config.pipelines_dir.as_deref());
        let profiles = Profiles::load(&source)?;
        let whip = WhipDescription::load(&source)?;
        if let Some(missing) = whip.profiles().find(|p| profiles.by_name(p).is_none()) {
            return Err(SegmentError::Profile {
                file: "webrtc/whip.toml".into(),
                why: format!("names the ingest profile `{missing}`, which is not there"),
            }
            .into());
        }
        let catalog = Catalog::open_at(&match &config.catalog {
            Some(url) => crate::sqldb::Location::Postgres(url.clone()),
            None => crate::sqldb::Location::Sqlite(data.join("catalog.db")),
        })?;
        let mut regions = BTreeMap::new();
        for region in plan.regions.clone() {
            let store = match region.backend() {
                Backend::Local => Store::Local(LocalStore::new(
                    &data
                        .join("regions")
                        .join(region.id.as_str())
                        .join("objects"),
                )),
                Backend::S3(s3) => {
                    let spool =
                        Spool::open(&data.join("spool").join(region.id.as_str()).join("objects"))?;
                    Store::S3(Arc::new(S3Store::open(region.id.as_str(), s3, spool)?))
                }
            };
            regions.insert(region.id.clone(), RegionRuntime { region, store });
        }
        let keyring = crate::keyring::Keyring::open_in(
            &keys_dir(&config)?,
            config.keys.database.as_deref(),
            config.keys.pkcs11.as_ref(),
            &regions.keys().cloned().collect::<Vec<_>>(),
        )?;
        move_legacy_keys(&catalog, &keyring, &data, &plan.regions)?;
        let service_token = secret(&config.service_token, &data.join("secrets/service.token"))?;
        let operator_token = secret(&config.operator_token, &data.join("secrets/operator.token"))?;
        let signer = Arc::new(OperatorKey::load_or_create(
            &data.join("secrets/operator-signing.pk8"),
        )?);
        if let Some(pinned) = &config.audit.public_key
            && !pinned.trim().eq_ignore_ascii_case(&signer.public_key_hex())
        {
            return Err(StartError::Signing(SigningError::File {
                path: data
                    .join("secrets/operator-signing.pk8")
                    .display()
                    .to_string(),
                why: "is not the key pinned in [audit] public_key: someone replaced it, or \
                      this is another operator's data dir"
                    .into(),
            }));
        }
        let policy = CheckpointPolicy {
            every_entries: config.audit.checkpoint_every_entries,
            every_seconds: config.audit.checkpoint_every_seconds,
            publish_dir: config.audit.publish_dir.clone(),
            sinks: Vec::new(),
        };
        // With the catalog on PostgreSQL, the audit log is there too: one chain for every node.
        let mut audit = match &config.catalog {
            Some(url) => Audit::open_shared(&data.join("audit"), url, signer.clone(), policy)?,
            None => Audit::open(&data.join("audit"), signer.clone(), policy)?,
        };
        let anchor = crate::anchor::Anchor::start(
            &config.audit,
            &data.join("audit"),
            &audit.checkpoints_text()?,
        )?;
        audit.add_sinks(
            anchor
                .iter()
                .map(|a| a.clone() as Arc<dyn crate::audit::CheckpointSink>),
        );
        let slots = config
            .limits
            .max_concurrent_interviews
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Ok(Arc::new(Kiroku {
            capture_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            node: std::sync::OnceLock::new(),
            host,
            live_here: Default::default(),
            signer,
            audit,
            anchor,
            keyring,
            deliveries_wake: tokio::sync::Notify::new(),
            events: Announcer::default(),
            background: Background::default(),
            config,
            profiles,
            whip,
            catalog,
            regions,
            plan,
            service_token,
            operator_token,
            stopping: tokio::sync::watch::Sender::new(false),
            uploaders: std::sync::Mutex::new(Vec::new()),
        }))
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The consent ledger's read side.
    pub fn ledger(&self) -> Ledger<'_> {
        Ledger::new(&self.catalog)
    }

    /// The consent ledger's write side: audited, receipts signed, changes announced.
    pub fn clerk(&self) -> Clerk<'_> {
        Clerk {
            catalog: &self.catalog,
            audit: &self.audit,
            signer: &self.signer,
            controller: &self.config.controller,
            announcer: &self.events,
        }
    }

    /// Starts each S3 region's spool uploader (in `kiroku serve`; a command-line process
    /// leaves what it spooled for the server to drain).
    pub fn start_uploaders(&self) {
        let mut running = self.uploaders.lock().unwrap_or_else(|p| p.into_inner());
        for r in self.regions.values() {
            if let Store::S3(s) = &r.store {
                running.extend(s.spawn_uploader());
            }
        }
    }

    /// Stops the spool uploaders after the upload in flight (what is spooled stays spooled)
    /// and waits up to `within` for their threads; false if one was still busy then.
    pub fn stop_uploaders(&self, within: std::time::Duration) -> bool {
        for r in self.regions.values() {
            if let Store::S3(s) = &r.store {
                s.stop_uploader();
            }
        }
        let deadline = std::time::Instant::now() + within;
        let running =
            std::mem::take(&mut *self.uploaders.lock().unwrap_or_else(|p| p.into_inner()));
        while running.iter().any(|t| !t.is_finished()) {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
    }

    /// Asks every long-running part of `serve` to stop: streams end at their next boundary,
    /// the delivery loop after the attempt in flight. Idempotent.
    pub fn shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether [`Kiroku::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once [`Kiroku::shutdown`] was called (at once if it already was).
    pub async fn stopped(&self) {
        let mut seen = self.stopping.subscribe();
        // The sender lives as long as `self`, so this ends only by the flag being set.
        let _ = seen.wait_for(|stopping| *stopping).await;
    }

    /// Tells the delivery loop that something may be due.
    pub fn wake_deliveries(&self) {
        self.deliveries_wake.notify_one();
    }

    pub fn region(&self, id: &RegionId) -> Option<&RegionRuntime> {
        self.regions.get(id)
    }

    pub fn default_region(&self) -> &RegionRuntime {
        // `open` made a runtime for every region of the plan, the default included.
        &self.regions[&self.plan.default_region]
    }

    /// The region the placement policy names for a home country, else the default region.
    pub fn preferred_region(&self, home: &CountryCode) -> &RegionRuntime {
        // `open` made a runtime for every region of the plan, each placement's included.
        &self.regions[self.plan.preferred(home)]
    }

    /// The candidate's newest key in a region, created (version 1) on first use.
    pub fn candidate_key(
        &self,
        c: &CandidateId,
        region: &RegionRuntime,
    ) -> Result<CandidateKey, KeyLookupError> {
        let id = &region.region.id;
        if let Some(key) = self.keyring.newest(c, id)? {
            return Ok(key);
        }
        let key = CandidateKey::generate(1)?;
        if self.keyring.insert(c, id, &key)? {
            Ok(key)
        } else {
            // Another capture created it first; use theirs.
            self.candidate_key(c, region)
        }
    }

    /// The region an interview lives in and the candidate key its objects are sealed under;
    /// `None` when either is gone (a region dropped from the config, or a key erased).
    pub fn interview_key(
        &self,
        row: &InterviewRow,
    ) -> Result<Option<(&RegionRuntime, CandidateKey)>, KeyLookupError> {
        let Some(region) = self.region(&row.region) else {
            return Ok(None);
        };
        Ok(self
            .candidate_key_version(&row.candidate, region, row.key_version)?
            .map(|k| (region, k)))
    }

    /// A specific key version, for opening what was sealed under it.
    fn candidate_key_version(
        &self,
        c: &CandidateId,
        region: &RegionRuntime,
        v: u32,
    ) -> Result<Option<CandidateKey>, KeyLookupError> {
        Ok(self.keyring.version(c, &region.region.id, v)?)
    }

    /// Takes one of the concurrent-capture slots; `None` when all are taken.
    /// Never waits: a capture that finds every slot taken is refused, not queued.
    pub fn take_capture_slot(self: &Arc<Self>) -> Option<CaptureSlot> {
        let slot = self.capture_slots.clone().try_acquire_owned().ok();
        if slot.is_none() {
            METRICS.refused.with_label_values(&["capture_slots"]).inc();
        }
        slot.map(|permit| CaptureSlot {
            _permit: permit,
            _live: Held::new(&METRICS.live_captures),
        })
    }
}

impl Kiroku {
    /// This process's name in capture leases and claims. `kiroku serve` is named by its host
    /// and the address it serves ([`Kiroku::serve_as_address`]): one process at a time holds
    /// an address, so a server restarted on it knows the captures under that name are dead.
    /// Any other process (a command-line ingest) has a name of its own, `host/pid-random`,
    /// that no restart claims.
    pub fn node(&self) -> &str {
        self.node.get_or_init(|| {
            let tag: [u8; 4] = crate::util::secret::random_bytes().unwrap_or([0; 4]);
            format!("{}/{}-{}", self.host, std::process::id(), hex::encode(tag))
        })
    }

    /// Names this process by its host and serving address; called by `serve` before any
    /// capture or claim.
    pub fn serve_as_address(&self) {
        let named = format!("{}@{}", self.host, self.config.listen);
        if self.node.set(named).is_err() {
            tracing::warn!(
                node = self.node(),
                "this process was named before it served"
            );
        }
    }

    /// Until when a lease taken or renewed now holds.
    pub fn lease_until(&self) -> i64 {
        crate::util::now_unix() + self.config.server.capture_lease_seconds as i64
    }

    /// Notes that this process captures `id` (its lease is renewed while the hold lives).
    pub fn hold_lease(self: &Arc<Self>, id: InterviewId) -> LeaseHold {
        self.live_here
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        LeaseHold {
            app: self.clone(),
            id,
        }
    }

    /// Whether this process is capturing `id`.
    pub fn holds_lease(&self, id: &InterviewId) -> bool {
        self.live_here
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Renews the leases of every capture this process runs.
    pub fn renew_leases(&self) -> Result<(), crate::catalog::CatalogError> {
        let ids: Vec<InterviewId> = self
            .live_here
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        self.catalog
            .renew_leases(&ids, self.node(), self.lease_until())
    }
}

/// This process's claim on one capture, given up on drop.
pub struct LeaseHold {
    app: Arc<Kiroku>,
    id: InterviewId,
}

impl Drop for LeaseHold {
    fn drop(&mut self) {
        self.app
            .live_here
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// A held concurrent-capture slot, given back on drop; counted in `live_captures` meanwhile.
pub struct CaptureSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _live: Held,
}

fn secret(configured: &Option<String>, file: &Path) -> Result<Secret, StartError> {
    if let Some(v) = configured {
        return Ok(Secret {
            value: v.clone(),
            file: None,
        });
    }
    let err = |source| StartError::Secret {
        path: file.display().to_string(),
        source,
    };
    if let Ok(v) = std::fs::read_to_string(file) {
        crate::util::secret::refuse_if_readable_by_others(file).map_err(err)?;
        return Ok(Secret {
            value: v.trim().to_string(),
            file: Some(file.to_path_buf()),
        });
    }
    let value = crate::util::secret::random_hex(32).map_err(|e| err(std::io::Error::other(e)))?;
    std::fs::create_dir_all(file.parent().expect("secret file has a folder")).map_err(err)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(err)?;
    f.write_all(value.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(err)?;
    Ok(Secret {
        value,
        file: Some(file.to_path_buf()),
    })
}

/// The keys folder: `[keys] dir`, else the data dir's sibling `<data_dir>.keys`.
fn keys_dir(config: &Config) -> Result<PathBuf, StartError> {
    if let Some(d) = &config.keys.dir {
        return Ok(d.clone());
    }
    let data = std::fs::canonicalize(&config.data_dir).map_err(|source| StartError::Secret {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let name = data
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "kiroku".into());
    Ok(data.with_file_name(format!("{name}.keys")))
}

/// Moves candidate keys wrapped under a region's legacy master key (in the catalog, from
/// before the keyring) into the keyring, then destroys that key file: afterwards the data dir
/// holds no key material. A region whose legacy rows' key file is gone refuses to start.
fn move_legacy_keys(
    catalog: &Catalog,
    keyring: &crate::keyring::Keyring,
    data: &Path,
    regions: &[Region],
) -> Result<(), StartError> {
    let legacy = catalog.legacy_candidate_keys()?;
    for region in regions {
        let path = data.join(&region.master_key_file);
        let rows: Vec<_> = legacy.iter().filter(|r| r.1 == region.id).collect();
        if !rows.is_empty() {
            if !path.exists() {
                return Err(StartError::LegacyKeyMissing {
                    region: region.id.to_string(),
                    path: path.display().to_string(),
                });
            }
            let master = MasterKey::load_or_create(&path)?;
            let keys = rows
                .iter()
                .map(|(c, r, v, wrapped)| Ok((*c, master.unwrap(wrapped, c, *v, r)?)))
                .collect::<Result<Vec<_>, KeyError>>()?;
            keyring.insert_batch(&region.id, &keys)?;
            catalog.delete_legacy_candidate_keys(&region.id)?;
            tracing::info!(region = %region.id, keys = rows.len(), "candidate keys moved into the keyring");
        }
        if path.exists() {
            crate::util::shred_file(&path).map_err(|source| StartError::Secret {
                path: path.display().to_string(),
                source,
            })?;
        }
    }
    Ok(())
}
