//! The embedded local store: files under the data dir, each written atomically (temporary
//! file, fsync, rename, fsync of the directory) before anything is acknowledged.

use std::path::{Path, PathBuf};

use super::{ObjectKey, StoreError};
use crate::seal::SealedObject;
use crate::util::{write_atomic, write_atomic_parts};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: &Path) -> LocalStore {
        LocalStore {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn tags_path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(format!("{}.tags.json", key.as_str()))
    }

    pub fn put(
        &self,
        key: &ObjectKey,
        object: &SealedObject,
        tags: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            key: key.to_string(),
            source,
        };
        let tags = serde_json::to_vec_pretty(tags).map_err(|e| io(std::io::Error::other(e)))?;
        // Tags first: an object is never visible without its tags.
        write_atomic(&self.tags_path(key), &tags).map_err(io)?;
        write_atomic_parts(&self.path(key), object.parts()).map_err(io)
    }

    pub fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
        read(&self.path(key), key)
    }

    /// `len` bytes from `offset`; fewer only if the object is shorter.
    pub fn get_range(&self, key: &ObjectKey, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        use std::io::{Read, Seek, SeekFrom};
        let io = |source| StoreError::Io {
            key: key.to_string(),
            source,
        };
        let mut f = std::fs::File::open(self.path(key)).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound {
                key: key.to_string(),
            },
            _ => io(source),
        })?;
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buf = Vec::with_capacity(len as usize);
        f.take(len).read_to_end(&mut buf).map_err(io)?;
        Ok(buf)
    }

    /// Deletes an object and its tags (the object first: tags never outlive it unnoticed).
    pub fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            key: key.to_string(),
            source,
        };
        for p in [self.path(key), self.tags_path(key)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        if let Some(dir) = self.path(key).parent() {
            crate::util::fsync_dir(dir).map_err(io)?;
        }
        Ok(())
    }

    /// Deletes every object under `prefix` (a folder of the store, ending in `/`), tags and
    /// unfinished writes included; returns how many objects were deleted.
    pub fn erase_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        let keys: Vec<ObjectKey> = self
            .list()?
            .into_iter()
            .filter(|k| k.as_str().starts_with(prefix))
            .collect();
        for k in &keys {
            self.delete(k)?;
        }
        let folder = self.root.join(prefix.trim_end_matches('/'));
        match std::fs::remove_dir_all(&folder) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    key: prefix.to_string(),
                    source,
                });
            }
        }
        if let Some(parent) = folder.parent()
            && parent.exists()
        {
            crate::util::fsync_dir(parent).map_err(|source| StoreError::Io {
                key: prefix.to_string(),
                source,
            })?;
        }
        Ok(keys.len())
    }

    /// Every object key in the store, sorted (temporary files of unfinished writes skipped).
    pub fn list(&self) -> Result<Vec<ObjectKey>, StoreError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(StoreError::Io {
                        key: dir.display().to_string(),
                        source,
                    });
                }
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().to_string();
                if path.is_dir() {
                    dirs.push(path);
                } else if !name.starts_with('.') && !name.ends_with(".tags.json") {
                    let rel = path.strip_prefix(&self.root).unwrap_or(&path);
                    if let Ok(k) = ObjectKey::parse(&rel.to_string_lossy()) {
                        out.push(k);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(out)
    }

    pub fn get_tags(&self, key: &ObjectKey) -> Result<serde_json::Value, StoreError> {
        let bytes = read(&self.tags_path(key), key)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
            key: key.to_string(),
            source: std::io::Error::other(e),
        })
    }
}

fn read(path: &Path, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => StoreError::NotFound {
            key: key.to_string(),
        },
        _ => StoreError::Io {
            key: key.to_string(),
            source,
        },
    })
}
