//! Assets stage (stage 0), second step: unpack verified packages (wheels =
//! zip, npm packs = .tgz, Debian .deb) safely.
//!
//! Archives are treated as untrusted even after their hash checked out: any
//! entry that is absolute, contains `..`, is a link or a device/fifo fails the
//! operation with [`AssetError::UnsafeArchiveEntry`] naming the entry, and
//! extraction goes to a temp sibling that is renamed into place only at the
//! end, so a failure leaves nothing behind. File modes from archives are not
//! applied (no setuid, no executables).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::atomic_dir::build_dir_atomic;
use super::cache::{ensure_parent, io_err, write_atomic_with, AssetError};

/// Validates an archive entry name and returns it normalised (`/`-separated,
/// no empty or `.` components; may be empty for a root entry such as `./`).
/// The error is the reason the name is unsafe.
pub fn safe_relative_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.contains('\0') {
        return Err("NUL byte in name".into());
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Err("absolute path".into());
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("absolute (drive-letter) path".into());
    }
    if name.contains('\\') {
        return Err("backslash in name".into());
    }
    let mut parts = Vec::new();
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("`..` component (escapes the destination)".into()),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

fn unsafe_entry(archive: &Path, entry: &str, reason: impl Into<String>) -> AssetError {
    AssetError::UnsafeArchiveEntry {
        archive: archive.to_path_buf(),
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// `archive` (or its `entry`) cannot be read; `source` says why.
fn bad_archive(
    archive: &Path,
    entry: Option<&str>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> AssetError {
    AssetError::Unreadable {
        archive: archive.to_path_buf(),
        entry: entry.map(str::to_string),
        source: source.into(),
    }
}

/// Copies `reader` to `writer`, telling archive read errors (corrupt data,
/// CRC mismatch) apart from write errors on `out_path`.
fn copy_entry(
    archive: &Path,
    entry: &str,
    reader: &mut impl Read,
    writer: &mut impl Write,
    out_path: &Path,
) -> Result<u64, AssetError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad_archive(archive, Some(entry), e)),
        };
        writer.write_all(&buf[..n]).map_err(io_err(out_path))?;
        total += n as u64;
    }
}

type Zip = zip::ZipArchive<BufReader<File>>;

fn open_zip(zip: &Path) -> Result<Zip, AssetError> {
    let file = File::open(zip).map_err(io_err(zip))?;
    zip::ZipArchive::new(BufReader::new(file)).map_err(|e| bad_archive(zip, None, e))
}

/// What a zip entry is, after the safety checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZipKind {
    Dir,
    File,
}

/// Checks one entry's name and type; returns its normalised name and kind.
fn check_zip_entry<R: Read>(
    zip: &Path,
    entry: &zip::read::ZipFile<'_, R>,
) -> Result<(String, ZipKind), AssetError> {
    let raw = entry
        .name()
        .map_err(|e| bad_archive(zip, None, e))?
        .into_owned();
    let name = safe_relative_name(&raw).map_err(|reason| unsafe_entry(zip, &raw, reason))?;
    if entry.is_symlink() {
        return Err(unsafe_entry(zip, &raw, "symbolic link"));
    }
    const S_IFMT: u32 = 0o170000;
    if let Some(mode) = entry.unix_mode() {
        match mode & S_IFMT {
            0 | 0o100000 | 0o040000 => {}
            _ => return Err(unsafe_entry(zip, &raw, "device, fifo or socket")),
        }
    }
    let kind = if entry.is_dir() {
        ZipKind::Dir
    } else {
        ZipKind::File
    };
    if kind == ZipKind::File && name.is_empty() {
        return Err(unsafe_entry(zip, &raw, "file entry without a name"));
    }
    Ok((name, kind))
}

/// Extracts one member of a zip (wheel) to `dest` atomically (temp file in
/// `dest`'s directory, fsync, rename; an existing `dest` is replaced). The
/// member is refused if its name is absolute, contains `..`, or it is a
/// symlink or device.
pub fn extract_zip_member(zip: &Path, member: &str, dest: &Path) -> Result<(), AssetError> {
    safe_relative_name(member).map_err(|reason| unsafe_entry(zip, member, reason))?;
    let mut archive = open_zip(zip)?;
    let mut entry = match archive.by_name(member) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(AssetError::MissingMember {
                archive: zip.to_path_buf(),
                member: member.to_string(),
            })
        }
        Err(e) => return Err(bad_archive(zip, None, e)),
    };
    let (_, kind) = check_zip_entry(zip, &entry)?;
    if kind != ZipKind::File {
        return Err(unsafe_entry(zip, member, "not a regular file"));
    }
    write_atomic_with(dest, |file, tmp| {
        copy_entry(zip, member, &mut entry, file, tmp).map(|_| ())
    })
}

