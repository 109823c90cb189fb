//! Tests of the calibration-uncertainty figures against the numpy oracle
//! (`tests/fixtures/metrics/calibration_uncertainty.json`, written by
//! `tests/reference/make_calibration_uncertainty_fixtures.py`). The oracle
//! draws with its own RNG, so the Rust figures (20,000 resamples) are
//! compared within Monte Carlo error: the perfect-calibration mean against
//! the exact Poisson-binomial value within 4 standard errors, percentiles
//! within 0.15 bootstrap standard deviations (about 5 standard errors of
//! the difference of two 20,000-draw percentile estimates).

use super::calibration_uncertainty::{calibration_uncertainty, paired_calibration_bootstrap};
use super::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    bins: usize,
    resamples: usize,
    k: usize,
    labels: Vec<u32>,
    probs_a: Vec<f32>,
    probs_b: Vec<f32>,
    ece_a: f64,
    perfect_exact_mean: f64,
    perfect_mc_std: f64,
    perfect_p95: f64,
    p_value: f64,
    boot_low: f64,
    boot_high: f64,
    boot_std: f64,
    diff_observed: Vec<f64>,
    diff_low: Vec<f64>,
    diff_high: Vec<f64>,
    diff_std: Vec<f64>,
}

fn fixture() -> Fixture {
    let text = include_str!("../../tests/fixtures/metrics/calibration_uncertainty.json");
    serde_json::from_str(text).expect("fixture parses")
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    eprintln!(
        "{what}: got {got:.5}, reference {want:.5}, |gap| {:.5} (tol {tol:.5})",
        (got - want).abs()
    );
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} vs {want} (tol {tol})"
    );
}

#[test]
fn ece_interval_and_perfect_reference_match_the_oracle() {
    let f = fixture();
    let u = calibration_uncertainty(&f.labels, &f.probs_a, f.k, f.bins, f.resamples, 7).unwrap();
    close("observed ECE", u.ece.observed, f.ece_a, 1e-9);
    let plain = calibration_error(&f.labels, &f.probs_a, f.k, f.bins).unwrap();
    close(
        "observed ECE vs calibration_error",
        u.ece.observed,
        plain.ece,
        1e-9,
    );
    let se = f.perfect_mc_std / (f.resamples as f64).sqrt();
    close(
        "perfect mean vs exact",
        u.perfect_ece_mean,
        f.perfect_exact_mean,
        4.0 * se,
    );
    close(
        "perfect p95",
        u.perfect_ece_p95,
        f.perfect_p95,
        0.15 * f.perfect_mc_std,
    );
    // p ~ 0.2: Monte Carlo SE of either estimate ~ 0.003.
    close("p-value", u.p_value, f.p_value, 0.02);
    close("bootstrap low", u.ece.low, f.boot_low, 0.15 * f.boot_std);
    close("bootstrap high", u.ece.high, f.boot_high, 0.15 * f.boot_std);
}

#[test]
fn paired_differences_match_the_oracle() {
    let f = fixture();
    let d = paired_calibration_bootstrap(
        &f.labels,
        &f.probs_a,
        &f.probs_b,
        f.k,
        f.bins,
        f.resamples,
        11,
    )
    .unwrap();
    for (j, (name, iv)) in [("ece", d.ece), ("nll", d.nll), ("brier", d.brier)]
        .into_iter()
        .enumerate()
    {
        close(
            &format!("{name} observed"),
            iv.observed,
            f.diff_observed[j],
            1e-9,
        );
        close(
            &format!("{name} low"),
            iv.low,
            f.diff_low[j],
            0.15 * f.diff_std[j],
        );
        close(
            &format!("{name} high"),
            iv.high,
            f.diff_high[j],
            0.15 * f.diff_std[j],
        );
    }
}

#[test]
fn a_perfectly_calibrated_sample_is_not_rejected_and_a_bad_one_is() {
    // Labels drawn from the model's own probabilities: calibrated by construction.
    let f = fixture();
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let labels: Vec<u32> = f
        .probs_a
        .chunks_exact(f.k)
        .map(|row| {
            let u: f32 = rng.random();
            let mut acc = 0.0;
            row.iter()
                .position(|&p| {
                    acc += p;
                    u < acc
                })
                .unwrap_or(f.k - 1) as u32
        })
        .collect();
    let good = calibration_uncertainty(&labels, &f.probs_a, f.k, f.bins, 2000, 1).unwrap();
    assert!(good.p_value > 0.05, "calibrated sample rejected: {good:?}");
    // Every row's top probability pushed to ~1 while accuracy stays: over-confident.
    let sharp: Vec<f32> = f
        .probs_a
        .chunks_exact(f.k)
        .flat_map(|row| {
            let top = super::argmax(row);
            (0..f.k).map(move |j| {
                if j == top {
                    0.995
                } else {
                    0.005 / (f.k - 1) as f32
                }
            })
        })
        .collect();
    let bad = calibration_uncertainty(&labels, &sharp, f.k, f.bins, 2000, 1).unwrap();
    assert!(
        bad.p_value < 0.01 && bad.ece.observed > bad.perfect_ece_p95,
        "{bad:?}"
    );
}

#[test]
fn zero_resamples_and_bad_rows_are_named() {
    let f = fixture();
    let e = calibration_uncertainty(&f.labels, &f.probs_a, f.k, f.bins, 0, 1).unwrap_err();
    assert!(e.to_string().contains("resamples"), "{e}");
    let short = &f.probs_b[..f.probs_b.len() - f.k];
    let e =
        paired_calibration_bootstrap(&f.labels, &f.probs_a, short, f.k, f.bins, 10, 1).unwrap_err();
    assert!(e.to_string().contains("probs_b"), "{e}");
}
