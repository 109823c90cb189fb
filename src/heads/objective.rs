//! Heads stage (cached features -> trained linear heads), host-side math:
//! losses, class weights, logits and the scikit-learn-form objectives of
//! trained heads.
//!
//! Everything here runs on plain `&[f32]` row-major matrices with f64
//! accumulation; it is independent of the candle training path, so the tests
//! use it as a second opinion on the objective a fit reports. The validation
//! losses (used to choose C per head) weight rows with the *validation*
//! split's own class counts: with `Balanced`, the binary loss is the mean of
//! the positives' mean loss and the negatives' mean loss, the softmax loss the
//! mean over the present classes of each class's mean cross-entropy.

use rayon::prelude::*;

use super::{ClassWeighting, HeadError, LinearFit};

/// Stable `l(y, z) = max(z, 0) - z y + log(1 + exp(-|z|))` (logistic loss on a logit).
#[inline]
pub fn logistic_loss(positive: bool, z: f64) -> f64 {
    let y = if positive { 1.0 } else { 0.0 };
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

/// Stable sigmoid.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Binary sample weights `(positive, negative)`; scikit-learn's
/// `class_weight='balanced'` is `n / (2 n_class)`. A side with no rows gets 0.
pub fn binary_weights(weighting: ClassWeighting, positives: usize, n: usize) -> (f64, f64) {
    match weighting {
        ClassWeighting::None => (1.0, 1.0),
        ClassWeighting::Balanced => {
            let side = |m: usize| {
                if m == 0 {
                    0.0
                } else {
                    n as f64 / (2.0 * m as f64)
                }
            };
            (side(positives), side(n - positives))
        }
    }
}

/// Multiclass sample weight per class: `n / (K n_k)` (balanced) or 1.
pub fn class_weights(weighting: ClassWeighting, counts: &[usize]) -> Vec<f64> {
    let n: usize = counts.iter().sum();
    let k = counts.len() as f64;
    counts
        .iter()
        .map(|&m| match weighting {
            ClassWeighting::None => 1.0,
            ClassWeighting::Balanced if m == 0 => 0.0,
            ClassWeighting::Balanced => n as f64 / (k * m as f64),
        })
        .collect()
}

/// Per-class row counts; an error names the first label `>= k`.
pub fn class_counts(labels: &[u32], k: usize) -> Result<Vec<usize>, HeadError> {
    let mut counts = vec![0usize; k];
    for (row, &label) in labels.iter().enumerate() {
        match counts.get_mut(label as usize) {
            Some(c) => *c += 1,
            None => return Err(HeadError::LabelOutOfRange { row, label, k }),
        }
    }
    Ok(counts)
}

/// Stable `log(sum_k exp(z_k)) - z_y` and the softmax probabilities in `p`.
#[inline]
pub fn softmax_ce(z: &[f64], y: usize, p: &mut [f64]) -> f64 {
    let zmax = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for (pk, &zk) in p.iter_mut().zip(z) {
        *pk = (zk - zmax).exp();
        sum += *pk;
    }
    for pk in p.iter_mut() {
        *pk /= sum;
    }
    zmax + sum.ln() - z[y]
}

fn check_rows(x: &[f32], n: usize, d: usize) -> Result<(), HeadError> {
    if x.len() != n * d {
        return Err(HeadError::Shape {
            field: "x",
            expected: format!("{n} x {d} = {} values", n * d),
            got: format!("{} values", x.len()),
        });
    }
    Ok(())
}

fn check_targets(n: usize, field: &'static str, got: usize) -> Result<(), HeadError> {
    if got != n {
        return Err(HeadError::Shape {
            field,
            expected: format!("{n} (one per row of x)"),
            got: got.to_string(),
        });
    }
    if n == 0 {
        return Err(HeadError::Empty { field: "x" });
    }
    Ok(())
}

fn check_fit(fit: &LinearFit, d: usize, k: usize) -> Result<(), HeadError> {
    if fit.b.len() != k {
        return Err(HeadError::Shape {
            field: "fit.b",
            expected: format!("{k} values"),
            got: format!("{} values", fit.b.len()),
        });
    }
    if fit.w.len() != d * k {
        return Err(HeadError::Shape {
            field: "fit.w",
            expected: format!("{d} x {k} = {} values", d * k),
            got: format!("{} values", fit.w.len()),
        });
    }
    Ok(())
}

/// Logits of a fit for row-major `[n, d]` rows (standardized like its training
/// data): a binary fit gives `[n]`, a softmax fit `[n, K]` row-major
/// (`K = fit.b.len()`). Accumulates in f64.
pub fn try_linear_logits(
    x: &[f32],
    n: usize,
    d: usize,
    fit: &LinearFit,
) -> Result<Vec<f32>, HeadError> {
    check_rows(x, n, d)?;
    let k = fit.b.len().max(1);
    check_fit(fit, d, k)?;
    Ok(logits_f64(x, n, d, fit)
        .into_iter()
        .map(|v| v as f32)
        .collect())
}

/// [`try_linear_logits`], panicking on an error: for tests only (production code
/// handles the error).
#[cfg(test)]
pub fn linear_logits(x: &[f32], n: usize, d: usize, fit: &LinearFit) -> Vec<f32> {
    try_linear_logits(x, n, d, fit).unwrap_or_else(|e| panic!("linear_logits: {e}"))
}

/// `[n, K]` logits in f64; shapes already checked.
fn logits_f64(x: &[f32], n: usize, d: usize, fit: &LinearFit) -> Vec<f64> {
    let k = fit.b.len();
    let mut out = vec![0.0f64; n * k];
    if k == 0 || d == 0 {
        return out;
    }
    out.par_chunks_mut(k)
        .zip(x.par_chunks(d))
        .for_each(|(o, row)| {
            for (oj, &b) in o.iter_mut().zip(&fit.b) {
                *oj = f64::from(b);
            }
            for (&xv, wrow) in row.iter().zip(fit.w.chunks_exact(k)) {
                for (oj, &w) in o.iter_mut().zip(wrow) {
                    *oj += f64::from(xv) * f64::from(w);
                }
            }
        });
    out
}

fn sq_norm(w: &[f32]) -> f64 {
    w.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

/// `(sum_i s_i l_i, sum_i s_i)` of a binary fit; `positive[i]`: row i is of the class.
fn binary_weighted_loss(
    x: &[f32],
    n: usize,
    d: usize,
    positive: &[bool],
    fit: &LinearFit,
    weighting: ClassWeighting,
) -> Result<(f64, f64), HeadError> {
    check_rows(x, n, d)?;
    check_targets(n, "positive", positive.len())?;
    check_fit(fit, d, 1)?;
    let z = logits_f64(x, n, d, fit);
    let positives = positive.iter().filter(|&&p| p).count();
    let (wp, wn) = binary_weights(weighting, positives, n);
    let mut loss = 0.0;
    let mut sw = 0.0;
    for (&zi, &pos) in z.iter().zip(positive) {
        let s = if pos { wp } else { wn };
        loss += s * logistic_loss(pos, zi);
        sw += s;
    }
    Ok((loss, sw))
}

/// scikit-learn-form objective `0.5 ||w||^2 + C sum_i s_i l(y_i, z_i)` of a
/// binary fit on row-major `[n, d]` rows, `positive[i]` = row i is of the
/// head's class; weights from these rows' counts. f64 throughout. Shape
/// mismatches are errors.
pub fn binary_objective(
    x: &[f32],
    n: usize,
    d: usize,
    positive: &[bool],
    fit: &LinearFit,
    c: f64,
    weighting: ClassWeighting,
) -> Result<f64, HeadError> {
    let (loss, _) = binary_weighted_loss(x, n, d, positive, fit, weighting)?;
    Ok(0.5 * sq_norm(&fit.w) + c * loss)
}

/// Weighted mean log-loss `sum s_i l_i / sum s_i` of a binary fit on a
/// validation split (`positive[i]` = row i is of the class), weights from that
/// split's own counts (see the module docs).
pub fn try_binary_val_loss(
    x: &[f32],
    n: usize,
    d: usize,
    positive: &[bool],
    fit: &LinearFit,
    weighting: ClassWeighting,
) -> Result<f64, HeadError> {
    let (loss, sw) = binary_weighted_loss(x, n, d, positive, fit, weighting)?;
    Ok(loss / sw)
}

/// [`try_binary_val_loss`], panicking on an error: for tests only (production code
/// handles the error).
#[cfg(test)]
pub fn binary_val_loss(
    x: &[f32],
    n: usize,
    d: usize,
    positive: &[bool],
    fit: &LinearFit,
    weighting: ClassWeighting,
) -> f64 {
    try_binary_val_loss(x, n, d, positive, fit, weighting)
        .unwrap_or_else(|e| panic!("binary_val_loss: {e}"))
}

/// `(sum_i s_i CE_i, sum_i s_i)` of a softmax fit over `k` classes.
fn softmax_weighted_loss(
    x: &[f32],
    n: usize,
    d: usize,
    k: usize,
    labels: &[u32],
    fit: &LinearFit,
    weighting: ClassWeighting,
) -> Result<(f64, f64), HeadError> {
    check_rows(x, n, d)?;
    check_targets(n, "labels", labels.len())?;
    check_fit(fit, d, k)?;
    let counts = class_counts(labels, k)?;
    let cw = class_weights(weighting, &counts);
    let z = logits_f64(x, n, d, fit);
    let mut p = vec![0.0; k];
    let mut loss = 0.0;
    let mut sw = 0.0;
    for (zr, &l) in z.chunks_exact(k).zip(labels) {
        let s = cw[l as usize];
        loss += s * softmax_ce(zr, l as usize, &mut p);
        sw += s;
    }
    Ok((loss, sw))
}

/// scikit-learn-form objective `0.5 ||W||_F^2 + C sum_i s_i CE_i` of a softmax
/// fit over `k` classes on row-major `[n, d]` rows, weights from these rows'
/// counts. f64 throughout. Shape mismatches and labels `>= k` are errors.
#[allow(clippy::too_many_arguments)]
pub fn softmax_objective(
    x: &[f32],
    n: usize,
    d: usize,
    k: usize,
    labels: &[u32],
    fit: &LinearFit,
    c: f64,
    weighting: ClassWeighting,
) -> Result<f64, HeadError> {
    let (loss, _) = softmax_weighted_loss(x, n, d, k, labels, fit, weighting)?;
    Ok(0.5 * sq_norm(&fit.w) + c * loss)
}

/// Weighted mean cross-entropy `sum s_i CE_i / sum s_i` of a softmax fit on a
/// validation split, weights from that split's own counts.
pub fn try_softmax_val_loss(
    x: &[f32],
    n: usize,
    d: usize,
    k: usize,
    labels: &[u32],
    fit: &LinearFit,
    weighting: ClassWeighting,
) -> Result<f64, HeadError> {
    let (loss, sw) = softmax_weighted_loss(x, n, d, k, labels, fit, weighting)?;
    Ok(loss / sw)
}

/// [`try_softmax_val_loss`], panicking on an error: for tests only (production code
/// handles the error).
#[cfg(test)]
pub fn softmax_val_loss(
    x: &[f32],
    n: usize,
    d: usize,
    k: usize,
    labels: &[u32],
    fit: &LinearFit,
    weighting: ClassWeighting,
) -> f64 {
    try_softmax_val_loss(x, n, d, k, labels, fit, weighting)
        .unwrap_or_else(|e| panic!("softmax_val_loss: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_stable_for_huge_logits() {
        for &z in &[-1e30, -800.0, -30.0, 0.0, 30.0, 800.0, 1e30] {
            for pos in [false, true] {
                let l = logistic_loss(pos, z);
                assert!(l.is_finite() && l >= 0.0, "l({pos}, {z}) = {l}");
            }
            let s = sigmoid(z);
            assert!((0.0..=1.0).contains(&s));
        }
        assert_eq!(logistic_loss(true, 800.0), 0.0);
        assert_eq!(logistic_loss(false, 800.0), 800.0);
        assert!((logistic_loss(true, 0.0) - 2f64.ln()).abs() < 1e-15);
        let mut p = [0.0; 3];
        let ce = softmax_ce(&[1e30, -1e30, 0.0], 1, &mut p);
        assert!(ce.is_finite() && (p[0] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn weights_match_sklearn_balanced() {
        assert_eq!(
            binary_weights(ClassWeighting::Balanced, 25, 100),
            (2.0, 100.0 / 150.0)
        );
        assert_eq!(binary_weights(ClassWeighting::None, 25, 100), (1.0, 1.0));
        let w = class_weights(ClassWeighting::Balanced, &[50, 25, 25, 0]);
        assert_eq!(w, vec![0.5, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn logits_and_val_losses() {
        // 2 rows, d = 2, softmax k = 2: w = [[1, -1], [0, 2]], b = [0.5, -0.5].
        let fit = LinearFit {
            w: vec![1.0, -1.0, 0.0, 2.0],
            b: vec![0.5, -0.5],
            iterations: 0,
            converged: true,
            objective: 0.0,
        };
        let x = [1.0, 1.0, 2.0, 0.0];
        let z = linear_logits(&x, 2, 2, &fit);
        assert_eq!(z, vec![1.5, 0.5, 2.5, -2.5]);
        let ce0 = (1.5f64.exp() + 0.5f64.exp()).ln() - 1.5;
        let ce1 = (2.5f64.exp() + (-2.5f64).exp()).ln() + 2.5;
        let v = softmax_val_loss(&x, 2, 2, 2, &[0, 1], &fit, ClassWeighting::None);
        assert!((v - 0.5 * (ce0 + ce1)).abs() < 1e-12);
        let e = try_softmax_val_loss(&x, 2, 2, 2, &[0, 2], &fit, ClassWeighting::None).unwrap_err();
        assert!(
            matches!(
                e,
                HeadError::LabelOutOfRange {
                    row: 1,
                    label: 2,
                    k: 2
                }
            ),
            "{e}"
        );
        let e = try_linear_logits(&x, 2, 3, &fit).unwrap_err();
        assert!(e.to_string().starts_with("x:"), "{e}");
    }
}
