//! Unit tests of the learning-curve pieces that need no training: nested
//! subsets, the spec checks, and the slope / summaries against the numpy
//! oracle (`tests/fixtures/curves/slopes.json`, written by
//! `tests/reference/make_curve_fixtures.py`).

use super::fit::{ls_slope, slope, Stat};
use super::subset::{class_orders, subset_rows, subset_seed, take};
use super::CurveSpec;

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    fractions: Vec<f64>,
    n: usize,
    fit: usize,
    f1: Vec<Vec<f64>>,
    kept: Vec<usize>,
    per_seed: Vec<Option<f64>>,
    gain_per_doubling: Option<f64>,
    std: Option<f64>,
    mean: Vec<f64>,
    sd: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn slopes_and_summaries_match_numpy() {
    let f: Fixture =
        serde_json::from_str(include_str!("../../tests/fixtures/curves/slopes.json")).unwrap();
    assert_eq!(f.cases.len(), 6);
    for c in &f.cases {
        let images: Vec<usize> = c.fractions.iter().map(|&fr| take(c.n, fr, 1)).collect();
        assert_eq!(images, c.kept, "{}: kept images", c.name);
        let s = slope(&c.fractions, &images, c.n, &c.f1, c.fit);
        assert_eq!(s.per_seed.len(), c.per_seed.len(), "{}", c.name);
        for (a, b) in s.per_seed.iter().zip(&c.per_seed) {
            match (a, b) {
                (Some(a), Some(b)) => close(*a, *b, &c.name),
                (None, None) => {}
                _ => panic!("{}: per-seed slope {a:?} vs {b:?}", c.name),
            }
        }
        match (s.gain_per_doubling, c.gain_per_doubling) {
            (Some(a), Some(b)) => close(a, b, &c.name),
            (None, None) => {}
            (a, b) => panic!("{}: gain {a:?} vs {b:?}", c.name),
        }
        match (s.std, c.std) {
            (Some(a), Some(b)) => close(a, b, &c.name),
            (None, None) => {}
            (a, b) => panic!("{}: std {a:?} vs {b:?}", c.name),
        }
        assert_eq!(s.fitted_fractions, c.fractions[c.fractions.len() - c.fit..]);
        for (i, row) in c.f1.iter().enumerate() {
            let st = Stat::of(row);
            close(st.mean, c.mean[i], &c.name);
            close(st.std, c.sd[i], &c.name);
            close(st.min, c.min[i], &c.name);
            close(st.max, c.max[i], &c.name);
        }
    }
    let flat = f.cases.iter().find(|c| c.name == "flat").unwrap();
    assert!(flat.gain_per_doubling.is_some_and(|g| g.abs() < 1e-12));
}

#[test]
fn slope_edge_cases() {
    assert_eq!(ls_slope(&[1.0], &[2.0]), None);
    assert_eq!(ls_slope(&[1.0, 1.0], &[2.0, 3.0]), None);
    close(
        ls_slope(&[-2.0, -1.0, 0.0], &[0.5, 0.6, 0.7]).unwrap(),
        0.1,
        "line",
    );
    assert_eq!(Stat::of(&[0.5]).std, 0.0);
    assert!(Stat::of(&[]).mean.is_nan());
}

#[test]
fn subsets_are_nested_seeded_and_keep_every_class() {
    // 3 classes of 40, 7 and 1 rows, interleaved.
    let mut labels = Vec::new();
    for i in 0..48u32 {
        labels.push(match i % 6 {
            0..=3 => 0,
            4 => 1,
            _ => 2,
        });
    }
    labels.truncate(47);
    let n: Vec<usize> = (0..3)
        .map(|c| labels.iter().filter(|&&y| y == c).count())
        .collect();
    let fractions = [0.1, 0.25, 0.5, 1.0];
    for s in 0..3 {
        let orders = class_orders(&labels, 3, subset_seed(42, s));
        let mut prev: Vec<usize> = Vec::new();
        for &f in &fractions {
            let rows = subset_rows(&orders, f, 1);
            assert!(prev.iter().all(|r| rows.contains(r)), "nested at {f}");
            for c in 0..3u32 {
                let kept = rows.iter().filter(|&&r| labels[r] == c).count();
                assert_eq!(kept, take(n[c as usize], f, 1));
                assert!(kept >= 1, "class {c} kept at {f}");
            }
            prev = rows;
        }
        assert_eq!(prev, (0..labels.len()).collect::<Vec<_>>(), "100 % is all");
    }
    let a = subset_rows(&class_orders(&labels, 3, subset_seed(42, 0)), 0.25, 1);
    let b = subset_rows(&class_orders(&labels, 3, subset_seed(42, 1)), 0.25, 1);
    let c = subset_rows(&class_orders(&labels, 3, subset_seed(43, 0)), 0.25, 1);
    assert_ne!(a, b, "another curve seed, another subset");
    assert_ne!(a, c, "another run seed, another subset");
    assert_eq!(
        a,
        subset_rows(&class_orders(&labels, 3, subset_seed(42, 0)), 0.25, 1),
        "same seeds, same subset"
    );
    assert_eq!(take(10, 0.25, 1), 3, "half rounds away from zero");
    assert_eq!(take(10, 0.01, 3), 3, "floor");
    assert_eq!(take(2, 0.5, 3), 2, "never more than the class has");
}

#[test]
fn specs_are_checked_and_sorted() {
    let s = CurveSpec::new(vec![1.0, 0.5, 0.25, 0.5], 2).unwrap();
    assert_eq!(s.fractions, vec![0.25, 0.5, 1.0]);
    for (f, seeds, want) in [
        (vec![0.0, 1.0], 1, "(0, 1]"),
        (vec![0.5, 1.5], 1, "(0, 1]"),
        (vec![f64::NAN, 1.0], 1, "(0, 1]"),
        (vec![1.0], 1, "at least two"),
        (vec![1.0, 1.0], 1, "at least two"),
        (vec![0.5, 1.0], 0, "--seeds"),
    ] {
        let e = CurveSpec::new(f, seeds).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}
