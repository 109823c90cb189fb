//! Tests of the shift figures on cases with known answers: the same rows on
//! both sides lose nothing; a shifted set the approach gets all wrong loses
//! exactly its in-domain accuracy, and the intervals follow.

use super::compare::ApproachInput;
use super::shift::{shift, Labelled};

fn approach(name: &str, labels: &[u32], k: usize, right: bool) -> ApproachInput {
    let preds: Vec<u32> = labels
        .iter()
        .map(|&y| if right { y } else { (y + 1) % k as u32 })
        .collect();
    let probs = preds
        .iter()
        .flat_map(|&p| {
            (0..k).map(move |j| {
                if j == p as usize {
                    0.7
                } else {
                    0.3 / (k - 1) as f32
                }
            })
        })
        .collect();
    ApproachInput {
        name: name.into(),
        description: String::new(),
        probs,
        preds,
    }
}

#[test]
fn no_shift_loses_nothing_and_a_total_miss_loses_the_accuracy() {
    let k = 3;
    let labels: Vec<u32> = (0..90).map(|i| (i % 3) as u32).collect();
    let good = vec![approach("a", &labels, k, true)];
    let same = Labelled {
        labels: &labels,
        approaches: &good,
    };
    let r = shift(&same, &same, k, 300, 1).unwrap();
    assert_eq!(r.len(), 1);
    let d = &r[0].accuracy_drop;
    assert_eq!(d.observed, 0.0);
    assert!(d.low <= 0.0 && d.high >= 0.0, "{d:?}");
    let bad = vec![approach("a", &labels, k, false)];
    let shifted = Labelled {
        labels: &labels,
        approaches: &bad,
    };
    let r = shift(&same, &shifted, k, 300, 1).unwrap();
    let x = &r[0];
    assert_eq!((x.in_domain.accuracy, x.shifted.accuracy), (1.0, 0.0));
    assert_eq!(
        (
            x.accuracy_drop.observed,
            x.accuracy_drop.low,
            x.accuracy_drop.high
        ),
        (1.0, 1.0, 1.0)
    );
    assert!(x.nll_rise.observed > 0.0 && x.nll_rise.low > 0.0);
    // Confidence 0.7 everywhere: ECE 30 points in domain, 70 shifted.
    assert!((x.in_domain.ece - 30.0).abs() < 1e-3 && (x.shifted.ece - 70.0).abs() < 1e-3);
    assert!((x.ece_rise.observed - 40.0).abs() < 1e-3);
    // Approaches missing from the shifted side are left out, not an error.
    let other = vec![approach("b", &labels, k, true)];
    let r = shift(
        &same,
        &Labelled {
            labels: &labels,
            approaches: &other,
        },
        k,
        10,
        1,
    )
    .unwrap();
    assert!(r.is_empty());
    assert!(shift(&same, &same, k, 0, 1).is_err());
}
