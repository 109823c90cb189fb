//! Metrics stage, equivalence and flips of two approaches on the same rows:
//! their per-row correctness -> a TOST (two one-sided paired t-tests, as
//! statsmodels' `ttost_paired`) on the accuracy difference A − B with a
//! stated margin, and the flip table (right → wrong, wrong → right).
//!
//! * TOST: d_i = 1[A right] − 1[B right], mean d̄, s = sd(d, ddof 1),
//!   se = s / √n, df = n − 1; t_low = (d̄ + m) / se tests "d̄ > −m"
//!   (p_low = P(T > t_low)), t_high = (d̄ − m) / se tests "d̄ < m"
//!   (p_high = P(T < t_high)); p = max(p_low, p_high). "Equivalent within
//!   ±m" when p < [`super::ALPHA`] (the 90 % interval lies inside ±m).
//!   With se = 0 (every row agrees), p is 0 when |d̄| < m, else 1.
//! * Student's t tail through the regularized incomplete beta function
//!   (Lentz's continued fraction, Lanczos log-gamma), checked against
//!   statsmodels in `tests/fixtures/metrics/equivalence.json`
//!   (`tests/reference/make_equivalence_fixtures.py`).

use serde::Serialize;

use super::{check_same_len, MetricError, Result, ALPHA};

/// Default equivalence margin: one accuracy point.
pub const MARGIN_DEFAULT: f64 = 0.01;

/// The flip table of A against B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flips {
    pub both_right: usize,
    /// A right, B wrong (B flips right → wrong).
    pub a_only: usize,
    /// A wrong, B right.
    pub b_only: usize,
    pub both_wrong: usize,
}

/// The TOST of "|accuracy(A) − accuracy(B)| < margin".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Equivalence {
    /// Margin, as a fraction (0.01 = 1 point).
    pub margin: f64,
    pub difference: f64,
    pub t_low: f64,
    pub t_high: f64,
    pub df: f64,
    pub p_value: f64,
    pub equivalent: bool,
}

/// One pair of approaches: names, TOST, flips, and a sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairEquivalence {
    pub a: String,
    pub b: String,
    pub equivalence: Equivalence,
    pub flips: Flips,
    pub sentence: String,
}

/// The flip table.
pub fn flips(correct_a: &[bool], correct_b: &[bool]) -> Result<Flips> {
    check_same_len("correct_b", correct_b.len(), correct_a.len())?;
    let mut f = Flips {
        both_right: 0,
        a_only: 0,
        b_only: 0,
        both_wrong: 0,
    };
    for (&a, &b) in correct_a.iter().zip(correct_b) {
        match (a, b) {
            (true, true) => f.both_right += 1,
            (true, false) => f.a_only += 1,
            (false, true) => f.b_only += 1,
            (false, false) => f.both_wrong += 1,
        }
    }
    Ok(f)
}

/// TOST on the paired accuracy difference A − B with `margin` (a fraction).
pub fn tost(correct_a: &[bool], correct_b: &[bool], margin: f64) -> Result<Equivalence> {
    if correct_a.len() < 2 {
        return Err(MetricError::Empty { what: "correct_a" });
    }
    check_same_len("correct_b", correct_b.len(), correct_a.len())?;
    if !(margin > 0.0 && margin.is_finite()) {
        return Err(MetricError::ZeroParameter {
            what: "the equivalence margin",
        });
    }
    let n = correct_a.len() as f64;
    let d: Vec<f64> = correct_a
        .iter()
        .zip(correct_b)
        .map(|(&a, &b)| f64::from(u8::from(a)) - f64::from(u8::from(b)))
        .collect();
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let se = (var / n).sqrt();
    let df = n - 1.0;
    let (t_low, t_high, p) = if se > 0.0 {
        let (tl, th) = ((mean + margin) / se, (mean - margin) / se);
        (tl, th, t_sf(tl, df).max(t_sf(-th, df)))
    } else {
        let inside = mean.abs() < margin;
        let inf = if inside { f64::INFINITY } else { 0.0 };
        (inf, -inf, if inside { 0.0 } else { 1.0 })
    };
    Ok(Equivalence {
        margin,
        difference: mean,
        t_low,
        t_high,
        df,
        p_value: p,
        equivalent: p < ALPHA,
    })
}

/// "A and B are equivalent within ±1 point (TOST p = 0.003)" or "A and B
/// are not shown equivalent within ±1 point (TOST p = 0.21)".
pub fn sentence(a: &str, b: &str, e: &Equivalence) -> String {
    let m = (e.margin * 1000.0).round() / 10.0;
    let p = if e.p_value < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {:.3}", e.p_value)
    };
    let word = if e.equivalent {
        "are equivalent"
    } else {
        "are not shown equivalent"
    };
    format!(
        "{a} and {b} {word} within ±{m} point{} (TOST {p})",
        if m == 1.0 { "" } else { "s" }
    )
}

