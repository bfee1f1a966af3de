//! The one object-store abstraction the lake writes through: a local
//! directory or an S3-compatible bucket.
//!
//! Decision: a small enum over two backends rather than the `object_store`
//! crate. The lake needs three calls (put a whole object, get it, list a
//! prefix); `object_store`'s `aws` feature brings rustls with aws-lc-rs (a
//! C/CMake build), quick-xml, h2 and a CRC crate into a workspace that has
//! no TLS stack today. The S3 backend here is [`super::s3`]: SigV4 over the
//! workspace's `reqwest`, plain HTTP (an `https` endpoint is refused at
//! start-up with that reason).
//!
//! Both backends make a `put` all-or-nothing: the local one writes a temp
//! file and renames it, S3 makes an object visible only once its upload is
//! complete. Keys are `/`-separated and relative to the store's root.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::s3::S3Store;

#[derive(Debug, Clone)]
pub enum ObjectStore {
    Local(LocalDir),
    S3(S3Store),
}

impl ObjectStore {
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self::Local(LocalDir { root: root.into() })
    }

    /// Where the objects live, for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(dir) => dir.root.display().to_string(),
            Self::S3(s3) => s3.describe(),
        }
    }

    /// Fails with a clear reason when the store cannot be used (start-up).
    pub async fn check(&self) -> anyhow::Result<()> {
        match self {
            Self::Local(dir) => {
                let root = dir.root.clone();
                tokio::task::spawn_blocking(move || std::fs::create_dir_all(&root))
                    .await?
                    .with_context(|| format!("creating the lake directory {}", dir.root.display()))
            }
            Self::S3(s3) => s3.list_page("", None, 1).await.map(|_| ()),
        }
    }

    /// Stores `bytes` under `key`, all or nothing; an existing object is replaced.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Self::Local(dir) => {
                let path = dir.path(key)?;
                tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await?
            }
            Self::S3(s3) => s3.put(key, bytes).await,
        }
        .with_context(|| format!("writing {key} to the lake at {}", self.describe()))
    }

    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            Self::Local(dir) => {
                let path = dir.path(key)?;
                Ok(tokio::task::spawn_blocking(move || std::fs::read(path)).await??)
            }
            Self::S3(s3) => s3.get(key).await,
        }
        .with_context(|| format!("reading {key} from the lake at {}", self.describe()))
    }

    /// Every committed object key under `prefix` (a `/`-terminated folder),
    /// sorted. Local temp files (`.<id>.tmp`, left by a crash before the
    /// rename) are not objects.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut keys = match self {
            Self::Local(dir) => {
                let dir = dir.clone();
                let prefix = prefix.to_owned();
                tokio::task::spawn_blocking(move || dir.list(&prefix)).await??
            }
            Self::S3(s3) => s3.list(prefix).await?,
        };
        keys.sort();
        Ok(keys)
    }
}

#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            !key.split('/').any(|part| part.is_empty() || part == ".."),
            "`{key}` is not a lake key"
        );
        Ok(self.root.join(key))
    }

    fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        let start = self.root.join(prefix.trim_end_matches('/'));
        let mut pending = vec![start];
        while let Some(dir) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
            };
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    pending.push(path);
                } else if !entry.file_name().to_string_lossy().starts_with('.')
                    && let Ok(relative) = path.strip_prefix(&self.root)
                {
                    keys.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        Ok(keys)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().context("lake path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
