//! Calibration stage, isotonic regression: one binary specialist's raw
//! held-out logits -> a non-decreasing step-linear map to [0, 1].
//!
//! Matches scikit-learn's `IsotonicRegression(increasing=True,
//! out_of_bounds='clip', y_min=0, y_max=1)`: zero-weight samples dropped,
//! samples sorted by score, tied scores pooled into one point (weighted mean
//! label, summed weight; like scikit-learn, scores closer than 1e-15 to the
//! first score of a run count as tied), weighted pool-adjacent-violators,
//! values clipped to [0, 1], and interior points whose value equals both
//! neighbours' dropped (they do not change the interpolant). Prediction is
//! linear interpolation between the kept points, clipped to the end values
//! outside the fitted score range.

use serde::{Deserialize, Serialize};

use super::{BinaryData, CalibrationError};

/// Fitted thresholds: `x` strictly increasing scores, `y` non-decreasing
/// probabilities (scikit-learn's `X_thresholds_`, `y_thresholds_`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
}

/// scikit-learn's `np.finfo(np.float64).resolution`: the tie tolerance.
const TIE_EPS: f64 = 1e-15;

impl Isotonic {
    /// Fits on held-out raw scores and labels with optional nonnegative
    /// sample weights (zero-weight samples are ignored).
    pub fn fit(
        scores: &[f32],
        labels: &[bool],
        weights: Option<&[f32]>,
    ) -> Result<Self, CalibrationError> {
        let d = BinaryData::new(scores, labels, weights)?;
        Ok(fit_data(&d))
    }

    /// Calibrated probability of the positive class (NaN for a NaN score or
    /// an empty calibrator).
    pub fn prob(&self, s: f32) -> f32 {
        self.prob_f64(f64::from(s)) as f32
    }

    /// [`Self::prob`] in f64: `np.interp(clip(s, x[0], x[-1]), x, y)`.
    pub fn prob_f64(&self, s: f64) -> f64 {
        let m = self.x.len().min(self.y.len());
        if m == 0 || s.is_nan() {
            return f64::NAN;
        }
        let (x, y) = (&self.x[..m], &self.y[..m]);
        let xf = |i: usize| f64::from(x[i]);
        let yf = |i: usize| f64::from(y[i]);
        if s <= xf(0) {
            return yf(0);
        }
        if s >= xf(m - 1) {
            return yf(m - 1);
        }
        // First index with x > s; 1 <= j <= m - 1 here.
        let j = x.partition_point(|&v| f64::from(v) <= s);
        let i = j - 1;
        if s == xf(i) {
            return yf(i);
        }
        let slope = (yf(j) - yf(i)) / (xf(j) - xf(i));
        slope * (s - xf(i)) + yf(i)
    }
}

fn fit_data(d: &BinaryData) -> Isotonic {
    // Sort by (score, label) as scikit-learn's `np.lexsort((y, X))`.
    let mut order: Vec<usize> = (0..d.s.len()).collect();
    order.sort_by(|&i, &j| d.s[i].total_cmp(&d.s[j]).then(d.y[i].cmp(&d.y[j])));

    // Pool tied scores: (x, Σ w·y, Σ w).
    let mut points: Vec<(f64, f64, f64)> = Vec::new();
    for &i in &order {
        let (s, w) = (d.s[i], d.w[i]);
        let wy = if d.y[i] { w } else { 0.0 };
        match points.last_mut() {
            Some(last) if s - last.0 < TIE_EPS => {
                last.1 += wy;
                last.2 += w;
            }
            _ => points.push((s, wy, w)),
        }
    }

    // Weighted pool-adjacent-violators (non-decreasing): blocks of
    // (Σ w·y, Σ w, number of points).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(points.len());
    for &(_, wy, w) in &points {
        let mut cur = (wy, w, 1usize);
        while let Some(&prev) = blocks.last() {
            if prev.0 / prev.1 > cur.0 / cur.1 {
                blocks.pop();
                cur = (prev.0 + cur.0, prev.1 + cur.1, prev.2 + cur.2);
            } else {
                break;
            }
        }
        blocks.push(cur);
    }
    let fitted: Vec<f64> = blocks
        .iter()
        .flat_map(|&(wy, w, count)| std::iter::repeat_n((wy / w).clamp(0.0, 1.0), count))
        .collect();

    // Keep the ends and every point whose value differs from a neighbour's.
    let m = points.len();
    let mut x = Vec::with_capacity(m);
    let mut y = Vec::with_capacity(m);
    for i in 0..m {
        let keep = i == 0 || i + 1 == m || fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1];
        if keep {
            // Scores came from f32, so this cast is exact.
            x.push(points[i].0 as f32);
            y.push(fitted[i] as f32);
        }
    }
    Isotonic { x, y }
}