/// TOST and flips for every pair of `preds` (by approach) against `labels`.
pub fn pairs(
    labels: &[u32],
    approaches: &[(&str, &[u32])],
    margin: f64,
) -> Result<Vec<PairEquivalence>> {
    let correct = |p: &[u32]| -> Vec<bool> { p.iter().zip(labels).map(|(x, y)| x == y).collect() };
    let mut out = Vec::new();
    for i in 0..approaches.len() {
        for j in i + 1..approaches.len() {
            let ((na, pa), (nb, pb)) = (approaches[i], approaches[j]);
            check_same_len("preds", pa.len(), labels.len())?;
            let (ca, cb) = (correct(pa), correct(pb));
            let e = tost(&ca, &cb, margin)?;
            out.push(PairEquivalence {
                a: na.to_string(),
                b: nb.to_string(),
                sentence: sentence(na, nb, &e),
                flips: flips(&ca, &cb)?,
                equivalence: e,
            });
        }
    }
    Ok(out)
}

/// P(T > t) for Student's t with `df` degrees of freedom.
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    let x = df / (df + t * t);
    let tail = 0.5 * reg_inc_beta(df / 2.0, 0.5, x);
    if t > 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

/// ln Γ(x), x > 0 (Lanczos, g = 7, 9 terms; relative error ~1e-15).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta I_x(a, b).
fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Lentz's continued fraction for the incomplete beta function.
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = if d.abs() < TINY { TINY } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            d = if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases() -> Vec<serde_json::Value> {
        let text = include_str!("../../tests/fixtures/metrics/equivalence.json");
        let v: serde_json::Value = serde_json::from_str(text).expect("fixture");
        v["cases"].as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn tost_and_flips_match_statsmodels() {
        let cs = cases();
        assert_eq!(cs.len(), 6);
        for c in cs {
            let bools = |k: &str| -> Vec<bool> {
                c[k].as_array()
                    .map(|a| a.iter().map(|v| v.as_u64() == Some(1)).collect())
                    .unwrap_or_default()
            };
            let (a, b) = (bools("a"), bools("b"));
            let f = |k: &str| c[k].as_f64().unwrap_or(f64::NAN);
            let e = tost(&a, &b, f("margin")).expect("tost");
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs().max(1e-12) + 1e-14;
            assert!(close(e.t_low, f("t_low")), "{} vs {}", e.t_low, f("t_low"));
            assert!(close(e.t_high, f("t_high")));
            assert_eq!(e.df, f("df"));
            assert!(close(t_sf(e.t_low, e.df), f("p_low")), "{}", f("p_low"));
            assert!(close(t_sf(-e.t_high, e.df), f("p_high")));
            assert!(
                close(e.p_value, f("p_value")),
                "{} vs {}",
                e.p_value,
                f("p_value")
            );
            let fl = flips(&a, &b).expect("flips");
            let want = &c["flips"];
            assert_eq!(
                fl.both_right as u64,
                want["both_right"].as_u64().unwrap_or(0)
            );
            assert_eq!(fl.a_only as u64, want["a_only"].as_u64().unwrap_or(0));
            assert_eq!(fl.b_only as u64, want["b_only"].as_u64().unwrap_or(0));
            assert_eq!(
                fl.both_wrong as u64,
                want["both_wrong"].as_u64().unwrap_or(0)
            );
        }
    }

    #[test]
    fn identical_approaches_are_equivalent_and_the_margin_matters() {
        let a = vec![true, false, true, true];
        let e = tost(&a, &a, 0.01).expect("tost");
        assert!(e.equivalent && e.p_value == 0.0);
        // A 10-point difference on 1,000 rows: not equivalent within 1
        // point, equivalent within 20.
        let a: Vec<bool> = (0..1000).map(|i| i % 10 != 0).collect();
        let b: Vec<bool> = (0..1000).map(|i| i % 5 != 0).collect();
        assert!(!tost(&a, &b, 0.01).expect("tost").equivalent);
        let wide = tost(&a, &b, 0.2).expect("tost");
        assert!(wide.equivalent, "{wide:?}");
        assert_eq!(
            sentence("x", "y", &wide),
            "x and y are equivalent within ±20 points (TOST p < 0.001)"
        );
        assert!(tost(&a, &b, 0.0).is_err());
    }

    #[test]
    fn student_t_tail_matches_known_values() {
        // scipy.stats.t.sf(2.0, 10) = 0.03669401738537018; t.sf(0, df) = 0.5.
        assert!((t_sf(2.0, 10.0) - 0.036_694_017_385_370_18).abs() < 1e-12);
        assert!((t_sf(0.0, 3.0) - 0.5).abs() < 1e-15);
        assert!((t_sf(-2.0, 10.0) - (1.0 - 0.036_694_017_385_370_18)).abs() < 1e-12);
    }
}
