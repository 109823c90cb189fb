//! Assets stage (stage 0), bottom layer: the on-disk cache every other stage
//! reads from and writes to, plus the shared [`AssetError`] of the four assets
//! files (`cache`, `pins`, `clients`, `archive`).
//!
//! Layout under the cache root (`--cache-dir`, else `$OVR_CACHE`, else
//! `$HOME/.cache/ovr`):
//! - `downloads/` verified package files, named exactly as the client wrote them
//! - `weights/`   converted backbone weights
//! - `datasets/`  unpacked / built datasets
//! - `features/`  cached embeddings
//!
//! Nothing is ever half-written: files go through [`write_atomic`] and
//! directories through [`super::atomic_dir::build_dir_atomic`] /
//! [`super::atomic_dir::replace_dir_atomic`] (fsynced temp sibling + `rename`).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::util::hex::hex;

/// Errors of the assets stage (fetching, verifying, unpacking, caching).
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// A package client (pip, npm, apt-get, dpkg-deb) is not installed.
    #[error("package client `{client}` not found; {hint}")]
    ClientMissing { client: String, hint: String },

    /// A package client ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}); {hint}\n--- client output (tail) ---\n{stderr_tail}")]
    ClientFailed {
        command: String,
        status: String,
        stderr_tail: String,
        hint: String,
    },

    /// A package client succeeded but did not produce the pinned file.
    #[error("`{command}` did not produce `{expected}` (found: {found}); {hint}")]
    ClientOutput {
        command: String,
        expected: String,
        found: String,
        hint: String,
    },

    /// A file's SHA-256 differs from its pin; the file has been deleted.
    #[error(
        "SHA-256 mismatch for {path}: expected {expected}, got {actual} (the file was deleted)"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// An archive entry that could escape the destination (absolute path,
    /// `..`, link, device) or is otherwise unsafe to unpack.
    #[error("unsafe entry `{entry}` in archive {archive}: {reason}")]
    UnsafeArchiveEntry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },

    /// A required member is not in the archive.
    #[error("archive {archive} has no member `{member}`")]
    MissingMember { archive: PathBuf, member: String },

    /// The archive itself is corrupt or unreadable as the expected format.
    #[error("cannot read archive {archive}: {detail}")]
    BadArchive { archive: PathBuf, detail: String },

    /// The archive, or one entry of it, cannot be read (corrupt data, a CRC
    /// mismatch): the zip / tar / I/O error is the source.
    #[error("cannot read archive {archive}{}", entry_text(.entry))]
    Unreadable {
        archive: PathBuf,
        entry: Option<String>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// [`super::atomic_dir::build_dir_atomic`] refuses to replace an existing directory.
    #[error("destination {path} already exists (delete it to rebuild)")]
    DestinationExists { path: PathBuf },

    /// Neither an override, `$OVR_CACHE` nor `$HOME` is set.
    #[error("no cache directory: pass --cache-dir, or set OVR_CACHE or HOME")]
    NoCacheDir,

    /// Any I/O failure, with the path it happened on.
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The entry part of [`AssetError::Unreadable`]'s text, if any.
fn entry_text(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(", entry `{e}`"))
        .unwrap_or_default()
}

