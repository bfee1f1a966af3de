//! Compiled components on disk, so a restart or another replica does not
//! compile every team's plugins again.
//!
//! Compiling is the slow step of taking a plugin into service: a Rust
//! component compiles in about 0.1 s, a JavaScript or Python one (the
//! interpreter is inside the component, 12-18 MB) in seconds. wasmtime can
//! serialise the compiled machine code and load it back in milliseconds.
//!
//! Loading is `unsafe`: `Component::deserialize` maps the file's bytes as
//! executable code, trusting that they are what this engine produced. So an
//! artifact is only ever loaded after its integrity was checked: each file
//! ends with an HMAC-SHA256 over what it claims to be (the component's
//! SHA-256, the engine's compatibility hash) and the artifact itself, under
//! a key that only the gateways hold (`plugins.runtime.artifact_key`, or a
//! key file made on first use with mode 0600 inside a 0700 directory). A
//! file that fails the check (truncated, corrupted, written by someone
//! without the key, or an artifact of another component renamed) is
//! deleted, counted and replaced by a fresh compilation; it never reaches
//! `deserialize`.
//!
//! Key: component SHA-256 + `Engine::precompile_compatibility_hash` (the
//! wasmtime version, the engine settings and the CPU features the code was
//! compiled for): a gateway with other settings compiles anew.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Bytes of the MAC at the end of every artifact file.
const MAC_BYTES: usize = 32;

/// How lookups went since the cache was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArtifactCounts {
    pub hits: u64,
    pub misses: u64,
    pub rejected: u64,
}

/// The on-disk cache of compiled components.
pub struct ArtifactCache {
    counts: std::sync::Mutex<ArtifactCounts>,
    dir: PathBuf,
    key: Vec<u8>,
    /// Hex of the engine's compatibility hash: part of every file name.
    engine: String,
}

impl std::fmt::Debug for ArtifactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCache")
            .field("dir", &self.dir)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// What looking an artifact up found.
pub enum Lookup {
    Hit(Component),
    Miss,
    /// A file was there but failed the integrity check (now deleted).
    Rejected(String),
}

impl ArtifactCache {
    /// Opens (creating) the cache in `dir` for `engine`. `key`: the shared
    /// secret; `None` uses (or creates) `dir/key`.
    pub fn open(dir: &Path, key: Option<&str>, engine: &Engine) -> std::io::Result<Self> {
        create_private_dir(dir)?;
        let key = match key.filter(|k| !k.is_empty()) {
            Some(key) => key.as_bytes().to_vec(),
            None => key_file(&dir.join("key"))?,
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            counts: std::sync::Mutex::default(),
            dir: dir.to_owned(),
            key,
            engine: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine))
    }

    fn mac(&self, sha256: &str, artifact: &[u8]) -> [u8; MAC_BYTES] {
        hmac_sha256(
            &self.key,
            &[sha256.as_bytes(), self.engine.as_bytes(), artifact],
        )
    }

    pub fn counts(&self) -> ArtifactCounts {
        self.counts.lock().map(|c| *c).unwrap_or_default()
    }

    /// The compiled component for the component whose SHA-256 is `sha256`,
    /// if a checked artifact is on disk.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Lookup {
        let found = self.lookup(engine, sha256);
        if let Ok(mut counts) = self.counts.lock() {
            match found {
                Lookup::Hit(_) => counts.hits += 1,
                Lookup::Miss => counts.misses += 1,
                Lookup::Rejected(_) => counts.rejected += 1,
            }
        }
        found
    }

    fn lookup(&self, engine: &Engine, sha256: &str) -> Lookup {
        let path = self.path(sha256);
        let Ok(file) = std::fs::read(&path) else {
            return Lookup::Miss;
        };
        let reject = |why: &str| {
            let _ = std::fs::remove_file(&path);
            Lookup::Rejected(format!("{}: {why}", path.display()))
        };
        let Some(split) = file.len().checked_sub(MAC_BYTES) else {
            return reject("shorter than its MAC");
        };
        let (artifact, mac) = file.split_at(split);
        if !constant_time_eq(&self.mac(sha256, artifact), mac) {
            return reject("integrity check failed");
        }
        // SAFETY: `deserialize` requires bytes produced by `serialize` on a
        // compatible engine, unmodified. The MAC above proves this file was
        // written by `store` below (which writes only what
        // `Component::serialize` returned) for this component and this
        // engine's compatibility hash, by a holder of the key; wasmtime
        // itself checks the engine compatibility again and refuses a
        // mismatch with an error, handled as a miss.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Lookup::Hit(component),
            Err(e) => reject(&format!("wasmtime refused it: {e}")),
        }
    }

    /// Writes `component`'s artifact, atomically (a reader never sees half
    /// a file). Failing to write is not an error for the caller: the cache
    /// is an optimisation.
    pub fn store(&self, sha256: &str, component: &Component) -> std::io::Result<()> {
        let artifact = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let mac = self.mac(sha256, &artifact);
        let path = self.path(sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&artifact)?;
        file.write_all(&mac)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The key in `path`, made (32 random bytes, mode 0600) if absent. Two
/// gateways starting at once on an empty directory race to create it;
/// `create_new` lets exactly one win and the other read its key.
fn key_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            let key: Vec<u8> = uuid::Uuid::new_v4()
                .as_bytes()
                .iter()
                .chain(uuid::Uuid::new_v4().as_bytes())
                .copied()
                .collect();
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // The winner may still be writing: wait for a whole key.
            for _ in 0..100 {
                let key = std::fs::read(path)?;
                if key.len() >= 32 {
                    return Ok(key);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::io::Error::other(format!(
                "{} holds no key",
                path.display()
            )))
        }
        Err(e) => Err(e),
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without returning early, so timing does not reveal how much of
/// a forged MAC was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert!(constant_time_eq(&mac, &mac));
        assert!(!constant_time_eq(&mac, &mac[1..]));
    }
}
