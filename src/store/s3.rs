//! An S3 region: sealed objects in a bucket (AWS or an S3-compatible store such as Garage),
//! with the same keys as the local store. Tags travel as user metadata (`x-amz-meta-*`) and,
//! where the store implements it, as S3 object tags too; which one is in use is found out at
//! start and reported by `kiroku regions check`.
//!
//! Durability: [`S3Store::put`] returns once the object is either in the bucket (the store
//! verified the SHA-256 kiroku sent with it) or sealed and fsynced in the region's local
//! [`Spool`]. A background uploader drains the spool with backoff; on 401/403 it does not retry
//! blindly but marks the region as failing and waits for the operator. While the bucket is
//! unreachable, writes go straight to the spool instead of waiting out a timeout each.
//!
//! The SDK is async and kiroku's store callers are blocking threads (capture, release), so the
//! store owns a small runtime and waits for each call on a channel: that works from any thread,
//! inside a tokio runtime or not.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;

use super::spool::Spool;
use super::{ObjectKey, StoreError};
use crate::config::S3Config;
use crate::seal::SealedObject;

/// After a failed upload, writes skip S3 for this long and go to the spool.
const DOWN_FOR: Duration = Duration::from_secs(5);
/// After 401/403, the uploader waits this long before asking again.
const AUTH_PAUSE: Duration = Duration::from_secs(60);

/// Whether the store implements S3 object tagging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagSupport {
    Unknown = 0,
    Tagging = 1,
    MetadataOnly = 2,
}

/// How a region's bucket is doing, as the uploader and writers last saw it.
#[derive(Default)]
struct Health {
    down_until: Option<Instant>,
    /// Set on 401/403: the region is failing until the operator fixes its credentials.
    failing: Option<String>,
    last_error: Option<String>,
}

pub struct S3Store {
    region: String,
    bucket: String,
    client: aws_sdk_s3::Client,
    rt: Option<tokio::runtime::Runtime>,
    timeout: Duration,
    spool: Arc<Spool>,
    spool_limit: u64,
    health: Mutex<Health>,
    tagging: AtomicU8,
    /// Wakes the uploader when something is spooled.
    wake: Arc<(Mutex<bool>, Condvar)>,
    /// Set by [`S3Store::stop_uploader`]: no upload starts after it.
    stopping: AtomicBool,
}

/// Why one S3 call failed.
#[derive(Debug)]
enum CallError {
    Auth(String),
    Unavailable(String),
    NotFound,
    Other(String),
}

impl CallError {
    fn text(&self) -> String {
        match self {
            CallError::Auth(s) | CallError::Unavailable(s) | CallError::Other(s) => s.clone(),
            CallError::NotFound => "not found".into(),
        }
    }
}

fn classify<E>(e: SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let text = DisplayErrorContext(&e).to_string();
    match (&e, status) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
            CallError::Unavailable(text)
        }
        (_, Some(401 | 403)) => CallError::Auth(text),
        (_, Some(404)) => CallError::NotFound,
        (_, Some(s)) if s >= 500 => CallError::Unavailable(text),
        _ => CallError::Other(text),
    }
}

