//! The one rule for user-chosen names that become file or directory names
//! (`dataset.name`, ensemble names): ASCII letters, digits, `-`, `_` and
//! `.`, not empty and not starting with `.` (no hidden files, no `..`).

/// Characters a name may use, for error messages.
pub const ALLOWED: &str = "letters, digits, '-', '_', '.'";

/// Whether `name` is safe as one path component.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::is_safe_name;

    #[test]
    fn accepts_plain_names_and_refuses_paths() {
        for ok in ["emoji40", "run-2.b_c", "A1"] {
            assert!(is_safe_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "..", "a/b", "a b", "é", "a\\b"] {
            assert!(!is_safe_name(bad), "{bad}");
        }
    }
}
