//! Tests of `archive`.

use super::*;
use zip::write::SimpleFileOptions;

enum Item<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

fn make_zip(path: &Path, items: &[Item<'_>]) {
    let mut w = zip::ZipWriter::new(File::create(path).unwrap());
    let opts = SimpleFileOptions::default();
    for item in items {
        match item {
            Item::File(name, data) => {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            Item::Symlink(name, target) => w.add_symlink(*name, *target, opts).unwrap(),
        }
    }
    w.finish().unwrap();
}

/// Names in `dir`, sorted (to check that nothing was left behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn assert_unsafe(err: AssetError, expected_entry: &str) {
    match err {
        AssetError::UnsafeArchiveEntry { entry, .. } => assert_eq!(entry, expected_entry),
        other => panic!("expected UnsafeArchiveEntry({expected_entry}), got {other:?}"),
    }
}

#[test]
fn names() {
    assert_eq!(safe_relative_name("a/./b//c").unwrap(), "a/b/c");
    assert_eq!(safe_relative_name("./").unwrap(), "");
    for bad in [
        "../evil",
        "a/../../b",
        "a/..",
        "/etc/x",
        "C:/x",
        "a\\b",
        "",
        "a\0b",
    ] {
        assert!(safe_relative_name(bad).is_err(), "{bad:?}");
    }
}

fn refused_zip(items: &[Item<'_>], bad: &str) {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("in.zip");
    make_zip(&zip, items);
    let out = dir.path().join("out");
    assert_unsafe(extract_zip_all(&zip, &out).unwrap_err(), bad);
    assert_eq!(listing(dir.path()), vec!["in.zip"], "nothing left behind");
    // Single-member extraction refuses it too.
    let dest = dir.path().join("member");
    assert_unsafe(extract_zip_member(&zip, bad, &dest).unwrap_err(), bad);
    assert_eq!(listing(dir.path()), vec!["in.zip"]);
    assert!(!Path::new("/tmp/evil-ovr-test").exists());
}

#[test]
fn zip_with_parent_dir_entry_is_refused() {
    refused_zip(
        &[Item::File("ok/a.txt", b"a"), Item::File("../evil", b"x")],
        "../evil",
    );
}

#[test]
fn zip_with_absolute_entry_is_refused() {
    refused_zip(
        &[
            Item::File("ok/a.txt", b"a"),
            Item::File("/tmp/evil-ovr-test", b"x"),
        ],
        "/tmp/evil-ovr-test",
    );
}

#[test]
fn zip_with_symlink_is_refused() {
    refused_zip(
        &[
            Item::File("ok/a.txt", b"a"),
            Item::Symlink("link", "/etc/passwd"),
        ],
        "link",
    );
}

#[test]
fn good_zip_member_and_whole_zip() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("good.whl");
    make_zip(
        &zip,
        &[
            Item::File("pkg/models/w.pth", b"weights"),
            Item::File("pkg/__init__.py", b""),
        ],
    );
    let dest = dir.path().join("w/out.pth");
    extract_zip_member(&zip, "pkg/models/w.pth", &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"weights");
    assert_eq!(listing(&dir.path().join("w")), vec!["out.pth"]);

    let err = extract_zip_member(&zip, "pkg/nope", &dest).unwrap_err();
    assert!(matches!(err, AssetError::MissingMember { ref member, .. } if member == "pkg/nope"));

    let out = dir.path().join("all");
    let files = extract_zip_all(&zip, &out).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(fs::read(out.join("pkg/models/w.pth")).unwrap(), b"weights");
    // Refuses to replace an existing directory.
    let err = extract_zip_all(&zip, &out).unwrap_err();
    assert!(matches!(err, AssetError::DestinationExists { .. }));
}

#[test]
fn corrupt_zip_is_bad_archive() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("bad.zip");
    fs::write(&zip, b"not a zip at all").unwrap();
    let err = extract_zip_member(&zip, "x", &dir.path().join("x")).unwrap_err();
    assert!(matches!(err, AssetError::Unreadable { .. }), "{err:?}");
}

/// A .tgz whose entries are written with raw header names (the tar crate's
/// own setters refuse `..`, which is what we need to test).
fn make_tgz(path: &Path, entries: &[(&str, tar::EntryType, &[u8])]) {
    let gz =
        flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_ustar();
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            h.set_link_name_literal("/etc/passwd").unwrap();
            h.set_size(0);
        } else {
            h.set_size(data.len() as u64);
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

fn visit_all(tgz: &Path) -> Result<Vec<(String, Vec<u8>)>, AssetError> {
    let mut seen = Vec::new();
    visit_tgz(
        tgz,
        |name| name.ends_with(".json"),
        |name, bytes| {
            seen.push((name.to_string(), bytes));
            Ok(())
        },
    )?;
    Ok(seen)
}

#[test]
fn tgz_visits_kept_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("p.tgz");
    make_tgz(
        &tgz,
        &[
            ("package/", tar::EntryType::Directory, b""),
            ("package/emoji.json", tar::EntryType::Regular, b"[1]"),
            ("package/img/a.png", tar::EntryType::Regular, b"png"),
        ],
    );
    let seen = visit_all(&tgz).unwrap();
    assert_eq!(
        seen,
        vec![("package/emoji.json".to_string(), b"[1]".to_vec())]
    );
}

#[test]
fn tgz_with_parent_dir_entry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("p.tgz");
    make_tgz(
        &tgz,
        &[
            ("package/a.json", tar::EntryType::Regular, b"{}"),
            ("../x", tar::EntryType::Regular, b"evil"),
        ],
    );
    assert_unsafe(visit_all(&tgz).unwrap_err(), "../x");
}

#[test]
fn tgz_with_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("p.tgz");
    make_tgz(&tgz, &[("package/link.json", tar::EntryType::Symlink, b"")]);
    assert_unsafe(visit_all(&tgz).unwrap_err(), "package/link.json");
    let tgz2 = dir.path().join("p2.tgz");
    make_tgz(&tgz2, &[("/abs.json", tar::EntryType::Regular, b"{}")]);
    assert_unsafe(visit_all(&tgz2).unwrap_err(), "/abs.json");
}

#[test]
fn deb_extraction_failure_leaves_nothing() {
    if crate::assets::clients::find_program("dpkg-deb").is_none() {
        eprintln!("dpkg-deb not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("bad.deb");
    fs::write(&deb, b"!<arch>\ngarbage").unwrap();
    let err = extract_deb(&deb, &dir.path().join("out")).unwrap_err();
    assert!(matches!(err, AssetError::ClientFailed { .. }), "{err:?}");
    assert_eq!(listing(dir.path()), vec!["bad.deb"]);
}
