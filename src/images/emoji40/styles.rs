//! Stage 1 (images), emoji40's two vendor styles: which images belong to one
//! emoji (so cross-validation folds keep both styles together) and keeping
//! one style only (`dataset.style`, the style-shift example).

use super::STYLES;
use crate::images::dataset::Dataset;

/// Keeps one vendor's images (`dataset.style`); the export directory is
/// keyed by the style too, so the subset never overwrites the full set.
pub fn keep_style(ds: &mut Dataset, style: &str) {
    let suffix = format!("-{style}.png");
    ds.items.retain(|it| it.key.ends_with(&suffix));
    ds.origin.push_str(&format!(";style={style}"));
}

/// A group id per item key: the images of one emoji in its two styles
/// (`<emoji>-twitter.png`, `<emoji>-google.png` in one folder) share one;
/// every other key is a group of its own. Used so that cross-validation
/// inside a split never scores one style of an emoji on a fit that saw the
/// other (emoji40's splits are made by emoji for the same reason).
pub fn groups(keys: &[String]) -> Vec<u64> {
    use std::collections::HashMap;
    let mut ids: HashMap<&str, u64> = HashMap::new();
    keys.iter()
        .map(|k| {
            let base = STYLES
                .iter()
                .find_map(|s| k.strip_suffix(&format!("-{s}.png")))
                .unwrap_or(k);
            let next = ids.len() as u64;
            *ids.entry(base).or_insert(next)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::dataset::scan_image_folder;

    #[test]
    fn one_style_is_kept_and_the_export_key_changes() {
        let dir = tempfile::tempdir().unwrap();
        for c in ["a", "b"] {
            for e in ["1F600", "1F601", "1F602"] {
                for s in STYLES {
                    let p = dir.path().join(c).join(format!("{e}-{s}.png"));
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    image::RgbImage::new(4, 4).save(&p).unwrap();
                }
            }
        }
        let full = scan_image_folder("e", dir.path(), 0.0, 0.0, 1).unwrap();
        let mut google = full.clone();
        keep_style(&mut google, "google");
        assert_eq!(google.items.len() * 2, full.items.len());
        assert!(google
            .items
            .iter()
            .all(|it| it.key.ends_with("-google.png")));
        assert_ne!(google.export_key(), full.export_key());
        let g = groups(&full.items.iter().map(|i| i.key.clone()).collect::<Vec<_>>());
        let distinct: std::collections::HashSet<_> = g.iter().collect();
        assert_eq!(distinct.len() * 2, full.items.len(), "two styles per group");
    }
}
