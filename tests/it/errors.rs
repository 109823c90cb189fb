//! Errors as `ovr` prints them: `error: <context>`, then each cause once on
//! its own `caused by:` line (each layer's text is its own context; the
//! cause comes from `source()`), and the exit code of the kind of error.

use super::common::{ovr, text};

/// The stderr lines, checked to be `error: ...` then only `caused by: ...`
/// lines, none repeating another's text.
fn chain_lines(stderr: &[u8]) -> Vec<String> {
    let err = text(stderr);
    let lines: Vec<String> = err.lines().map(str::to_string).collect();
    assert!(lines.len() >= 2, "no cause printed:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    let causes: Vec<&str> = lines[1..]
        .iter()
        .map(|l| {
            l.strip_prefix("  caused by: ")
                .unwrap_or_else(|| panic!("not a cause line: {l:?}\n{err}"))
        })
        .collect();
    for (i, c) in causes.iter().enumerate() {
        assert!(!c.is_empty(), "{err}");
        assert_eq!(err.matches(c).count(), 1, "cause {i} printed twice:\n{err}");
    }
    lines
}

#[test]
fn truncated_ensemble_manifest_names_the_file_then_the_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let ens = dir.path().join("ens");
    std::fs::create_dir_all(&ens).unwrap();
    let manifest = ens.join("manifest.json");
    std::fs::write(&manifest, br#"{"format": 1, "name": "e", "clas"#).unwrap();
    let out = ovr(
        &[
            "score",
            "--ensemble",
            ens.to_str().unwrap(),
            dir.path().join("images").to_str().unwrap(),
        ],
        &dir.path().join("cache"),
    );
    let lines = chain_lines(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{lines:#?}");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains(&*manifest.to_string_lossy()) && lines[0].contains("malformed"),
        "{lines:#?}"
    );
    assert!(lines[1].contains("EOF while parsing"), "{lines:#?}");
    assert!(
        !lines[0].contains("EOF"),
        "the cause is in the context: {lines:#?}"
    );
}

#[test]
fn missing_config_file_is_a_usage_error_with_the_os_cause() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("nope.toml");
    let out = ovr(
        &["--config", cfg.to_str().unwrap(), "extract"],
        &dir.path().join("cache"),
    );
    let lines = chain_lines(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{lines:#?}");
    assert!(lines[0].contains(&*cfg.to_string_lossy()), "{lines:#?}");
    let cause = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.to_lowercase().contains("no such file") || l.contains(&cause)),
        "{lines:#?}"
    );
}
