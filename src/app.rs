//! Wiring: one [`Kiroku`] holds the config, the loaded pipelines, the catalog and each
//! region's store and master key. The command line and the HTTP edge both work through it, so
//! `kiroku ingest FILE` runs the very same path as a streamed interview.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ring::rand::{SecureRandom, SystemRandom};

use crate::audit::{Audit, AuditError, CheckpointPolicy};
use crate::catalog::{Catalog, CatalogError, InterviewRow};
use crate::config::{Config, Region};
use crate::ids::{CandidateId, RegionId};
use crate::seal::{CandidateKey, KeyError, MasterKey};
use crate::segment::{Profiles, SegmentError};
use crate::signing::{OperatorKey, SigningError};
use crate::store::{LocalStore, S3Store, Spool, Store, StoreError};

/// Why kiroku could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
    #[error("secret file {path}: {source}")]
    Secret {
        path: String,
        source: std::io::Error,
    },
}

/// One storage region at run time.
pub struct RegionRuntime {
    pub region: Region,
    pub store: Store,
    master: MasterKey,
}

/// A bearer secret and, when kiroku generated it, the file it lives in.
pub struct Secret {
    pub value: String,
    pub file: Option<PathBuf>,
}

pub struct Kiroku {
    pub config: Config,
    pub profiles: Profiles,
    pub catalog: Catalog,
    pub regions: BTreeMap<RegionId, RegionRuntime>,
    pub service_token: Secret,
    pub operator_token: Secret,
    /// The operator's Ed25519 key: signs consent receipts and audit checkpoints.
    pub signer: Arc<OperatorKey>,
    pub audit: Audit,
    /// Woken when a push delivery is queued.
    pub deliveries_wake: tokio::sync::Notify,
    active_captures: AtomicUsize,
    /// Set once, when `serve` is asked to stop; the long-running loops watch it.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The S3 spool uploaders' threads, so a shutdown can wait for them.
    uploaders: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Kiroku {
    /// Opens the data dir: catalog (migrated), master keys (created on first run), regions'
    /// stores, secrets (generated on first run when the config names none), pipelines.
    pub fn open(config: Config) -> Result<Arc<Kiroku>, StartError> {
        let data = config.data_dir.clone();
        std::fs::create_dir_all(&data).map_err(|source| StartError::Secret {
            path: data.display().to_string(),
            source,
        })?;
        let profiles = Profiles::load(&config.pipelines_dir)?;
        let catalog = Catalog::open(&data.join("catalog.db"))?;
        let mut regions = BTreeMap::new();
        for region in config.regions() {
            let master = MasterKey::load_or_create(&data.join(&region.master_key_file))?;
            let store = match &region.s3 {
                None => Store::Local(LocalStore::new(
                    &data
                        .join("regions")
                        .join(region.id.as_str())
                        .join("objects"),
                )),
                Some(s3) => {
                    let spool =
                        Spool::open(&data.join("spool").join(region.id.as_str()).join("objects"))?;
                    Store::S3(Arc::new(S3Store::open(region.id.as_str(), s3, spool)?))
                }
            };
            regions.insert(
                region.id.clone(),
                RegionRuntime {
                    region,
                    store,
                    master,
                },
            );
        }
        let service_token = secret(&config.service_token, &data.join("secrets/service.token"))?;
        let operator_token = secret(&config.operator_token, &data.join("secrets/operator.token"))?;
        let signer = Arc::new(OperatorKey::load_or_create(
            &data.join("secrets/operator-signing.pk8"),
        )?);
        let audit = Audit::open(
            &data.join("audit"),
            signer.clone(),
            CheckpointPolicy {
                every_entries: config.audit.checkpoint_every_entries,
                every_seconds: config.audit.checkpoint_every_seconds,
            },
        )?;
        Ok(Arc::new(Kiroku {
            signer,
            audit,
            deliveries_wake: tokio::sync::Notify::new(),
            config,
            profiles,
            catalog,
            regions,
            service_token,
            operator_token,
            active_captures: AtomicUsize::new(0),
            stopping: tokio::sync::watch::Sender::new(false),
            uploaders: std::sync::Mutex::new(Vec::new()),
        }))
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Registers a candidate. The external reference stays in the catalog; the audit log and
    /// traces get the pseudonymous id only.
    pub fn register_candidate(
        &self,
        external_ref: &str,
        home: &crate::ids::CountryCode,
        actor: &crate::audit::Actor,
    ) -> Result<CandidateId, crate::consent::ConsentError> {
        if external_ref.is_empty()
            || external_ref.len() > 200
            || external_ref.chars().any(|c| c.is_control())
        {
            return Err(crate::consent::ConsentError::Invalid {
                field: "external_ref",
                why: "1 to 200 printable characters",
            });
        }
        let id = self.catalog.add_candidate(external_ref, home)?;
        self.audit.record_or_warn(
            "candidate.registered",
            actor,
            serde_json::json!({"candidate": id.to_string(), "home_country": home.as_str()}),
        );
        Ok(id)
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
        let id = RegionId::parse(&self.config.default_region).expect("validated");
        &self.regions[&id]
    }

    /// The candidate's newest key in a region, created (version 1) on first use.
    pub fn candidate_key(
        &self,
        c: &CandidateId,
        region: &RegionRuntime,
    ) -> Result<CandidateKey, StartError> {
        let id = &region.region.id;
        if let Some((v, wrapped)) = self.catalog.candidate_key(c, id)? {
            return Ok(region.master.unwrap(&wrapped, c, v, id)?);
        }
        let key = CandidateKey::generate(1)?;
        let wrapped = region.master.wrap(&key, c, id)?;
        if self.catalog.insert_candidate_key(c, id, 1, &wrapped)? {
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
    ) -> Result<Option<(&RegionRuntime, CandidateKey)>, StartError> {
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
    ) -> Result<Option<CandidateKey>, StartError> {
        let id = &region.region.id;
        match self.catalog.candidate_key_version(c, id, v)? {
            Some(wrapped) => Ok(Some(region.master.unwrap(&wrapped, c, v, id)?)),
            None => Ok(None),
        }
    }

    /// Takes one of the concurrent-capture slots; `None` when all are taken.
    pub fn take_capture_slot(self: &Arc<Self>) -> Option<CaptureSlot> {
        let max = self.config.limits.max_concurrent_interviews;
        let mut now = self.active_captures.load(Ordering::SeqCst);
        loop {
            if now >= max {
                return None;
            }
            match self.active_captures.compare_exchange(
                now,
                now + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(CaptureSlot { app: self.clone() }),
                Err(seen) => now = seen,
            }
        }
    }
}

/// A held concurrent-capture slot, given back on drop.
pub struct CaptureSlot {
    app: Arc<Kiroku>,
}

impl Drop for CaptureSlot {
    fn drop(&mut self) {
        self.app.active_captures.fetch_sub(1, Ordering::SeqCst);
    }
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
        return Ok(Secret {
            value: v.trim().to_string(),
            file: Some(file.to_path_buf()),
        });
    }
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| err(std::io::Error::other("random generator failed")))?;
    let value = hex::encode(raw);
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