impl S3Store {
    /// Builds the client (credentials from the config or the standard AWS chain) and opens the
    /// region's spool. Does not reach the bucket: a region may be down when kiroku starts.
    pub fn open(region: &str, cfg: &S3Config, spool: Spool) -> Result<S3Store, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("s3-{region}"))
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("region {region}: {e}")))?;
        let c = cfg.clone();
        let handle = rt.handle().clone();
        // On a thread of its own: `block_on` must not run on a thread that drives a runtime.
        let build = move || {
            handle.block_on(async move {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(c.region.clone()));
                if let Some(p) = &c.profile {
                    loader = loader.profile_name(p);
                }
                if let (Some(a), Some(s)) = (&c.access_key_id, &c.secret_access_key) {
                    loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                        a.clone(),
                        s.clone(),
                        None,
                        None,
                        "kiroku-config",
                    ));
                }
                let sdk = loader.load().await;
                let mut b = aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(c.path_style)
                    // kiroku sends its own SHA-256 with every object; the SDK's default extra
                    // checksums are not implemented by every S3-compatible store.
                    .request_checksum_calculation(
                        aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                    )
                    .response_checksum_validation(
                        aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                    );
                if let Some(ep) = &c.endpoint {
                    b = b.endpoint_url(ep);
                }
                aws_sdk_s3::Client::from_conf(b.build())
            })
        };
        let client = std::thread::spawn(build).join().map_err(|_| {
            StoreError::Unavailable(format!("region {region}: the S3 client could not be built"))
        })?;
        Ok(S3Store {
            region: region.into(),
            bucket: cfg.bucket.clone(),
            client,
            rt: Some(rt),
            timeout: Duration::from_secs(cfg.upload_timeout_seconds),
            spool: Arc::new(spool),
            spool_limit: cfg.spool_limit_bytes,
            health: Mutex::new(Health::default()),
            tagging: AtomicU8::new(TagSupport::Unknown as u8),
            wake: Arc::new((Mutex::new(false), Condvar::new())),
            stopping: AtomicBool::new(false),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Runs one SDK call on the store's runtime, from any thread, with the upload timeout.
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, CallError>> + Send + 'static,
    ) -> Result<T, CallError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.timeout;
        self.rt
            .as_ref()
            .expect("runtime lives as long as the store")
            .spawn(async move {
                let r = match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(CallError::Unavailable(format!(
                        "no answer within {} s",
                        timeout.as_secs()
                    ))),
                };
                let _ = tx.send(r);
            });
        rx.recv()
            .unwrap_or_else(|_| Err(CallError::Unavailable("runtime stopped".into())))
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note_failure(&self, e: &CallError) {
        let mut h = self.health();
        h.last_error = Some(e.text());
        h.down_until = Some(Instant::now() + DOWN_FOR);
        if let CallError::Auth(_) = e {
            // The SDK's text may name the key id; /healthz shows only this.
            h.failing = Some("credentials refused (HTTP 401/403)".into());
        }
    }

    fn note_success(&self) {
        let mut h = self.health();
        h.down_until = None;
        h.failing = None;
    }

    /// Writes skip S3 for a few seconds after a failure, and while credentials are refused.
    fn looks_down(&self) -> bool {
        let h = self.health();
        h.failing.is_some() || h.down_until.is_some_and(|t| Instant::now() < t)
    }

    /// The reason the region is failing (credentials refused), if it is.
    pub fn failing(&self) -> Option<String> {
        self.health().failing.clone()
    }

    /// Stores an object durably: in the bucket, or else in the spool.
    pub fn put(
        &self,
        key: &ObjectKey,
        object: &SealedObject,
        tags: &serde_json::Value,
    ) -> Result<(), StoreError> {
        if !self.spool.contains(key) && !self.looks_down() {
            match self.upload(key, object.to_vec(), tags) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(region = %self.region, error = %e.text(), "upload failed; the object goes to the local spool");
                    self.note_failure(&e);
                }
            }
        }
        self.spool.put(key, object, tags)?;
        self.wake_uploader();
        Ok(())
    }

    /// One PUT with the object's SHA-256, which the store checks before it accepts the bytes.
    fn upload(
        &self,
        key: &ObjectKey,
        bytes: Vec<u8>,
        tags: &serde_json::Value,
    ) -> Result<(), CallError> {
        let sum = base64::engine::general_purpose::STANDARD
            .encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .checksum_sha256(sum)
            .content_type("application/vnd.kiroku.sealed");
        for (k, v) in metadata(tags) {
            req = req.metadata(k, v);
        }
        if self.tagging.load(Ordering::Relaxed) == TagSupport::Tagging as u8 {
            req = req.tagging(object_tags(tags));
        }
        let req = req.body(ByteStream::from(bytes));
        self.run(async move { req.send().await.map(|_| ()).map_err(classify) })?;
        self.note_success();
        Ok(())
    }

    pub fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
        if self.spool.contains(key) {
            // The uploader may release the copy between the check and the read: then it is
            // in the bucket.
            match self.spool.get(key) {
                Err(StoreError::NotFound { .. }) => {}
                other => return other,
            }
        }
        self.fetch(key, None)
    }

    pub fn get_range(&self, key: &ObjectKey, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        if self.spool.contains(key) {
            match self.spool.get_range(key, offset, len) {
                Err(StoreError::NotFound { .. }) => {}
                other => return other,
            }
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        self.fetch(key, Some(format!("bytes={offset}-{}", offset + len - 1)))
    }

    fn fetch(&self, key: &ObjectKey, range: Option<String>) -> Result<Vec<u8>, StoreError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_range(range);
        self.run(async move {
            let out = req.send().await.map_err(classify)?;
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| CallError::Unavailable(e.to_string()))?;
            Ok(body.into_bytes().to_vec())
        })
        .map_err(|e| self.store_error(key, e))
    }

    /// The tags: from the spool, or the object's user metadata.
    pub fn get_tags(&self, key: &ObjectKey) -> Result<serde_json::Value, StoreError> {
        if self.spool.contains(key) {
            return self.spool.get_tags(key);
        }
        let req = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str());
        let meta = self
            .run(async move {
                let out = req.send().await.map_err(classify)?;
                Ok(out.metadata().cloned().unwrap_or_default())
            })
            .map_err(|e| self.store_error(key, e))?;
        Ok(serde_json::Value::Object(
            meta.into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        ))
    }

    /// Every key in the bucket under `prefix`.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone());
            let (page, next) = self
                .run(async move {
                    let out = req.send().await.map_err(classify)?;
                    let page: Vec<String> = out
                        .contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_owned))
                        .collect();
                    Ok((page, out.next_continuation_token().map(str::to_owned)))
                })
                .map_err(|e| {
                    StoreError::Unavailable(format!("region {}: {}", self.region, e.text()))
                })?;
            keys.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(keys),
            }
        }
    }

    fn store_error(&self, key: &ObjectKey, e: CallError) -> StoreError {
        match e {
            CallError::NotFound => StoreError::NotFound {
                key: key.to_string(),
            },
            other => StoreError::Unavailable(format!("region {}: {}", self.region, other.text())),
        }
    }

    /// New interviews are refused once the spool is past its limit, rather than risk it.
    pub fn accepting(&self) -> Result<(), StoreError> {
        let held = self.spool.bytes();
        if held > self.spool_limit {
            return Err(StoreError::SpoolFull {
                region: self.region.clone(),
                held,
                limit: self.spool_limit,
            });
        }
        Ok(())
    }

    fn wake_uploader(&self) {
        let (m, c) = &*self.wake;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        c.notify_all();
    }

    /// Uploads what the spool holds, oldest key first; stops at the first failure. Returns how
    /// many objects left the spool.
    pub fn drain_once(&self) -> usize {
        // Another process (a CLI `ingest`) may have spooled objects since this one started.
        if let Err(e) = self.spool.rescan() {
            tracing::error!(region = %self.region, error = %e, "the spool folder cannot be read");
        }
        let mut done = 0;
        for key in self.spool.keys() {
            if self.stopping.load(Ordering::SeqCst) {
                break; // what is left stays spooled for the next start
            }
            let (bytes, tags) = match (self.spool.get(&key), self.spool.get_tags(&key)) {
                (Ok(b), Ok(t)) => (b, t),
                (Err(e), _) | (_, Err(e)) => {
                    // Never uploaded without its tags; it stays for the operator to see.
                    tracing::error!(region = %self.region, key = %key, error = %e, "a spooled object or its tags cannot be read");
                    continue;
                }
            };
            match self.upload(&key, bytes.clone(), &tags) {
                Ok(()) => match self.spool.release_if_unchanged(&key, &bytes) {
                    Ok(true) => done += 1,
                    Ok(false) => {} // a newer copy came; it goes next round
                    Err(e) => {
                        tracing::error!(region = %self.region, error = %e, "spool entry could not be removed")
                    }
                },
                // The store refused this object (not the region): the others go on.
                Err(CallError::Other(why)) => {
                    tracing::error!(region = %self.region, key = %key, error = %why, "the store refuses this spooled object; it stays in the spool");
                }
                Err(e) => {
                    tracing::warn!(region = %self.region, error = %e.text(), "spool upload failed; will retry");
                    self.note_failure(&e);
                    break;
                }
            }
        }
        done
    }

    /// The uploader thread: drains the spool whenever something is spooled, and retries with
    /// backoff (1 s doubling to 30 s; 60 s after credentials were refused).
    pub fn spawn_uploader(self: &Arc<Self>) -> Option<std::thread::JoinHandle<()>> {
        let store = Arc::downgrade(self);
        let wake = self.wake.clone();
        let name = format!("uploader-{}", self.region);
        let stopped = |s: &S3Store| s.stopping.load(Ordering::SeqCst);
        std::thread::Builder::new().name(name).spawn(move || {
            // One process drains a spool at a time; another waits for the claim.
            let _claim = loop {
                let Some(s) = store.upgrade().filter(|s| !stopped(s)) else { return };
                if let Some(c) = s.spool.claim() {
                    break c;
                }
                tracing::warn!(region = %s.region, "another process is draining this region's spool; waiting");
                drop(s);
                pause_unless_stopped(&store, Duration::from_secs(30));
            };
            if let Some(s) = store.upgrade() {
                let found = s.detect_tagging();
                tracing::info!(region = %s.region, tags = ?found, "S3 region: tags go as x-amz-meta-* metadata, and as object tags where supported");
            }
            let mut backoff = Duration::from_secs(1);
            loop {
                let Some(s) = store.upgrade().filter(|s| !stopped(s)) else { return };
                let _ = s.spool.rescan();
                if s.spool.keys().is_empty() {
                    drop(s);
                    let (m, c) = &*wake;
                    let mut woken = m.lock().unwrap_or_else(|p| p.into_inner());
                    if !*woken {
                        woken = c
                            .wait_timeout(woken, Duration::from_secs(1))
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    *woken = false;
                    continue;
                }
                if s.tag_support() == TagSupport::Unknown && !s.looks_down() {
                    s.detect_tagging();
                }
                s.drain_once();
                let (left, failing) = (s.spool.keys().len(), s.failing());
                drop(s);
                if left == 0 {
                    backoff = Duration::from_secs(1);
                    continue;
                }
                let pause = if failing.is_some() { AUTH_PAUSE } else { backoff };
                pause_unless_stopped(&store, pause);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        })
        .ok()
    }

    /// Stops the uploader: the upload in flight completes, nothing more starts.
    pub fn stop_uploader(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake_uploader();
    }

    /// The baseline of `kiroku bench`: a bare `put_object` of the same bytes, without
    /// kiroku's checksum, metadata or spool.
    pub fn plain_put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes));
        self.run(async move { req.send().await.map(|_| ()).map_err(classify) })
            .map_err(|e| StoreError::Unavailable(e.text()))
    }

    /// Finds out whether the store implements object tagging, with a probe object.
    pub fn detect_tagging(&self) -> TagSupport {
        let key = format!("kiroku-probe/{}", uuid::Uuid::new_v4().simple());
        let (c, b, k) = (self.client.clone(), self.bucket.clone(), key.clone());
        let found = self.run(async move {
            c.put_object()
                .bucket(&b)
                .key(&k)
                .body(ByteStream::from_static(b"probe"))
                .send()
                .await
                .map_err(classify)?;
            let tag = aws_sdk_s3::types::Tag::builder()
                .key("kiroku")
                .value("probe")
                .build()
                .map_err(|e| CallError::Other(e.to_string()))?;
            let tagging = aws_sdk_s3::types::Tagging::builder()
                .tag_set(tag)
                .build()
                .map_err(|e| CallError::Other(e.to_string()))?;
            let tagged = c
                .put_object_tagging()
                .bucket(&b)
                .key(&k)
                .tagging(tagging)
                .send()
                .await
                .is_ok();
            let _ = c.delete_object().bucket(&b).key(&k).send().await;
            Ok(tagged)
        });
        let support = match found {
            Ok(true) => TagSupport::Tagging,
            Ok(false) => TagSupport::MetadataOnly,
            Err(_) => TagSupport::Unknown,
        };
        if support != TagSupport::Unknown {
            self.tagging.store(support as u8, Ordering::Relaxed);
        }
        support
    }

    pub fn tag_support(&self) -> TagSupport {
        match self.tagging.load(Ordering::Relaxed) {
            1 => TagSupport::Tagging,
            2 => TagSupport::MetadataOnly,
            _ => TagSupport::Unknown,
        }
    }

    /// The checks of `kiroku regions check`: bucket reachable, a probe object written, read
    /// back and deleted, versioning and object lock reported.
    pub fn check(&self) -> Result<serde_json::Value, String> {
        let (c, b) = (self.client.clone(), self.bucket.clone());
        self.run(async move {
            c.head_bucket().bucket(&b).send().await.map_err(classify)?;
            Ok(())
        })
        .map_err(|e| match e {
            CallError::NotFound => format!("bucket `{}` does not exist", self.bucket),
            CallError::Auth(t) => format!("credentials refused: {t}"),
            CallError::Unavailable(t) => format!("endpoint unreachable: {t}"),
            CallError::Other(t) => t,
        })?;
        let key = format!("kiroku-probe/{}", uuid::Uuid::new_v4().simple());
        let (c, b, k) = (self.client.clone(), self.bucket.clone(), key.clone());
        self.run(async move {
            let body = b"kiroku regions check".to_vec();
            c.put_object()
                .bucket(&b)
                .key(&k)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map_err(classify)?;
            let got = c
                .get_object()
                .bucket(&b)
                .key(&k)
                .send()
                .await
                .map_err(classify)?
                .body
                .collect()
                .await
                .map_err(|e| CallError::Other(e.to_string()))?
                .into_bytes();
            if got.as_ref() != body.as_slice() {
                return Err(CallError::Other("the probe read back differs".into()));
            }
            c.delete_object()
                .bucket(&b)
                .key(&k)
                .send()
                .await
                .map_err(classify)?;
            Ok(())
        })
        .map_err(|e| format!("probe object write/read/delete failed: {}", e.text()))?;
        let (c, b) = (self.client.clone(), self.bucket.clone());
        let (versioning, lock) = self
            .run(async move {
                let v = c
                    .get_bucket_versioning()
                    .bucket(&b)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.status().map(|s| s.as_str().to_string()))
                    .unwrap_or_else(|| "off".into());
                let l = match c.get_object_lock_configuration().bucket(&b).send().await {
                    Ok(o) => o
                        .object_lock_configuration()
                        .and_then(|c| c.object_lock_enabled())
                        .map(|e| e.as_str().to_string())
                        .unwrap_or_else(|| "off".into()),
                    Err(_) => "off or not supported".into(),
                };
                Ok((v, l))
            })
            .map_err(|e| e.text())?;
        let tags = self.detect_tagging();
        Ok(serde_json::json!({
            "bucket": self.bucket,
            "reachable": true,
            "probe": "written, read back and deleted",
            "versioning": versioning,
            "object_lock": lock,
            "tags": match tags {
                TagSupport::Tagging => "object tagging and x-amz-meta-* metadata",
                _ => "x-amz-meta-* metadata (the store does not implement object tagging)",
            },
            "spool_bytes": self.spool.bytes(),
        }))
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        // Never blocks, so a store may be dropped inside an async context.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A segment's tags as S3 user metadata: `consent_scopes` → `x-amz-meta-consent-scopes`,
/// arrays joined by commas.
pub fn metadata(tags: &serde_json::Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(o) = tags.as_object() {
        for (k, v) in o {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            out.insert(k.replace('_', "-"), cap(value));
        }
    }
    out
}

