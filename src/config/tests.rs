//! Tests of config resolution: defaults, overrides, and errors that name the field.

use super::*;
use crate::util::chain::Chained;

fn load_str(text: &str, overrides: &[&str]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, text).unwrap();
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::load(Some(&p), &o)
}

#[test]
fn defaults_are_emoji40_lite0() {
    let c = Config::load(None, &[]).unwrap();
    assert_eq!(c.dataset.kind, DatasetKind::Emoji40);
    assert_eq!(c.backbone.name, "efficientnet-lite0");
    assert_eq!(c.extract.batch_size, 32);
    assert_eq!(c.seed, 42);
    assert_eq!(c.extract.resize, ResizeMode::CenterCrop);
}

#[test]
fn unknown_key_is_named_with_allowed_keys() {
    let err = load_str("[extract]\nbatchsize = 3\n", &[])
        .unwrap_err()
        .chained();
    assert!(err.contains("batchsize"), "{err}");
    assert!(err.contains("batch_size"), "{err}");
}

#[test]
fn bad_enum_value_lists_allowed_values() {
    let err = load_str("[extract]\nresize = \"stretch\"\n", &[])
        .unwrap_err()
        .chained();
    assert!(
        err.contains("extract.resize") && err.contains("center-crop, squash"),
        "{err}"
    );
    let err = load_str("[backbone]\nname = \"vgg16\"\n", &[])
        .unwrap_err()
        .chained();
    assert!(
        err.contains("backbone.name") && err.contains("efficientnet-lite0"),
        "{err}"
    );
}

#[test]
fn out_of_range_numbers_are_rejected() {
    let err = load_str("[extract]\nbatch_size = 0\n", &[])
        .unwrap_err()
        .chained();
    assert!(err.contains("extract.batch_size"), "{err}");
    let err = load_str("[dataset]\nval_fraction = 0.6\ntest_fraction = 0.5\n", &[])
        .unwrap_err()
        .chained();
    assert!(err.contains("val_fraction"), "{err}");
    let err = load_str("[dataset]\nval_fraction = -0.1\n", &[])
        .unwrap_err()
        .chained();
    assert!(err.contains("dataset.val_fraction"), "{err}");
}

#[test]
fn overrides_win_over_the_file() {
    let c = load_str(
        "seed = 1\n[extract]\nbatch_size = 8\n",
        &["extract.batch_size=64", "seed=7"],
    )
    .unwrap();
    assert_eq!(c.extract.batch_size, 64);
    assert_eq!(c.seed, 7);
    let c = load_str(
        "",
        &["dataset.kind=image-folder", "dataset.root=/data/pets"],
    )
    .unwrap();
    assert_eq!(
        c.dataset.kind,
        DatasetKind::ImageFolder {
            root: "/data/pets".into()
        }
    );
    assert_eq!(c.dataset.name, "pets");
}

#[test]
fn malformed_override_is_an_error() {
    assert!(matches!(
        load_str("", &["extract.batch_size"]),
        Err(ConfigError::BadOverride { .. })
    ));
    assert!(matches!(
        load_str("", &["=3"]),
        Err(ConfigError::BadOverride { .. })
    ));
    // A wrong type through an override is caught by the raw layer.
    let err = load_str("", &["extract.batch_size=many"])
        .unwrap_err()
        .chained();
    assert!(err.contains("batch_size"), "{err}");
}

#[test]
fn image_folder_needs_root() {
    let err = load_str("[dataset]\nkind = \"image-folder\"\n", &[])
        .unwrap_err()
        .chained();
    assert!(err.contains("dataset.root"), "{err}");
}

#[test]
fn shipped_configs_resolve() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) == Some("toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let origin = p.display().to_string();
            if text.contains("[study]") {
                let s = study::parse_study(&text, &origin, &[]);
                s.unwrap_or_else(|e| panic!("{origin}: {e}"));
                // A study file is not a run config, and says so.
                let e = Config::load(Some(&p), &[]).unwrap_err().chained();
                assert!(e.contains("ovr study"), "{e}");
            } else {
                Config::load(Some(&p), &[]).unwrap_or_else(|e| panic!("{origin}: {e}"));
            }
            n += 1;
        }
    }
    assert!(n >= 2, "expected the example configs in configs/");
}

