//! Stage 1 (images), emoji40's build steps inside the temp tree: the
//! manifest entries of the chosen emojis, and each style's PNGs copied out
//! of its npm tarball (missing images recorded, not fatal).

use crate::util::choice::Choice;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use super::{
    check_file_field, Emoji40Error, EmojiClass, Manifest, ManifestClass, ManifestEmoji, IMAGE_SIZE,
};
use crate::assets::archive::visit_tgz;
use crate::assets::cache::AssetError;
use crate::images::dataset::Split;

/// The manifest's emojis (images still to come) and classes with their
/// split counts; checks the fields that become file names.
pub(super) fn manifest_entries(
    classes: &[EmojiClass],
    splits: &[Vec<Split>],
) -> Result<(Vec<ManifestEmoji>, Vec<ManifestClass>), Emoji40Error> {
    let mut emojis = Vec::new();
    let mut manifest_classes = Vec::new();
    for (class, class_splits) in classes.iter().zip(splits) {
        let mut per_split = [0usize; 3];
        for (e, &split) in class.emojis.iter().zip(class_splits) {
            let hex = e.unified.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            check_file_field("unified", &e.unified, hex)?;
            check_file_field("image", &e.image, e.image.ends_with(".png"))?;
            per_split[split as usize] += 1;
            emojis.push(ManifestEmoji {
                unified: e.unified.clone(),
                name: e.name.clone(),
                class: class.name.clone(),
                split,
                images: Vec::new(),
            });
        }
        manifest_classes.push(ManifestClass {
            name: class.name.clone(),
            subcategory: class.subcategory.clone(),
            emojis: class.emojis.len(),
            emojis_per_split: per_split,
        });
    }
    Ok((emojis, manifest_classes))
}

/// Writes one style's PNGs (`image_of[i]`: emoji i's image name) from its
/// tarball into the temp tree `tmp`, recording them and the missing ones in
/// `manifest`.
pub(super) fn unpack_style(
    tmp: &Path,
    style: &str,
    tarball: &Path,
    image_of: &[&str],
    manifest: &mut Manifest,
) -> Result<(), Emoji40Error> {
    // tarball member -> indices of the emojis using that image
    let mut wanted: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, image) in image_of.iter().enumerate() {
        let member = format!("package/img/{style}/{IMAGE_SIZE}/{image}");
        wanted.entry(member).or_default().push(i);
    }
    let mut found = HashSet::new();
    visit_tgz(
        tarball,
        |name| wanted.contains_key(name),
        |name, bytes| {
            if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
                return Err(AssetError::BadArchive {
                    archive: tarball.to_path_buf(),
                    detail: format!("entry `{name}` is not a PNG"),
                });
            }
            for &i in wanted.get(name).into_iter().flatten() {
                let e = &mut manifest.emojis[i];
                let rel = format!("{}/{}/{}-{style}.png", e.split.name(), e.class, e.unified);
                // Inside the temp tree: a plain write (no per-file fsync).
                let out = tmp.join(&rel);
                fs::write(&out, &bytes).map_err(|source| AssetError::Io {
                    path: out.clone(),
                    source,
                })?;
                if !e.images.contains(&rel) {
                    e.images.push(rel);
                    manifest.images_per_split[e.split as usize] += 1;
                }
            }
            found.insert(name.to_string());
            Ok(())
        },
    )?;
    let mut missing: Vec<String> = wanted
        .keys()
        .filter(|m| !found.contains(*m))
        .map(|m| format!("{style}/{}", m.rsplit('/').next().unwrap_or(m)))
        .collect();
    missing.sort();
    manifest.missing_images.extend(missing);
    Ok(())
}
