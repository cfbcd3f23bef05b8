//! `kiroku regions check` for an S3 region, and finding out whether the store implements
//! object tagging. A failed check is a [`CheckError`] that names the region and the config
//! field to look at, so the command line never guesses from an error's text.

use std::sync::atomic::Ordering;

use aws_sdk_s3::primitives::ByteStream;

use super::client::{CallError, classify};
use super::{S3Store, TagSupport};

/// Why an S3 region failed `kiroku regions check`.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("bucket `{bucket}` does not exist")]
    NoBucket { region: String, bucket: String },
    #[error("credentials refused: {detail}")]
    CredentialsRefused { region: String, detail: String },
    #[error("endpoint unreachable: {detail}")]
    Unreachable { region: String, detail: String },
    /// The bucket answered, but a probe object could not be written, read back and deleted.
    #[error("probe object write/read/delete failed: {detail}")]
    Probe {
        region: String,
        /// The config field the probe's failure points at (`s3` when none in particular).
        field: &'static str,
        detail: String,
    },
    #[error("{detail}")]
    Other { region: String, detail: String },
}

impl CheckError {
    /// The region that failed.
    pub fn region(&self) -> &str {
        match self {
            CheckError::NoBucket { region, .. }
            | CheckError::CredentialsRefused { region, .. }
            | CheckError::Unreachable { region, .. }
            | CheckError::Probe { region, .. }
            | CheckError::Other { region, .. } => region,
        }
    }

    /// The field of the region's config to look at, relative to `regions.<id>`.
    pub fn field(&self) -> &'static str {
        match self {
            CheckError::NoBucket { .. } => "s3.bucket",
            CheckError::CredentialsRefused { .. } => "s3.access_key_id",
            CheckError::Unreachable { .. } => "s3.endpoint",
            CheckError::Probe { field, .. } => field,
            CheckError::Other { .. } => "s3",
        }
    }

    /// The field's full path in the config: `regions.<id>.s3.bucket`.
    pub fn field_path(&self) -> String {
        format!("regions.{}.{}", self.region(), self.field())
    }

    /// The first call, to the bucket itself.
    fn reaching(region: &str, bucket: &str, e: CallError) -> CheckError {
        let region = region.to_string();
        match e {
            CallError::NotFound => CheckError::NoBucket {
                region,
                bucket: bucket.to_string(),
            },
            CallError::Auth(detail) => CheckError::CredentialsRefused { region, detail },
            CallError::Unavailable(detail) => CheckError::Unreachable { region, detail },
            CallError::Other(detail) => CheckError::Other { region, detail },
        }
    }

    /// The probe object, once the bucket answered.
    fn probing(region: &str, e: CallError) -> CheckError {
        let field = match &e {
            CallError::Auth(_) => "s3.access_key_id",
            CallError::Unavailable(_) => "s3.endpoint",
            CallError::NotFound | CallError::Other(_) => "s3",
        };
        CheckError::Probe {
            region: region.to_string(),
            field,
            detail: e.text(),
        }
    }
}

impl S3Store {
    /// The checks of `kiroku regions check`: bucket reachable, a probe object written, read
    /// back and deleted, versioning and object lock reported.
    pub fn check(&self) -> Result<serde_json::Value, CheckError> {
        let (c, b) = (self.client.clone(), self.bucket.clone());
        self.run(async move {
            c.head_bucket().bucket(&b).send().await.map_err(classify)?;
            Ok(())
        })
        .map_err(|e| CheckError::reaching(&self.region, &self.bucket, e))?;
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
        .map_err(|e| CheckError::probing(&self.region, e))?;
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
            .map_err(|e| CheckError::reaching(&self.region, &self.bucket, e))?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_its_region_and_field() {
        let cases = [
            (
                CheckError::reaching("jp", "kiroku-jp", CallError::NotFound),
                "regions.jp.s3.bucket",
            ),
            (
                CheckError::reaching("jp", "b", CallError::Auth("403".into())),
                "regions.jp.s3.access_key_id",
            ),
            (
                CheckError::reaching("eu", "b", CallError::Unavailable("refused".into())),
                "regions.eu.s3.endpoint",
            ),
            (
                CheckError::reaching("eu", "b", CallError::Other("teapot".into())),
                "regions.eu.s3",
            ),
            (
                CheckError::probing("us", CallError::Auth("403".into())),
                "regions.us.s3.access_key_id",
            ),
            (
                CheckError::probing("us", CallError::Other("differs".into())),
                "regions.us.s3",
            ),
        ];
        for (e, path) in cases {
            assert_eq!(e.field_path(), path, "{e}");
        }
        assert_eq!(
            CheckError::reaching("jp", "kiroku-jp", CallError::NotFound).to_string(),
            "bucket `kiroku-jp` does not exist"
        );
    }
}
