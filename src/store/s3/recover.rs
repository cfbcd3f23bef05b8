//! Recovering a lost machine's spool: sealed objects that machine acknowledged to front-ends
//! but never got into the bucket, its spool folder read back from its disk
//! (`kiroku regions drain --from DIR`).

use serde::Serialize;

use super::S3Store;
use super::client::{CallError, classify};
use crate::store::{ObjectKey, Spool};

/// What a recovery did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Recovered {
    /// Objects uploaded from the other spool.
    pub uploaded: usize,
    /// Objects the bucket, or this node's own spool, already held: kept as they are there.
    pub already_in_bucket: usize,
    /// Objects that could not be read or uploaded; they stay in the other spool for a retry.
    pub left: usize,
}

impl S3Store {
    /// Uploads every object of `other` (another machine's spool) that the bucket does not
    /// hold yet, with its tags, and removes each from `other` once the bucket has it. A key
    /// the bucket already holds is left as it is there: the same sealed bytes, or a newer copy
    /// written since (a manifest rewritten when another node stopped the interview), never an
    /// older one. A key this node's own spool holds counts as held too: that copy is the newer
    /// one (this node wrote it while the bucket was away, after the lost machine's), and its
    /// uploader takes it to the bucket (it uploads before it deletes, so the key is always in
    /// one of the two). Stops at the first failure of the store itself.
    pub fn drain_from(&self, other: &Spool) -> Recovered {
        let mut done = Recovered::default();
        let keys = other.keys();
        for (i, key) in keys.iter().enumerate() {
            let held = match self.spool.contains(key) {
                true => Ok(true),
                false => self.in_bucket(key),
            };
            match held {
                Ok(true) => {
                    done.already_in_bucket += 1;
                    if let Err(e) = other.delete(key) {
                        tracing::error!(region = %self.region, key = %key, error = %e, "a recovered object could not be removed from its spool");
                    }
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(region = %self.region, error = %e.text(), "the bucket cannot be asked; recovery stops");
                    done.left += keys.len() - i;
                    return done;
                }
            }
            let (bytes, tags) = match (other.get(key), other.get_tags(key)) {
                (Ok(b), Ok(t)) => (b, t),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(region = %self.region, key = %key, error = %e, "a recovered object or its tags cannot be read");
                    done.left += 1;
                    continue;
                }
            };
            match self.upload(key, bytes, &tags) {
                Ok(()) => {
                    done.uploaded += 1;
                    if let Err(e) = other.delete(key) {
                        tracing::error!(region = %self.region, key = %key, error = %e, "a recovered object could not be removed from its spool");
                    }
                }
                Err(CallError::Other(why)) => {
                    tracing::error!(region = %self.region, key = %key, error = %why, "the store refuses this recovered object");
                    done.left += 1;
                }
                Err(e) => {
                    tracing::error!(region = %self.region, error = %e.text(), "upload failed; recovery stops");
                    done.left += keys.len() - i;
                    return done;
                }
            }
        }
        done
    }

    /// Whether the bucket holds `key` (a HEAD).
    fn in_bucket(&self, key: &ObjectKey) -> Result<bool, CallError> {
        let req = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str());
        match self.run(async move { req.send().await.map(|_| ()).map_err(classify) }) {
            Ok(()) => Ok(true),
            Err(CallError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