/// Shorthand for `map_err(io_err(path))`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AssetError + '_ {
    move |source| AssetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The cache root and its fixed sub-directories (created lazily by writers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: PathBuf) -> Self {
        Cache { root }
    }

    /// `override_dir` if given, else `$OVR_CACHE` (if non-empty), else
    /// `$HOME/.cache/ovr`. Does not create the directory.
    pub fn from_env(override_dir: Option<&Path>) -> Result<Cache, AssetError> {
        if let Some(dir) = override_dir {
            return Ok(Cache::new(dir.to_path_buf()));
        }
        if let Some(dir) = std::env::var_os("OVR_CACHE").filter(|v| !v.is_empty()) {
            return Ok(Cache::new(PathBuf::from(dir)));
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => Ok(Cache::new(PathBuf::from(home).join(".cache").join("ovr"))),
            None => Err(AssetError::NoCacheDir),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Verified package files (wheels, tarballs, .debs), named as pinned.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    pub fn weights_dir(&self) -> PathBuf {
        self.root.join("weights")
    }

    pub fn datasets_dir(&self) -> PathBuf {
        self.root.join("datasets")
    }

    pub fn features_dir(&self) -> PathBuf {
        self.root.join("features")
    }
}

/// Lowercase hex SHA-256 of a file, read in 64 KiB chunks.
pub fn sha256_file(path: &Path) -> Result<String, AssetError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A path next to `target` (same directory, so `rename` is atomic) that no
/// other process or thread will pick: `.<name>.tmp-<pid>-<counter>-<nanos>`.
pub(crate) fn temp_sibling(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = target
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ovr".to_string());
    let tmp_name = format!(".{name}.tmp-{}-{n}-{nanos}", std::process::id());
    match target.parent() {
        Some(parent) => parent.join(tmp_name),
        None => PathBuf::from(tmp_name),
    }
}

fn parent_of(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

/// Creates `path`'s parent directories if needed.
pub(crate) fn ensure_parent(path: &Path) -> Result<(), AssetError> {
    if let Some(parent) = parent_of(path) {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    Ok(())
}

/// Removes a temp file or directory when dropped, unless disarmed.
pub(crate) struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl TempGuard {
    pub(crate) fn new(path: PathBuf) -> Self {
        TempGuard { path, armed: true }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a failure here must not mask the original error.
            if self.path.is_dir() {
                let _ = fs::remove_dir_all(&self.path);
            } else {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// Writes `bytes` to `path` atomically: parent dirs are created, the data go
/// to a unique temp file in the same directory, which is fsynced and renamed
/// over `path` (replacing an existing file).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AssetError> {
    write_atomic_with(path, |file, tmp| file.write_all(bytes).map_err(io_err(tmp)))
}

/// Like [`write_atomic`], but the content is streamed by `fill(file, temp_path)`.
pub(crate) fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File, &Path) -> Result<(), AssetError>,
) -> Result<(), AssetError> {
    ensure_parent(path)?;
    let mut guard = TempGuard::new(temp_sibling(path));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(guard.path())
        .map_err(io_err(guard.path()))?;
    fill(&mut file, guard.path())?;
    file.sync_all().map_err(io_err(guard.path()))?;
    drop(file);
    fs::rename(guard.path(), path).map_err(io_err(path))?;
    guard.disarm();
    sync_parent(path);
    Ok(())
}

/// Best-effort fsync of the directory holding `path` (makes a rename durable).
pub(crate) fn sync_parent(path: &Path) {
    if let Some(parent) = parent_of(path) {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::atomic_dir::build_dir_atomic;

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/abc.txt");
        write_atomic(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), sha256_hex(b"abc"));
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn sha256_file_missing_is_io_error_with_path() {
        let err = sha256_file(Path::new("/nonexistent/ovr/x")).unwrap_err();
        assert!(matches!(err, AssetError::Io { ref path, .. } if path.ends_with("x")));
    }

    #[test]
    fn build_dir_atomic_success_failure_and_existing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/built");
        build_dir_atomic::<AssetError>(&dest, |tmp| {
            fs::write(tmp.join("x"), b"1").map_err(io_err(tmp))
        })
        .unwrap();
        assert_eq!(fs::read(dest.join("x")).unwrap(), b"1");

        // Existing destination: refused, nothing replaced.
        let err = build_dir_atomic::<AssetError>(&dest, |_| Ok(())).unwrap_err();
        assert!(matches!(err, AssetError::DestinationExists { .. }));

        // Failing build: temp dir removed, dest not created.
        let dest2 = dir.path().join("sub/failed");
        let err = build_dir_atomic::<AssetError>(&dest2, |tmp| {
            fs::write(tmp.join("partial"), b"1").map_err(io_err(tmp))?;
            Err(AssetError::NoCacheDir)
        })
        .unwrap_err();
        assert!(matches!(err, AssetError::NoCacheDir));
        assert!(!dest2.exists());
        let left: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(left.len(), 1, "only `built` should remain");
    }

    #[test]
    fn cache_layout() {
        let c = Cache::from_env(Some(Path::new("/x/y"))).unwrap();
        assert_eq!(c.root(), Path::new("/x/y"));
        assert_eq!(c.downloads_dir(), Path::new("/x/y/downloads"));
        assert_eq!(c.weights_dir(), Path::new("/x/y/weights"));
        assert_eq!(c.datasets_dir(), Path::new("/x/y/datasets"));
        assert_eq!(c.features_dir(), Path::new("/x/y/features"));
    }
}
