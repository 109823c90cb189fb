//! Learning curves, step 3: summaries over seeds and the slope fit.
//! * [`Stat`]: mean, sample standard deviation (n − 1; 0 for one value),
//!   min and max of one quantity over the curve seeds.
//! * [`ls_slope`]: the ordinary least-squares slope of y on x, the same
//!   number as `numpy.polyfit(x, y, 1)[0]` (checked against
//!   `tests/fixtures/curves/slopes.json`, written by
//!   `tests/reference/make_curve_fixtures.py`). With x = log2 of the
//!   fraction of a class's images, it is the F1 gained per doubling.

use serde::Serialize;

/// One quantity over the curve seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 with one seed.
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// The summary of `v` (NaN everywhere when `v` is empty).
    pub fn of(v: &[f64]) -> Stat {
        if v.is_empty() {
            return Stat {
                mean: f64::NAN,
                std: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stat {
            mean,
            std,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// Least-squares slope of `y` against `x`; `None` with fewer than two
/// points or when every x is the same (no slope to fit).
pub fn ls_slope(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    if sxx <= 1e-12 * (1.0 + mx * mx) {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    Some(sxy / sxx)
}

/// The fitted slope of one class and approach: F1 gained per doubling of
/// the class's images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slope {
    /// Mean over seeds of each seed's slope (= the slope of the mean F1);
    /// `None` when the fitted fractions kept the same number of images.
    pub gain_per_doubling: Option<f64>,
    /// Standard deviation (n − 1) of the per-seed slopes.
    pub std: Option<f64>,
    pub per_seed: Vec<Option<f64>>,
    /// The nominal fractions fitted.
    pub fitted_fractions: Vec<f64>,
}

/// The slope over the last `fit_points` of `fractions`: x = log2 of the
/// fraction of the class's `n` images actually kept (`images[f]`), y = the
/// F1 of each seed (`f1[f][s]`).
pub fn slope(
    fractions: &[f64],
    images: &[usize],
    n: usize,
    f1: &[Vec<f64>],
    fit_points: usize,
) -> Slope {
    let first = fractions.len().saturating_sub(fit_points);
    let x: Vec<f64> = images[first..]
        .iter()
        .map(|&m| (m as f64 / n.max(1) as f64).log2())
        .collect();
    let seeds = f1.first().map_or(0, Vec::len);
    let per_seed: Vec<Option<f64>> = (0..seeds)
        .map(|s| {
            let y: Vec<f64> = f1[first..].iter().map(|row| row[s]).collect();
            ls_slope(&x, &y)
        })
        .collect();
    let known: Option<Vec<f64>> = per_seed.iter().copied().collect();
    let st = known.filter(|v| !v.is_empty()).map(|v| Stat::of(&v));
    Slope {
        gain_per_doubling: st.map(|s| s.mean),
        std: st.map(|s| s.std),
        per_seed,
        fitted_fractions: fractions[first..].to_vec(),
    }
}
