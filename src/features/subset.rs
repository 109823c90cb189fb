//! Stage 2 (features), after the store: a cached split's rows restricted to
//! some classes. `train --holdout-classes K` drops K seeded classes from
//! train and val before any head sees them; `compare` splits a test set
//! into the ensemble's classes (labels in the ensemble's order) and the rest
//! (unknown to it).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::store::FeatureSet;

/// The classes left out: `k` of `classes` by a seeded shuffle, listed in
/// class order. The seed is the run seed, so one config always holds out
/// the same classes.
pub fn holdout_classes(classes: &[String], k: usize, seed: u64) -> Vec<String> {
    let mut idx: Vec<usize> = (0..classes.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0068_6f6c_646f_7574);
    idx.shuffle(&mut rng);
    let mut chosen: Vec<usize> = idx.into_iter().take(k).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| classes[i].clone()).collect()
}

/// (rows whose class is in `known`, labels renumbered to `known`'s order;
/// the other rows, labels as they were).
pub fn split_by_classes(set: &FeatureSet, known: &[String]) -> (FeatureSet, FeatureSet) {
    let map: Vec<Option<u32>> = set
        .classes
        .iter()
        .map(|c| known.iter().position(|k| k == c).map(|i| i as u32))
        .collect();
    let (mut inside, mut outside) = (empty(set, known.to_vec()), empty(set, set.classes.clone()));
    for (i, &y) in set.labels.iter().enumerate() {
        let row = &set.features[i * set.dim..(i + 1) * set.dim];
        let (target, label) = match map[y as usize] {
            Some(j) => (&mut inside, j),
            None => (&mut outside, y),
        };
        target.keys.push(set.keys[i].clone());
        target.labels.push(label);
        target.features.extend_from_slice(row);
    }
    (inside, outside)
}

fn empty(set: &FeatureSet, classes: Vec<String>) -> FeatureSet {
    FeatureSet {
        dataset: set.dataset.clone(),
        split: set.split.clone(),
        backbone: set.backbone.clone(),
        weights_sha256: set.weights_sha256.clone(),
        classes,
        keys: Vec::new(),
        labels: Vec::new(),
        dim: set.dim,
        features: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> FeatureSet {
        let classes: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let labels = vec![0, 1, 2, 3, 2, 1];
        FeatureSet {
            dataset: "d".into(),
            split: "test".into(),
            backbone: "b".into(),
            weights_sha256: "0".into(),
            keys: (0..6).map(|i| format!("k{i}")).collect(),
            features: labels
                .iter()
                .flat_map(|&l| [l as f32, 10.0 + l as f32])
                .collect(),
            labels,
            classes,
            dim: 2,
        }
    }

    #[test]
    fn rows_follow_their_class_and_labels_are_renumbered() {
        let s = set();
        let known = vec!["c".to_string(), "a".to_string()];
        let (inside, outside) = split_by_classes(&s, &known);
        assert_eq!(inside.classes, known);
        assert_eq!(inside.labels, vec![1, 0, 0], "a -> 1, c -> 0");
        assert_eq!(inside.keys, vec!["k0", "k2", "k4"]);
        assert_eq!(inside.features, vec![0.0, 10.0, 2.0, 12.0, 2.0, 12.0]);
        assert_eq!(outside.labels, vec![1, 3, 1]);
        assert_eq!(outside.classes, s.classes);
        assert_eq!(outside.features.len(), 6);
    }

    #[test]
    fn the_holdout_choice_is_seeded_and_in_class_order() {
        let classes: Vec<String> = (0..40).map(|i| format!("c{i:02}")).collect();
        let a = holdout_classes(&classes, 5, 42);
        assert_eq!(a, holdout_classes(&classes, 5, 42));
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_ne!(a, holdout_classes(&classes, 5, 43));
        assert!(holdout_classes(&classes, 0, 1).is_empty());
    }
}
