//! Assets stage, bottom layer next to `cache.rs`: the one helper that puts a
//! whole directory in place atomically, used by the asset cache (unpacked
//! archives, emoji40 and Fashion-MNIST trees) and by saved ensembles
//! (`ensembles/<name>/`). The tree is built in a temp sibling, every file and
//! directory in it is fsynced, then it is renamed into place and the parent
//! fsynced: after a crash or `kill -9` the destination is either absent or
//! old, or complete and new, never half.

use std::fs::{self, File};
use std::path::Path;

use super::cache::{ensure_parent, io_err, sync_parent, temp_sibling, AssetError, TempGuard};

/// fsyncs every file under `dir`, then `dir` itself.
fn sync_tree(dir: &Path) -> Result<(), AssetError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let p = entry.map_err(io_err(dir))?.path();
        if p.is_dir() {
            sync_tree(&p)?;
        } else if p.is_file() {
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&p))?;
        }
    }
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

/// A fresh temp dir next to `dest`, filled by `build` and fsynced; removed
/// again by the guard on failure or panic.
fn build_synced<E: From<AssetError>>(
    dest: &Path,
    build: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<TempGuard, E> {
    ensure_parent(dest)?;
    let tmp = temp_sibling(dest);
    fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    let guard = TempGuard::new(tmp);
    build(guard.path())?;
    sync_tree(guard.path())?;
    Ok(guard)
}

/// Builds a directory atomically: `build` fills a fresh temp dir next to
/// `dest`; on success it is renamed to `dest`; on failure (or panic) the temp
/// dir is removed and `dest` is untouched.
///
/// Never replaces anything: if `dest` already exists (before or after the
/// build, e.g. another process won the race) the result is
/// [`AssetError::DestinationExists`] and the new build is discarded. Callers
/// that want "reuse if present" check `dest` first and treat
/// `DestinationExists` as "someone else built it".
pub fn build_dir_atomic<E: From<AssetError>>(
    dest: &Path,
    build: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let exists = || -> E {
        AssetError::DestinationExists {
            path: dest.to_path_buf(),
        }
        .into()
    };
    if dest.exists() {
        return Err(exists());
    }
    let mut guard = build_synced(dest, build)?;
    // rename(2) would silently replace an existing *empty* directory: check.
    if dest.exists() {
        return Err(exists());
    }
    match fs::rename(guard.path(), dest) {
        Ok(()) => {}
        Err(_) if dest.exists() => return Err(exists()),
        Err(e) => return Err(io_err(dest)(e).into()),
    }
    guard.disarm();
    sync_parent(dest);
    Ok(())
}

/// Like [`build_dir_atomic`], but an existing `dest` is replaced by the new
/// tree. On Linux the two are exchanged in one `renameat2(RENAME_EXCHANGE)`,
/// so `dest` always names a complete directory, old or new; elsewhere (or on
/// a file system without it) the old one is renamed aside first, leaving a
/// moment without `dest` but never a half-written one.
pub fn replace_dir_atomic<E: From<AssetError>>(
    dest: &Path,
    build: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let mut guard = build_synced(dest, build)?;
    if !dest.exists() {
        match fs::rename(guard.path(), dest) {
            Ok(()) => {
                guard.disarm();
                sync_parent(dest);
                return Ok(());
            }
            // Created meanwhile (another writer): replace it below.
            Err(_) if dest.exists() => {}
            Err(e) => return Err(io_err(dest)(e).into()),
        }
    }
    if exchange(guard.path(), dest) {
        // The guard now holds the old tree and removes it.
        sync_parent(dest);
        return Ok(());
    }
    let old = temp_sibling(dest);
    fs::rename(dest, &old).map_err(io_err(dest))?;
    if let Err(e) = fs::rename(guard.path(), dest) {
        let _ = fs::rename(&old, dest);
        return Err(io_err(dest)(e).into());
    }
    guard.disarm();
    sync_parent(dest);
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Swaps two paths atomically; false where that is not supported.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const RENAME_EXCHANGE: libc::c_uint = 2;
    let (Ok(ca), Ok(cb)) = (
        std::ffi::CString::new(a.as_os_str().as_bytes()),
        std::ffi::CString::new(b.as_os_str().as_bytes()),
    ) else {
        return false;
    };
    // SAFETY: both arguments are valid NUL-terminated paths for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            RENAME_EXCHANGE,
        )
    };
    r == 0
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_with(text: &'static str) -> impl FnOnce(&Path) -> Result<(), AssetError> {
        move |tmp| {
            fs::create_dir_all(tmp.join("sub")).map_err(io_err(tmp))?;
            fs::write(tmp.join("sub/f"), text).map_err(io_err(tmp))
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replace_creates_then_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("e");
        replace_dir_atomic(&dest, build_with("one")).unwrap();
        assert_eq!(fs::read_to_string(dest.join("sub/f")).unwrap(), "one");
        replace_dir_atomic(&dest, build_with("two")).unwrap();
        assert_eq!(fs::read_to_string(dest.join("sub/f")).unwrap(), "two");
        assert_eq!(entries(dir.path()), vec!["e"]);
    }

    #[test]
    fn failed_replace_keeps_the_old_tree() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("e");
        replace_dir_atomic(&dest, build_with("one")).unwrap();
        let r = replace_dir_atomic(&dest, |tmp: &Path| -> Result<(), AssetError> {
            fs::write(tmp.join("half"), "x").map_err(io_err(tmp))?;
            Err(AssetError::NoCacheDir)
        });
        assert!(r.is_err());
        assert_eq!(fs::read_to_string(dest.join("sub/f")).unwrap(), "one");
        assert!(!dest.join("half").exists());
        assert_eq!(entries(dir.path()), vec!["e"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_swaps_two_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        fs::write(a.join("in-a"), "").unwrap();
        assert!(exchange(&a, &b));
        assert!(b.join("in-a").exists() && !a.join("in-a").exists());
    }
}
