//! Heads stage (cached features -> trained linear heads), first step:
//! cached features -> standardized features.
//!
//! Per-feature mean and population standard deviation (ddof 0, as
//! scikit-learn's `StandardScaler`), fitted on the training split only and
//! applied to every split. A feature whose std is below 1e-6 (constant on the
//! training split) gets std 1, so it is only centered.

use super::HeadError;

/// Per-feature standardization fitted on the training split only. std below 1e-6 -> 1.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Standard deviations below this count as a constant feature (std -> 1).
pub const MIN_STD: f64 = 1e-6;

impl Standardizer {
    /// [`Standardizer::try_fit`], panicking on an error: for tests only (production code
    /// handles the error).
    #[cfg(test)]
    pub fn fit(x: &[f32], n: usize, d: usize) -> Self {
        Self::try_fit(x, n, d).unwrap_or_else(|e| panic!("Standardizer::fit: {e}"))
    }

    /// Fits on `x`, row-major `[n, d]` (two passes, f64 accumulation).
    pub fn try_fit(x: &[f32], n: usize, d: usize) -> Result<Self, HeadError> {
        if n == 0 {
            return Err(HeadError::Empty { field: "x" });
        }
        if d == 0 {
            return Err(HeadError::Shape {
                field: "d",
                expected: ">= 1 feature".into(),
                got: "0".into(),
            });
        }
        if x.len() != n * d {
            return Err(HeadError::Shape {
                field: "x",
                expected: format!("{n} x {d} = {} values", n * d),
                got: format!("{} values", x.len()),
            });
        }
        Self::fit_blocks(n, d, |visit| {
            visit(x);
            Ok(())
        })
    }

    /// [`Standardizer::try_fit`] over rows that come in blocks: `pass(visit)`
    /// must call `visit` with every row-major block of `d`-feature rows, in
    /// row order; it is called twice (means, then deviations). Features
    /// are summed row by row in f64 (in parallel over feature groups), so
    /// the result does not depend on the blocks: bitwise [`Standardizer::try_fit`].
    pub fn fit_blocks<E>(
        n: usize,
        d: usize,
        mut pass: impl FnMut(&mut dyn FnMut(&[f32])) -> Result<(), E>,
    ) -> Result<Self, E> {
        let mut sum = vec![0.0f64; d];
        pass(&mut |block| accumulate(&mut sum, block, d, |v, _| v))?;
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let mut ss = vec![0.0f64; d];
        pass(&mut |block| {
            accumulate(&mut ss, block, d, |v, j| {
                let c = v - mean[j];
                c * c
            })
        })?;
        let std = ss
            .iter()
            .map(|s| {
                let sd = (s / n as f64).sqrt();
                // NaN (non-finite input) stays NaN so that it is not hidden.
                if sd < MIN_STD {
                    1.0
                } else {
                    sd as f32
                }
            })
            .collect();
        Ok(Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        })
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// [`Standardizer::try_apply`], panicking on an error: for tests only (production code
    /// handles the error).
    #[cfg(test)]
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        self.try_apply(x)
            .unwrap_or_else(|e| panic!("Standardizer::apply: {e}"))
    }

    /// Standardizes row-major rows of `dim()` features: `(x - mean) / std`.
    pub fn try_apply(&self, x: &[f32]) -> Result<Vec<f32>, HeadError> {
        let mut out = x.to_vec();
        self.apply_in_place(&mut out)?;
        Ok(out)
    }

    /// [`Standardizer::try_apply`] without a copy.
    pub fn apply_in_place(&self, x: &mut [f32]) -> Result<(), HeadError> {
        let d = self.dim();
        if self.std.len() != d {
            return Err(HeadError::Shape {
                field: "standardizer.std",
                expected: format!("{d} values (as mean)"),
                got: format!("{} values", self.std.len()),
            });
        }
        if d == 0 || !x.len().is_multiple_of(d) {
            return Err(HeadError::Shape {
                field: "x",
                expected: format!("a multiple of {d} values (rows of {d} features)"),
                got: format!("{} values", x.len()),
            });
        }
        for row in x.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }
}

/// Features per rayon task in [`accumulate`].
const FEATURE_GROUP: usize = 64;

/// `acc[j] += term(x[i][j], j)` over the rows of `block`, rows in order.
fn accumulate(acc: &mut [f64], block: &[f32], d: usize, term: impl Fn(f64, usize) -> f64 + Sync) {
    use rayon::prelude::*;
    acc.par_chunks_mut(FEATURE_GROUP)
        .enumerate()
        .for_each(|(g, a)| {
            let first = g * FEATURE_GROUP;
            for row in block.chunks_exact(d) {
                let cols = &row[first..first + a.len()];
                for (j, (s, &v)) in a.iter_mut().zip(cols).enumerate() {
                    *s += term(f64::from(v), first + j);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_statistics_only_and_constant_feature() {
        // 3 rows x 3 features; feature 1 is constant.
        let train = [1.0, 5.0, 10.0, 3.0, 5.0, 20.0, 5.0, 5.0, 30.0];
        let s = Standardizer::fit(&train, 3, 3);
        assert_eq!(s.mean, vec![3.0, 5.0, 20.0]);
        let sd0 = (8.0f64 / 3.0).sqrt() as f32;
        assert!((s.std[0] - sd0).abs() < 1e-6);
        assert_eq!(s.std[1], 1.0);
        let z = s.apply(&train);
        assert_eq!(z[1], 0.0);
        assert!((z[0] + 2.0 / sd0).abs() < 1e-6);
        // Another split is transformed with the *training* statistics.
        let other = [3.0, 7.0, 20.0];
        let zo = s.apply(&other);
        assert_eq!(zo, vec![0.0, 2.0, 0.0]);
        // And fitting on the other split would give different statistics.
        assert_ne!(Standardizer::fit(&other, 1, 3), s);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = Standardizer::try_fit(&[1.0, 2.0, 3.0], 2, 2).unwrap_err();
        assert!(e.to_string().starts_with("x:"), "{e}");
        let e = Standardizer::try_fit(&[], 0, 2).unwrap_err();
        assert!(e.to_string().starts_with("x:"), "{e}");
        let s = Standardizer::fit(&[1.0, 2.0], 1, 2);
        let e = s.try_apply(&[1.0, 2.0, 3.0]).unwrap_err();
        assert!(e.to_string().starts_with("x:"), "{e}");
    }
}
