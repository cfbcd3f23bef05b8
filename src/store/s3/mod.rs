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
//! This file holds the store and its object calls; beside it: [`client`] (the SDK client, the
//! runtime bridge and error classification), [`uploader`] (the spool drain), [`check`]
//! (`kiroku regions check`, tag detection) and [`metadata`] (tags as S3 metadata and tags).

mod check;
mod client;
mod metadata;
mod recover;
mod uploader;

pub use check::CheckError;
pub use recover::Recovered;

/// A client for a bucket that is not a region's (the audit log's checkpoint bucket), driven
/// by the caller's runtime.
pub fn standalone_client(
    label: &str,
    cfg: &crate::config::S3Config,
    rt: &tokio::runtime::Runtime,
) -> Result<aws_sdk_s3::Client, crate::store::StoreError> {
    client::build(label, cfg, rt)
}
pub use metadata::metadata;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;

use super::spool::Spool;
use super::{ObjectKey, StoreError};
use crate::config::S3Config;
use crate::seal::SealedObject;
use client::{CallError, classify};
use metadata::object_tags;

/// After a failed upload, writes skip S3 for this long and go to the spool.
const DOWN_FOR: Duration = Duration::from_secs(5);

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

/// One S3 region's store: its bucket, the client, the local spool and how the bucket is doing.
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

impl S3Store {
    /// Builds the client (credentials from the config or the standard AWS chain) and takes the
    /// region's spool. Does not reach the bucket: a region may be down when kiroku starts.
    pub fn open(region: &str, cfg: &S3Config, spool: Spool) -> Result<S3Store, StoreError> {
        let rt = client::runtime(region)?;
        let client = client::build(region, cfg, &rt)?;
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
        let sum =
            base64::engine::general_purpose::STANDARD.encode(crate::util::secret::sha256(&bytes));
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
        let sent = self.run(async move { req.send().await.map(|_| ()).map_err(classify) });
        let outcome = if sent.is_ok() { "ok" } else { "failed" };
        crate::metrics::METRICS
            .uploads
            .with_label_values(&[self.region.as_str(), outcome])
            .inc();
        sent?;
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

    /// Deletes one object, from the spool first, then from the bucket.
    pub fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.spool.delete(key)?;
        let req = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str());
        self.run(async move { req.send().await.map(|_| ()).map_err(classify) })
            .map_err(|e| self.store_error(key, e))
    }

    /// Deletes every object under `prefix`, in the spool first (so the uploader does not put
    /// one back), then in the bucket; returns how many were deleted.
    pub fn erase_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        let spooled = self.spool.erase_prefix(prefix)?;
        Ok(spooled + self.delete_listed(prefix)?)
    }

    /// Lists the bucket under `prefix` and deletes each object found (bare calls, no spool):
    /// the bucket half of an erasure, and the erasure benchmark's baseline.
    pub fn delete_listed(&self, prefix: &str) -> Result<usize, StoreError> {
        let keys = self.list(prefix)?;
        for key in &keys {
            let req = self.client.delete_object().bucket(&self.bucket).key(key);
            self.run(async move { req.send().await.map(|_| ()).map_err(classify) })
                .map_err(|e| {
                    StoreError::Unavailable(format!("region {}: {}", self.region, e.text()))
                })?;
        }
        Ok(keys.len())
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
}

impl Drop for S3Store {
    fn drop(&mut self) {
        // Never blocks, so a store may be dropped inside an async context.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
