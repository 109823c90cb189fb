//! Stage 1 (images): what `ovr score` is pointed at, as a [`Dataset`]: a
//! class-folder tree (labelled by folder), a flat folder of images
//! (unlabelled), or a list file with one `path` or `path,label` per line
//! (relative paths are taken from the list's folder).

use std::path::{Path, PathBuf};

use super::dataset::{
    origin, scan_image_folder, ClassId, Dataset, DatasetError, ImageSource, Item, Split,
    IMAGE_EXTENSIONS,
};

/// Images to score and whether they carry true labels.
#[derive(Debug, Clone)]
pub struct ScoreInput {
    pub dataset: Dataset,
    pub labelled: bool,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

fn item(path: PathBuf, label: ClassId) -> Item {
    Item {
        key: path.display().to_string(),
        source: ImageSource::File(path),
        label,
        split: Split::Test,
    }
}

/// Reads a directory or a list file into a dataset for scoring.
pub fn scoring_input(name: &str, input: &Path) -> Result<ScoreInput, DatasetError> {
    let io = |source| DatasetError::Io {
        path: input.to_path_buf(),
        source,
    };
    if input.is_dir() {
        let has_class_dirs = std::fs::read_dir(input)
            .map_err(io)?
            .filter_map(|e| e.ok())
            .any(|e| e.path().is_dir());
        if has_class_dirs {
            let mut ds = scan_image_folder(name, input, 0.0, 0.0, 0)?;
            ds.items.iter_mut().for_each(|it| it.split = Split::Test);
            return Ok(ScoreInput {
                dataset: ds,
                labelled: true,
            });
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(input)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let (images, ignored): (Vec<_>, Vec<_>) = files.into_iter().partition(|p| is_image(p));
        return Ok(ScoreInput {
            dataset: Dataset {
                name: name.to_string(),
                classes: vec!["?".into()],
                items: images.into_iter().map(|p| item(p, ClassId(0))).collect(),
                ignored: ignored
                    .into_iter()
                    .map(|p| {
                        let ext = p
                            .extension()
                            .map(|e| e.to_string_lossy().to_ascii_lowercase());
                        let why = super::dataset::ignored_reason(ext.as_deref());
                        (p, why)
                    })
                    .collect(),
                origin: origin("score-input", input),
            },
            labelled: false,
        });
    }
    let text = std::fs::read_to_string(input).map_err(io)?;
    let base = input.parent().unwrap_or(Path::new("."));
    let mut rows: Vec<(PathBuf, Option<String>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || (i == 0 && line.eq_ignore_ascii_case("path,label"))
        {
            continue;
        }
        let (p, label) = match line.rsplit_once(',') {
            Some((p, l)) if !l.trim().is_empty() => (p.trim(), Some(l.trim().to_string())),
            _ => (line, None),
        };
        let p = Path::new(p);
        rows.push((
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            },
            label,
        ));
    }
    let labelled = !rows.is_empty() && rows.iter().all(|r| r.1.is_some());
    let mut classes: Vec<String> = if labelled {
        rows.iter().filter_map(|r| r.1.clone()).collect()
    } else {
        vec!["?".into()]
    };
    classes.sort();
    classes.dedup();
    let items = rows
        .into_iter()
        .map(|(p, l)| {
            let id = l.and_then(|l| classes.binary_search(&l).ok()).unwrap_or(0);
            item(p, ClassId(id as u32))
        })
        .collect();
    Ok(ScoreInput {
        dataset: Dataset {
            name: name.to_string(),
            classes,
            items,
            ignored: Vec::new(),
            origin: origin("score-input", input),
        },
        labelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn class_folders_are_labelled_and_all_test() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("cat/1.png"));
        touch(&d.path().join("dog/2.png"));
        let s = scoring_input("s", d.path()).unwrap();
        assert!(s.labelled);
        assert_eq!(s.dataset.classes, vec!["cat", "dog"]);
        assert!(s.dataset.items.iter().all(|i| i.split == Split::Test));
    }

    #[test]
    fn flat_folder_is_unlabelled() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("a.jpg"));
        touch(&d.path().join("notes.txt"));
        let s = scoring_input("s", d.path()).unwrap();
        assert!(!s.labelled);
        assert_eq!(s.dataset.items.len(), 1);
        assert_eq!(s.dataset.ignored.len(), 1);
    }

    #[test]
    fn list_file_with_labels_and_relative_paths() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join("list.csv");
        std::fs::write(&list, "path,label\nimgs/a.png,dog\n/abs/b.png,cat\n").unwrap();
        let s = scoring_input("s", &list).unwrap();
        assert!(s.labelled);
        assert_eq!(s.dataset.classes, vec!["cat", "dog"]);
        assert_eq!(
            s.dataset.items[0].key,
            d.path().join("imgs/a.png").display().to_string()
        );
        assert_eq!(s.dataset.items[0].label, ClassId(1));
        std::fs::write(&list, "a.png\nb.png,cat\n").unwrap();
        assert!(
            !scoring_input("s", &list).unwrap().labelled,
            "partly labelled lists are unlabelled"
        );
    }
}