/// Extracts a whole zip into `dest_dir` (which must not exist) and returns
/// the extracted file paths (under `dest_dir`, in archive order). Every entry
/// is checked before anything is written; any unsafe entry (absolute, `..`,
/// symlink, device, duplicate) fails the whole extraction with
/// [`AssetError::UnsafeArchiveEntry`] naming it. Extraction goes to a temp dir
/// renamed at the end: nothing is left behind on failure.
pub fn extract_zip_all(zip: &Path, dest_dir: &Path) -> Result<Vec<PathBuf>, AssetError> {
    let mut archive = open_zip(zip)?;
    let mut plan = Vec::with_capacity(archive.len());
    let mut seen = HashSet::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| bad_archive(zip, None, e))?;
        let (name, kind) = check_zip_entry(zip, &entry)?;
        if kind == ZipKind::File && !seen.insert(name.clone()) {
            return Err(unsafe_entry(zip, &name, "duplicate entry"));
        }
        plan.push((index, name, kind));
    }

    let mut files = Vec::new();
    build_dir_atomic(dest_dir, |tmp| {
        for (index, name, kind) in &plan {
            let out = tmp.join(name);
            if *kind == ZipKind::Dir {
                fs::create_dir_all(&out).map_err(io_err(&out))?;
                continue;
            }
            ensure_parent(&out)?;
            let mut entry = archive
                .by_index(*index)
                .map_err(|e| bad_archive(zip, Some(name), e))?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .map_err(io_err(&out))?;
            copy_entry(zip, name, &mut entry, &mut file, &out)?;
            files.push(dest_dir.join(name));
        }
        Ok::<(), AssetError>(())
    })?;
    Ok(files)
}

/// Iterates a `.tgz` (npm pack output): calls `visit(name, bytes)` for each
/// regular file whose normalised name (e.g. `package/emoji.json`) passes
/// `keep`. Any unsafe entry (absolute, `..`, hard or symbolic link, device,
/// fifo, sparse or unknown type) fails with an error naming it, whether kept
/// or not. Nothing is written to disk.
pub fn visit_tgz(
    tgz: &Path,
    keep: impl Fn(&str) -> bool,
    mut visit: impl FnMut(&str, Vec<u8>) -> Result<(), AssetError>,
) -> Result<(), AssetError> {
    use tar::EntryType;
    let file = File::open(tgz).map_err(io_err(tgz))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    for entry in archive.entries().map_err(|e| bad_archive(tgz, None, e))? {
        let mut entry = entry.map_err(|e| bad_archive(tgz, None, e))?;
        let raw_bytes = entry.path_bytes().into_owned();
        let raw = match String::from_utf8(raw_bytes) {
            Ok(s) => s,
            Err(e) => {
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                return Err(unsafe_entry(tgz, &lossy, "name is not UTF-8"));
            }
        };
        let name = safe_relative_name(&raw).map_err(|reason| unsafe_entry(tgz, &raw, reason))?;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                if name.is_empty() {
                    return Err(unsafe_entry(tgz, &raw, "file entry without a name"));
                }
                if !keep(&name) {
                    continue;
                }
                let size = entry.header().size().unwrap_or(0);
                let mut bytes = Vec::with_capacity(size.min(64 << 20) as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| bad_archive(tgz, Some(&raw), e))?;
                visit(&name, bytes)?;
            }
            EntryType::Directory
            | EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            EntryType::Symlink => return Err(unsafe_entry(tgz, &raw, "symbolic link")),
            EntryType::Link => return Err(unsafe_entry(tgz, &raw, "hard link")),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(unsafe_entry(tgz, &raw, "device or fifo"))
            }
            other => {
                return Err(unsafe_entry(
                    tgz,
                    &raw,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ))
            }
        }
    }
    Ok(())
}

/// Unpacks a `.deb`'s data into `dest_dir` (which must not exist) via
/// `dpkg-deb -x`, atomically (temp dir + rename). Without `dpkg-deb`:
/// [`AssetError::ClientMissing`]. Only used on hash-verified pins.
pub fn extract_deb(deb: &Path, dest_dir: &Path) -> Result<(), AssetError> {
    if super::clients::find_program("dpkg-deb").is_none() {
        return Err(AssetError::ClientMissing {
            client: "dpkg-deb".into(),
            hint: format!(
                "install dpkg (Debian/Ubuntu base system), or unpack {} by hand \
                 (`ar x` then `tar -xf data.tar.*`) into {}",
                deb.display(),
                dest_dir.display()
            ),
        });
    }
    build_dir_atomic(dest_dir, |tmp| {
        let output = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(tmp)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err(deb))?;
        if output.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = text.trim_end().lines().collect();
        Err(AssetError::ClientFailed {
            command: format!("dpkg-deb -x {} {}", deb.display(), tmp.display()),
            status: output.status.to_string(),
            stderr_tail: lines[lines.len().saturating_sub(20)..].join("\n"),
            hint: format!(
                "is {} a valid .deb? delete it to re-download",
                deb.display()
            ),
        })
    })
}

#[cfg(test)]
mod tests;
