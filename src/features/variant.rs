//! Stage 2 (features): feature variants built from cached per-backbone
//! features, between extraction and the heads. `features = "logits"` maps
//! each backbone's cached penultimate vectors through its own ImageNet
//! classifier (no new forward pass); a list of backbones concatenates their
//! vectors row by row (each backbone still extracted once and cached on its
//! own). The result is an ordinary [`FeatureSet`] whose `backbone` and
//! `weights_sha256` name every part, so ensembles trained on it check their
//! inputs like any other.

use crate::util::choice::Choice;
use candle_core::{Device, Tensor};

use super::backbone::{Backbone, BackboneError};
use super::store::FeatureSet;

/// Which output of a backbone becomes the feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Pooled penultimate activations (1280-d for Lite): the default.
    Penultimate,
    /// The 1000 ImageNet class scores (the classic question's inputs).
    Logits,
}

impl crate::util::choice::Choice for FeatureKind {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("penultimate", FeatureKind::Penultimate),
        ("logits", FeatureKind::Logits),
    ];
    const UNKNOWN: &'static str = "unknown feature kind";
}

#[derive(Debug, thiserror::Error)]
pub enum VariantError {
    #[error(transparent)]
    Backbone(#[from] BackboneError),
    #[error("backbone `{backbone}` has no ImageNet classifier: `backbone.features = \"logits\"` needs one (use \"penultimate\")")]
    NoClassifier { backbone: String },
    #[error("cannot stack features of `{split}`: {detail}")]
    Stack { split: String, detail: String },
}

/// `set` (penultimate features of `backbone`) with its rows replaced by
/// `kind`'s vectors; the backbone id gains a `:logits` suffix.
pub fn apply_kind(
    backbone: &dyn Backbone,
    set: FeatureSet,
    kind: FeatureKind,
) -> Result<FeatureSet, VariantError> {
    if kind == FeatureKind::Penultimate {
        return Ok(set);
    }
    let fwd = |source| BackboneError::Forward {
        name: backbone.id().to_string(),
        source: Box::new(source),
    };
    let x = Tensor::from_slice(&set.features, (set.len(), set.dim), &Device::Cpu).map_err(fwd)?;
    let z = backbone
        .classify_features(&x)?
        .ok_or_else(|| VariantError::NoClassifier {
            backbone: backbone.id().to_string(),
        })?;
    let dim = z.dims().get(1).copied().unwrap_or(0);
    let features = z
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(fwd)?;
    Ok(FeatureSet {
        backbone: format!("{}:{}", set.backbone, kind.name()),
        dim,
        features,
        ..set
    })
}

/// Concatenates the columns of `parts` (one split of one dataset, one part
/// per backbone) for the keys every part has, in the first part's order.
/// Ids and hashes are joined with `+`.
pub fn concat(parts: Vec<FeatureSet>) -> Result<FeatureSet, VariantError> {
    let mut it = parts.into_iter();
    let Some(first) = it.next() else {
        return Err(VariantError::Stack {
            split: "?".into(),
            detail: "no feature sets".into(),
        });
    };
    let rest: Vec<FeatureSet> = it.collect();
    if rest.is_empty() {
        return Ok(first);
    }
    let stack = |detail: String| VariantError::Stack {
        split: first.split.clone(),
        detail,
    };
    let mut index: Vec<std::collections::HashMap<&str, usize>> = Vec::new();
    for p in &rest {
        if p.classes != first.classes || p.split != first.split || p.dataset != first.dataset {
            return Err(stack(format!(
                "`{}` and `{}` come from different datasets, splits or class lists",
                first.backbone, p.backbone
            )));
        }
        index.push(
            p.keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect(),
        );
    }
    let dim = first.dim + rest.iter().map(|p| p.dim).sum::<usize>();
    let mut out = FeatureSet {
        backbone: std::iter::once(first.backbone.as_str())
            .chain(rest.iter().map(|p| p.backbone.as_str()))
            .collect::<Vec<_>>()
            .join("+"),
        weights_sha256: std::iter::once(first.weights_sha256.as_str())
            .chain(rest.iter().map(|p| p.weights_sha256.as_str()))
            .collect::<Vec<_>>()
            .join("+"),
        dim,
        keys: Vec::new(),
        labels: Vec::new(),
        features: Vec::new(),
        ..first.clone()
    };
    for (i, key) in first.keys.iter().enumerate() {
        let rows: Option<Vec<usize>> = index.iter().map(|m| m.get(key.as_str()).copied()).collect();
        // A key missing from a part: that backbone could not read the image.
        let Some(rows) = rows else { continue };
        out.keys.push(key.clone());
        out.labels.push(first.labels[i]);
        out.features
            .extend_from_slice(&first.features[i * first.dim..(i + 1) * first.dim]);
        for (p, &r) in rest.iter().zip(&rows) {
            out.features
                .extend_from_slice(&p.features[r * p.dim..(r + 1) * p.dim]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(backbone: &str, keys: &[&str], dim: usize, base: f32) -> FeatureSet {
        FeatureSet {
            dataset: "d".into(),
            split: "train".into(),
            backbone: backbone.into(),
            weights_sha256: format!("{backbone}-hash"),
            classes: vec!["a".into(), "b".into()],
            keys: keys.iter().map(|k| k.to_string()).collect(),
            labels: (0..keys.len() as u32).map(|i| i % 2).collect(),
            dim,
            features: (0..keys.len() * dim).map(|i| base + i as f32).collect(),
        }
    }

    #[test]
    fn concat_joins_columns_by_key_in_the_first_order() {
        let a = set("a", &["x", "y", "z"], 2, 0.0);
        let b = set("b", &["z", "x"], 1, 100.0);
        let c = concat(vec![a, b]).unwrap();
        assert_eq!(c.keys, vec!["x", "z"]);
        assert_eq!(c.dim, 3);
        assert_eq!(c.labels, vec![0, 0]);
        // x: a row 0 = [0, 1], b row 1 = [101]; z: a row 2 = [4, 5], b row 0 = [100].
        assert_eq!(c.features, vec![0.0, 1.0, 101.0, 4.0, 5.0, 100.0]);
        assert_eq!(c.backbone, "a+b");
        assert_eq!(c.weights_sha256, "a-hash+b-hash");
    }

    #[test]
    fn concat_refuses_different_class_lists() {
        let a = set("a", &["x"], 1, 0.0);
        let mut b = set("b", &["x"], 1, 0.0);
        b.classes.reverse();
        let e = concat(vec![a, b]).unwrap_err().to_string();
        assert!(e.contains("class lists"), "{e}");
    }

    #[test]
    fn a_single_part_is_returned_unchanged() {
        let a = set("a", &["x", "y"], 2, 0.0);
        assert_eq!(concat(vec![a.clone()]).unwrap(), a);
    }
}