/// S3 limits user metadata to 2 KB and tag values to 256 characters: a long list (a
/// candidate's many share scopes) is cut at a comma and marked, the full list staying in the
/// catalog and the sealed manifest.
fn cap(v: String) -> String {
    const MAX: usize = 240;
    if v.len() <= MAX {
        return v;
    }
    let cut = v[..MAX].rfind(',').unwrap_or(MAX);
    format!("{},...", &v[..cut])
}

/// At most ten S3 object tags (the service's limit), URL-encoded as PutObject wants them.
fn object_tags(tags: &serde_json::Value) -> String {
    let mut m: Vec<(String, String)> = metadata(tags).into_iter().collect();
    m.sort();
    m.into_iter()
        .filter(|(k, _)| {
            [
                "kind",
                "candidate",
                "interview",
                "region",
                "key-version",
                "consent-scopes",
                "index",
                "media-kind",
            ]
            .contains(&k.as_str())
        })
        .take(10)
        .map(|(k, v)| {
            let v = v.replace(',', " ");
            format!("{}={}", url_encode(&k), url_encode(&v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sleeps up to `d`, waking early when the uploader is told to stop (or the store is gone).
fn pause_unless_stopped(store: &std::sync::Weak<S3Store>, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        match store.upgrade() {
            Some(s) if !s.stopping.load(Ordering::SeqCst) => {}
            _ => return,
        }
        std::thread::sleep(
            Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())),
        );
    }
}
