//! The checkpoint bucket: each checkpoint one object, written once, under Object Lock when the
//! bucket has it; read back whole for `audit verify`.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockEnabled, ObjectLockMode};
use tokio::sync::OnceCell;

use super::AnchorError;
use crate::audit::{Published, published_name};
use crate::config::{AuditS3Config, LockMode};

/// Whether the checkpoint bucket keeps objects from being deleted or overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectLock {
    /// Object Lock is on: each checkpoint is locked for `[audit.s3] retain_days`.
    Enabled,
    /// The store has Object Lock, but this bucket was created without it.
    Off,
    /// The store does not implement Object Lock (it answered the query with an error).
    NotSupported(String),
}

impl std::fmt::Display for ObjectLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectLock::Enabled => f.write_str("enabled"),
            ObjectLock::Off => f.write_str("off on this bucket"),
            ObjectLock::NotSupported(_) => f.write_str("not supported by this store"),
        }
    }
}

pub(super) struct S3Sink {
    client: aws_sdk_s3::Client,
    config: AuditS3Config,
    /// Learnt at the first publish that reaches the bucket.
    lock: OnceCell<ObjectLock>,
}

fn text<E: std::error::Error>(e: E) -> String {
    DisplayErrorContext(e).to_string()
}

impl S3Sink {
    pub(super) fn new(
        config: &AuditS3Config,
        rt: &tokio::runtime::Runtime,
    ) -> Result<S3Sink, AnchorError> {
        let client = crate::store::standalone_client("audit", &config.as_store(), rt)
            .map_err(|e| AnchorError::S3(e.to_string()))?;
        Ok(S3Sink {
            client,
            config: config.clone(),
            lock: OnceCell::new(),
        })
    }

    pub(super) fn bucket(&self) -> &str {
        &self.config.bucket
    }

    fn key(&self, seq: u64) -> String {
        format!("{}{}", self.config.prefix, published_name(seq))
    }

    /// Asks the bucket whether it has Object Lock.
    async fn query_lock(&self) -> Result<ObjectLock, String> {
        let c = &self.client;
        c.head_bucket()
            .bucket(&self.config.bucket)
            .send()
            .await
            .map_err(text)?;
        Ok(
            match c
                .get_object_lock_configuration()
                .bucket(&self.config.bucket)
                .send()
                .await
            {
                Ok(o) => match o
                    .object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                {
                    Some(ObjectLockEnabled::Enabled) => ObjectLock::Enabled,
                    _ => ObjectLock::Off,
                },
                Err(e) => {
                    let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
                    // AWS answers a bucket without Object Lock with this error.
                    if code.as_deref() == Some("ObjectLockConfigurationNotFoundError") {
                        ObjectLock::Off
                    } else {
                        ObjectLock::NotSupported(text(e))
                    }
                }
            },
        )
    }

    /// The bucket reachable, and its Object Lock state (asked afresh).
    pub(super) async fn check(&self) -> Result<ObjectLock, String> {
        self.query_lock().await
    }

    /// Writes checkpoint `seq` unless an object for it exists already.
    pub(super) async fn publish(&self, seq: u64, line: &str) -> Result<(), String> {
        let key = self.key(seq);
        let lock = self.lock.get_or_try_init(|| self.query_lock()).await?;
        match self
            .client
            .head_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .send()
            .await
        {
            // The first checkpoint published at an entry stays (as in `publish_dir`).
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
            Err(e) => return Err(text(e)),
        }
        let mut put = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(line.as_bytes().to_vec()));
        if *lock == ObjectLock::Enabled {
            let until = crate::util::now_unix() + self.config.retain_days as i64 * 86_400;
            put = put
                .object_lock_mode(match self.config.lock_mode {
                    LockMode::Compliance => ObjectLockMode::Compliance,
                    LockMode::Governance => ObjectLockMode::Governance,
                })
                .object_lock_retain_until_date(DateTime::from_secs(until))
                // S3 requires a checksum on a write that sets a lock.
                .checksum_algorithm(ChecksumAlgorithm::Sha256);
        }
        put.send().await.map_err(text)?;
        Ok(())
    }

    /// Every checkpoint object under the prefix, in key (that is, entry) order.
    pub(super) async fn read_all(&self) -> Result<Vec<Published>, String> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(&self.config.prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(text)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned))
                    .filter(|k| k.ends_with(".json")),
            );
        }
        keys.sort();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let body = self
                .client
                .get_object()
                .bucket(&self.config.bucket)
                .key(&key)
                .send()
                .await
                .map_err(text)?
                .body
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .into_bytes();
            out.push(Published {
                source: format!("s3://{}/{key}", self.config.bucket),
                text: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(out)
    }
}