#[test]
fn a_list_of_backbones_is_stacked_in_order() {
    let c = load_str(
        "[backbone]\nname = [\"efficientnet-lite0\", \"efficientnet-lite2\"]\nfeatures = \"logits\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        c.backbone.names(),
        vec!["efficientnet-lite0", "efficientnet-lite2"]
    );
    assert_eq!(c.backbone.features, FeatureKind::Logits);
    let parts = c.backbone.parts();
    assert_eq!(parts.len(), 2);
    assert!(parts
        .iter()
        .all(|p| p.stack.is_empty() && p.features == FeatureKind::Penultimate));
}

#[test]
fn bad_feature_kinds_and_backbone_lists_name_the_field() {
    let e = load_str("[backbone]\nfeatures = \"scores\"\n", &[])
        .unwrap_err()
        .chained();
    assert!(
        e.contains("backbone.features") && e.contains("penultimate, logits"),
        "{e}"
    );
    let e = load_str("[backbone]\nname = []\n", &[])
        .unwrap_err()
        .chained();
    assert!(
        e.contains("backbone.name") && e.contains("non-empty"),
        "{e}"
    );
    let e = load_str(
        "[backbone]\nname = [\"efficientnet-lite0\", \"efficientnet-lite0\"]\n",
        &[],
    )
    .unwrap_err()
    .chained();
    assert!(e.contains("listed twice"), "{e}");
    let e = load_str(
        "[backbone]\nname = [\"efficientnet-lite0\", \"resnet18\"]\n",
        &[],
    )
    .unwrap_err()
    .chained();
    assert!(e.contains("resnet18") && e.contains("stacked"), "{e}");
}

#[test]
fn extract_preprocessing_fields_resolve_and_bad_values_name_the_field() {
    let c = Config::load(None, &[]).unwrap();
    assert_eq!(c.extract.filter, ResizeFilter::Bilinear);
    assert!(c.extract.exif_orientation && c.extract.jpeg_dct_scaling);
    assert_eq!(c.extract.max_pixels, DEFAULT_MAX_PIXELS);
    let c = load_str(
        "[extract]\nfilter = \"bicubic\"\nexif_orientation = false\njpeg_dct_scaling = false\nmax_pixels = 5000000\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.extract.filter, ResizeFilter::Bicubic);
    assert!(!c.extract.exif_orientation && !c.extract.jpeg_dct_scaling);
    assert_eq!(c.extract.max_pixels, 5_000_000);
    let c = load_str("", &["extract.exif_orientation=false"]).unwrap();
    assert!(!c.extract.exif_orientation, "--set override");
    for (text, field, allowed) in [
        (
            "filter = \"lanczos\"",
            "extract.filter",
            "bicubic, bilinear",
        ),
        ("max_pixels = 10", "extract.max_pixels", "4096..="),
        ("max_pixels = -1", "extract.max_pixels", "4096..="),
    ] {
        let err = load_str(&format!("[extract]\n{text}\n"), &[])
            .unwrap_err()
            .chained();
        assert!(err.contains(field) && err.contains(allowed), "{err}");
    }
    let err = load_str("[extract]\nexif_orientation = \"yes\"\n", &[])
        .unwrap_err()
        .chained();
    assert!(err.contains("exif_orientation"), "{err}");
}

#[test]
fn run_emoji40_resolves_to_what_configs_emoji40_sets() {
    // `ovr run emoji40` (defaults + the named dataset) is the README's
    // step-by-step job with `--config configs/emoji40.toml`.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/emoji40.toml");
    let from_file = Config::load(Some(&file), &[]).unwrap();
    let cli = CliSettings {
        dataset: Some(DatasetChoice::Named("emoji40".into())),
        ..CliSettings::default()
    };
    let from_run = Config::load_cli(None, &[], &cli).unwrap();
    let json = |c: &Config| serde_json::to_string(c).unwrap();
    assert_eq!(json(&from_run), json(&from_file));
    // A non-default flag does change it.
    let cli = CliSettings {
        lanes: Some(1),
        ..cli
    };
    let other = Config::load_cli(None, &[], &cli).unwrap();
    assert_ne!(json(&other), json(&from_file));
    assert_eq!(other.train.lanes, 1);
}
