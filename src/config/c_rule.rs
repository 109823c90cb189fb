//! Config, checked layer for the C rule of `[train]` (`train.c_rule`,
//! `train.c_rule_folds`): how the ensemble stage picks each linear head's C
//! among the candidates scored on validation folds (`ensemble::select`).

use super::choice::choice;
use super::{invalid, ConfigError};

pub use crate::ensemble::params::CRule;

/// Default number of validation folds the spread is measured over.
pub const C_RULE_FOLDS_DEFAULT: usize = 5;

/// `train.c_rule` (default `best`) and `train.c_rule_folds` (2..=50, default 5).
pub fn resolve_c_rule(
    rule: Option<&str>,
    folds: Option<i64>,
) -> Result<(CRule, usize), ConfigError> {
    let rule = choice("train.c_rule", rule, CRule::Best, None)?;
    let folds = match folds {
        None => C_RULE_FOLDS_DEFAULT,
        Some(f) if (2..=50).contains(&f) => f as usize,
        Some(f) => {
            return Err(invalid(
                "train.c_rule_folds",
                f,
                "out of range",
                "an integer in 2..=50",
            ))
        }
    };
    Ok((rule, folds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_rule_defaults_spellings_and_ranges() {
        assert_eq!(resolve_c_rule(None, None).unwrap(), (CRule::Best, 5));
        assert_eq!(
            resolve_c_rule(Some("one-se"), Some(3)).unwrap(),
            (CRule::OneSe, 3)
        );
        let e = resolve_c_rule(Some("1se"), None).unwrap_err().to_string();
        assert!(e.contains("train.c_rule") && e.contains("one-se"), "{e}");
        let e = resolve_c_rule(None, Some(1)).unwrap_err().to_string();
        assert!(
            e.contains("train.c_rule_folds") && e.contains("2..=50"),
            "{e}"
        );
    }
}
