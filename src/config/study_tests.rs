//! Tests of study files: arms resolve to the configs `ovr train` would use,
//! and mistakes name the arm and field.

use super::*;
use crate::features::variant::FeatureKind;
use crate::util::chain::Chained;

const BASE: &str = r#"
seed = 7
[dataset]
kind = "emoji40"
[train]
c_grid = [0.01]
[study]
reference = "c"
resamples = 500
[[study.arms]]
name = "a"
backbone = ["efficientnet-lite0", "efficientnet-lite2"]
features = "logits"
head = "multiclass-mlp"
set = ["train.mlp.lr=0.0001", "train.mlp.max_epochs=400"]
[[study.arms]]
name = "c"
head = "multiclass-linear"
[[study.arms]]
name = "f"
head = "finetune"
finetune = { blocks = 2, lr = 0.0002 }
"#;

#[test]
fn arms_resolve_to_checked_configs() {
    let s = parse_study(BASE, "t.toml", &["train.max_iter=50".into()]).unwrap();
    assert_eq!(s.arms.len(), 3);
    assert_eq!(s.reference, 1);
    assert_eq!(s.resamples, 500);
    let a = &s.arms[0];
    assert_eq!(a.head, ArmHead::MulticlassMlp);
    assert_eq!(a.config.backbone.names().len(), 2);
    assert_eq!(a.config.backbone.features, FeatureKind::Logits);
    assert_eq!(
        a.config.train.multiclass_head,
        crate::config::train::HeadKind::Mlp
    );
    assert_eq!(a.config.train.mlp.lr, 1e-4);
    assert_eq!(a.config.train.mlp.max_epochs, 400);
    // The base sections and the command line's overrides reach every arm.
    for arm in &s.arms {
        assert_eq!(arm.config.seed, 7);
        assert_eq!(arm.config.train.c_grid, vec![0.01]);
        assert_eq!(arm.config.train.max_iter, 50);
    }
    assert_eq!(
        s.arms[1].config.backbone.names(),
        vec!["efficientnet-lite0"]
    );
    let f = s.arms[2].finetune.as_ref().unwrap();
    assert_eq!((f.blocks, f.lr), (2, 2e-4));
    assert_eq!(f.epochs, FinetuneSpec::default().epochs);
}

#[test]
fn mistakes_name_the_arm_and_field() {
    let bad_head = BASE.replace("head = \"multiclass-linear\"", "head = \"svm\"");
    let e = parse_study(&bad_head, "t.toml", &[]).unwrap_err().chained();
    assert!(
        e.contains("study.arms[1].head") && e.contains("finetune"),
        "{e}"
    );
    let bad_ref = BASE.replace("reference = \"c\"", "reference = \"z\"");
    let e = parse_study(&bad_ref, "t.toml", &[]).unwrap_err().chained();
    assert!(
        e.contains("study.reference") && e.contains("a, c, f"),
        "{e}"
    );
    let bad_set = BASE.replace("train.mlp.lr=0.0001", "train.mlp.rate=0.1");
    let e = parse_study(&bad_set, "t.toml", &[]).unwrap_err().chained();
    assert!(e.contains("arm `a`") && e.contains("rate"), "{e}");
    let bad_ft = BASE.replace("blocks = 2", "block = 2");
    let e = parse_study(&bad_ft, "t.toml", &[]).unwrap_err().chained();
    assert!(e.contains("block"), "{e}");
    let dup = BASE.replace("name = \"f\"", "name = \"a\"");
    let e = parse_study(&dup, "t.toml", &[]).unwrap_err().chained();
    assert!(e.contains("study.arms[2].name"), "{e}");
    let none = "[dataset]\nkind = \"emoji40\"\n";
    let e = parse_study(none, "t.toml", &[]).unwrap_err().chained();
    assert!(e.contains("study.arms"), "{e}");
}
