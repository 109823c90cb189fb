//! Heads stage (cached features -> trained linear heads), optimizer:
//! batched L-BFGS over independent columns.
//!
//! Each column (one binary head, or the one softmax head) is a separate
//! smooth, strongly convex problem with its own L-BFGS history, direction,
//! step size, iteration count and stop decision. The only thing columns share
//! is the *evaluation call*: every round, the caller evaluates all still-active
//! columns at their own trial points in one fused call (one `X . W` and one
//! `X^T . R` for all of them). A column that stops is frozen (its point no
//! longer changes and it leaves the fused call); the others go on. Nothing in
//! a column's trajectory reads another column's numbers, so a column's result
//! does not depend on which columns were fused with it (up to the rounding of
//! the fused matmul).
//!
//! Line search (per column): a bracketing weak-Wolfe search from step 1. A
//! trial step has *sufficient decrease* when it meets Armijo (`f(a) <= f(0) +
//! 1e-4 a f'(0)`) or, because the f32 matmuls make `f` noisy at about 1e-8
//! relative while the gradient stays accurate, Hager and Zhang's approximate
//! Armijo condition (`f(a) <= f(0) + noise |f(0)|` and `f'(a) <= (2 delta - 1)
//! f'(0)`, delta = 0.1: the trapezoid estimate of the decrease). It is
//! accepted when also `f'(a) >= 0.9 f'(0)` (curvature); a step that decreases
//! enough but is still steep grows 4x (or bisects towards a known overshoot),
//! a step without sufficient decrease shrinks (quadratic / derivative-secant
//! interpolation in `[0.1, 0.5]` x the step, or bisection once a shorter good
//! step is known). After [`MAX_LINE_SEARCH`] evaluations the longest step with
//! sufficient decrease is taken; if there is none, the column stops.
//! The first step of a column is `1 / ||g||_2` along `-g`, later steps start
//! at 1 with the usual `s.y / y.y` scaling of the initial inverse Hessian.
//!
//! Stops: `||g||_inf <= tol` (converged); an Armijo step that decreased `f` by
//! at most [`FTOL`] relative (converged, scikit-learn's `ftol`); `max_iter`
//! steps or a failed line search (not converged).

use std::collections::VecDeque;

use super::{FitOptions, HeadError};

/// Evaluations per line search (scikit-learn passes `maxls = 50` to scipy).
pub const MAX_LINE_SEARCH: usize = 50;
/// Relative-decrease stop: scikit-learn's `ftol` (64 f64 epsilons).
pub const FTOL: f64 = 64.0 * f64::EPSILON;
const ARMIJO_C1: f64 = 1e-4;
/// Hager-Zhang's delta for the approximate Armijo condition.
const APPROX_DELTA: f64 = 0.1;
/// Curvature (weak Wolfe) constant: a step is long enough once
/// `f'(a) >= c2 f'(0)`; this also keeps `s.y > 0`.
const WOLFE_C2: f64 = 0.9;
/// Step growth while no step has been too long.
const EXTRAPOLATE: f64 = 4.0;

/// The value and gradient of one column's objective at one point.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub f: f64,
    pub g: Vec<f64>,
}

/// Why a column stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `||g||_inf <= tol`.
    Gradient,
    /// An accepted step decreased `f` by less than `ftol * max(|f|, 1)`.
    Decrease,
    /// `max_iter` accepted steps.
    MaxIter,
    /// [`MAX_LINE_SEARCH`] evaluations found no step with sufficient decrease.
    LineSearch,
}

/// The final state of one column.
#[derive(Debug, Clone)]
pub struct Solution {
    pub x: Vec<f64>,
    pub f: f64,
    pub grad_inf: f64,
    pub iterations: usize,
    pub stop: Stop,
}

impl Solution {
    pub fn converged(&self) -> bool {
        matches!(self.stop, Stop::Gradient | Stop::Decrease)
    }
}

struct Column {
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    s_hist: VecDeque<Vec<f64>>,
    y_hist: VecDeque<Vec<f64>>,
    rho: VecDeque<f64>,
    d: Vec<f64>,
    gd: f64,
    alpha: f64,
    trial: Vec<f64>,
    /// Line search: evaluations so far, longest acceptable-but-steep step
    /// (`lo`, 0 if none) with its point / evaluation / Armijo flag, shortest
    /// too-long step (`hi`, infinity if none).
    trials: usize,
    lo: f64,
    hi: f64,
    best: Option<(Vec<f64>, Evaluation, bool)>,
    iterations: usize,
    started: bool,
    stop: Option<Stop>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn inf_norm(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

fn all_finite(e: &Evaluation) -> bool {
    e.f.is_finite() && e.g.iter().all(|v| v.is_finite())
}

impl Column {
    fn new(x0: Vec<f64>) -> Self {
        Column {
            trial: x0.clone(),
            x: x0,
            f: f64::NAN,
            g: Vec::new(),
            s_hist: VecDeque::new(),
            y_hist: VecDeque::new(),
            rho: VecDeque::new(),
            d: Vec::new(),
            gd: 0.0,
            alpha: 0.0,
            trials: 0,
            lo: 0.0,
            hi: f64::INFINITY,
            best: None,
            iterations: 0,
            started: false,
            stop: None,
        }
    }

    /// Two-loop recursion: `d = -H g` with the stored pairs.
    fn direction(&mut self) {
        let m = self.s_hist.len();
        let mut q = self.g.clone();
        let mut a = vec![0.0; m];
        for i in (0..m).rev() {
            a[i] = self.rho[i] * dot(&self.s_hist[i], &q);
            for (qj, yj) in q.iter_mut().zip(&self.y_hist[i]) {
                *qj -= a[i] * yj;
            }
        }
        let gamma = match (self.s_hist.back(), self.y_hist.back()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0,
        };
        for v in q.iter_mut() {
            *v *= gamma;
        }
        for (((ai, rho), y), s) in a.iter().zip(&self.rho).zip(&self.y_hist).zip(&self.s_hist) {
            let b = rho * dot(y, &q);
            for (qj, sj) in q.iter_mut().zip(s) {
                *qj += (ai - b) * sj;
            }
        }
        for v in q.iter_mut() {
            *v = -*v;
        }
        let mut gd = dot(&q, &self.g);
        if !(gd < 0.0 && gd.is_finite()) {
            // Not a descent direction (rounding): restart from steepest descent.
            self.s_hist.clear();
            self.y_hist.clear();
            self.rho.clear();
            q = self.g.iter().map(|v| -v).collect();
            gd = -dot(&self.g, &self.g);
        }
        self.alpha = if self.s_hist.is_empty() {
            1.0 / dot(&self.g, &self.g).sqrt().max(f64::MIN_POSITIVE)
        } else {
            1.0
        };
        self.d = q;
        self.gd = gd;
        self.trials = 0;
        self.lo = 0.0;
        self.hi = f64::INFINITY;
        self.best = None;
        self.set_trial();
    }

    fn set_trial(&mut self) {
        self.trial = self
            .x
            .iter()
            .zip(&self.d)
            .map(|(x, d)| x + self.alpha * d)
            .collect();
    }

    /// Folds the evaluation at `trial` into the state; returns `false` when the
    /// very first evaluation is not finite.
    fn update(&mut self, e: Evaluation, opts: &FitOptions, noise: f64) -> bool {
        if !self.started {
            if !all_finite(&e) {
                return false;
            }
            self.started = true;
            self.f = e.f;
            self.g = e.g;
            if inf_norm(&self.g) <= opts.tol {
                self.stop = Some(Stop::Gradient);
            } else {
                self.direction();
            }
            return true;
        }
        let finite = all_finite(&e);
        let slope = if finite { dot(&e.g, &self.d) } else { f64::NAN };
        let armijo = finite && e.f <= self.f + ARMIJO_C1 * self.alpha * self.gd;
        // Near the optimum the decrease falls below the rounding noise of f;
        // there the trapezoid estimate of the decrease from the directional
        // derivatives decides (Hager-Zhang's approximate Armijo condition).
        let approx = finite
            && e.f <= self.f + noise * self.f.abs()
            && slope <= (2.0 * APPROX_DELTA - 1.0) * self.gd;
        self.trials += 1;
        let out_of_trials = self.trials >= MAX_LINE_SEARCH;
        if armijo || approx {
            if slope >= WOLFE_C2 * self.gd || out_of_trials {
                self.accept(e, armijo, opts);
                return true;
            }
            // Sufficient decrease but still steep: the step is too short.
            // Remember it and extrapolate (or bisect towards a known overshoot).
            self.lo = self.alpha;
            let a = self.alpha;
            self.alpha = if self.hi.is_finite() {
                0.5 * (self.lo + self.hi)
            } else {
                EXTRAPOLATE * a
            };
            self.best = Some((std::mem::take(&mut self.trial), e, armijo));
            self.set_trial();
            return true;
        }
        if out_of_trials {
            match self.best.take() {
                Some((point, be, armijo)) => {
                    self.trial = point;
                    self.accept(be, armijo, opts);
                }
                None => self.stop = Some(Stop::LineSearch),
            }
            return true;
        }
        // Too long: shrink. Without a shorter acceptable step yet, use the
        // minimizer of the quadratic through f(0), f'(0) and f(alpha) when f
        // rose above its noise, else the zero of the secant of f', kept in
        // [0.1, 0.5] x alpha; with one, bisect [lo, alpha].
        let a = self.alpha;
        self.hi = a;
        self.alpha = if self.lo > 0.0 {
            0.5 * (self.lo + a)
        } else {
            let denom = 2.0 * (e.f - self.f - a * self.gd);
            let next = if e.f.is_finite() && e.f > self.f + noise * self.f.abs() && denom > 0.0 {
                -self.gd * a * a / denom
            } else if slope.is_finite() && slope > self.gd {
                a * self.gd / (self.gd - slope)
            } else {
                0.5 * a
            };
            next.clamp(0.1 * a, 0.5 * a)
        };
        self.set_trial();
        true
    }

    /// Moves to `trial` (evaluated as `e`), stores the pair, checks the stops
    /// and starts the next line search.
    fn accept(&mut self, e: Evaluation, armijo: bool, opts: &FitOptions) {
        let s: Vec<f64> = self.trial.iter().zip(&self.x).map(|(t, x)| t - x).collect();
        let y: Vec<f64> = e.g.iter().zip(&self.g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        let yy = dot(&y, &y);
        if sy > 1e-10 * yy && sy > 0.0 {
            if self.s_hist.len() == opts.history {
                self.s_hist.pop_front();
                self.y_hist.pop_front();
                self.rho.pop_front();
            }
            self.s_hist.push_back(s);
            self.y_hist.push_back(y);
            self.rho.push_back(1.0 / sy);
        }
        let f_old = self.f;
        std::mem::swap(&mut self.x, &mut self.trial);
        self.f = e.f;
        self.g = e.g;
        self.iterations += 1;
        let tiny_decrease =
            armijo && f_old - self.f <= FTOL * f_old.abs().max(self.f.abs()).max(1.0);
        if inf_norm(&self.g) <= opts.tol {
            self.stop = Some(Stop::Gradient);
        } else if tiny_decrease {
            self.stop = Some(Stop::Decrease);
        } else if self.iterations >= opts.max_iter {
            self.stop = Some(Stop::MaxIter);
        } else {
            self.direction();
        }
    }
}

/// Minimizes every column from its start `x0[j]`.
///
/// `eval(active, points)` must return one [`Evaluation`] per active column
/// (indices into `x0`), evaluated at `points` (same order). `noise` is the
/// relative rounding noise of `f` (a few ulps of the matmul dtype): within it,
/// a step is judged by the directional derivatives. `head_name(j)` names
/// column `j` in errors.
pub fn minimize_batched<E, N>(
    x0: Vec<Vec<f64>>,
    opts: &FitOptions,
    noise: f64,
    head_name: N,
    mut eval: E,
) -> Result<Vec<Solution>, HeadError>
where
    E: FnMut(&[usize], &[&[f64]]) -> Result<Vec<Evaluation>, HeadError>,
    N: Fn(usize) -> String,
{
    opts.validate()?;
    let mut cols: Vec<Column> = x0.into_iter().map(Column::new).collect();
    loop {
        let active: Vec<usize> = (0..cols.len())
            .filter(|&j| cols[j].stop.is_none())
            .collect();
        if active.is_empty() {
            break;
        }
        let evals = {
            let points: Vec<&[f64]> = active.iter().map(|&j| cols[j].trial.as_slice()).collect();
            eval(&active, &points)?
        };
        if evals.len() != active.len() {
            return Err(HeadError::Shape {
                field: "evaluations",
                expected: format!("{} (one per active head)", active.len()),
                got: evals.len().to_string(),
            });
        }
        for (&j, e) in active.iter().zip(evals) {
            if !cols[j].update(e, opts, noise) {
                return Err(HeadError::NonFinite { head: head_name(j) });
            }
        }
    }
    Ok(cols
        .into_iter()
        .map(|c| Solution {
            grad_inf: inf_norm(&c.g),
            x: c.x,
            f: c.f,
            iterations: c.iterations,
            stop: c.stop.unwrap_or(Stop::MaxIter),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(x) = 0.5 sum_i a_i (x_i - t_i)^2 + 0.1 sum_i x_i^4 per column.
    fn quartic(a: &[f64], t: &[f64], x: &[f64]) -> Evaluation {
        let mut f = 0.0;
        let mut g = vec![0.0; x.len()];
        for i in 0..x.len() {
            let r = x[i] - t[i];
            f += 0.5 * a[i] * r * r + 0.1 * x[i].powi(4);
            g[i] = a[i] * r + 0.4 * x[i].powi(3);
        }
        Evaluation { f, g }
    }

    #[test]
    fn columns_are_independent_of_their_company() {
        let problems: Vec<(Vec<f64>, Vec<f64>)> = (0..5)
            .map(|k| {
                let a: Vec<f64> = (0..6).map(|i| 1.0 + (i * (k + 1)) as f64 * 0.7).collect();
                let t: Vec<f64> = (0..6)
                    .map(|i| (i as f64 - 2.5) * (k as f64 + 0.5))
                    .collect();
                (a, t)
            })
            .collect();
        let opts = FitOptions {
            tol: 1e-10,
            ..FitOptions::default()
        };
        let run = |which: &[usize]| {
            minimize_batched(
                vec![vec![0.0; 6]; which.len()],
                &opts,
                1e-14,
                |j| format!("column {j}"),
                |active, pts| {
                    Ok(active
                        .iter()
                        .zip(pts)
                        .map(|(&j, p)| {
                            let (a, t) = &problems[which[j]];
                            quartic(a, t, p)
                        })
                        .collect())
                },
            )
            .expect("minimize")
        };
        let fused = run(&[0, 1, 2, 3, 4]);
        for (k, f) in fused.iter().enumerate() {
            let alone = run(&[k]);
            assert_eq!(alone[0].x, f.x, "column {k}");
            assert_eq!(alone[0].iterations, f.iterations);
            assert!(f.converged() && f.grad_inf <= 1e-5, "{f:?}");
        }
    }

    #[test]
    fn non_finite_start_names_the_head() {
        let opts = FitOptions::default();
        let e = minimize_batched(
            vec![vec![0.0; 2]],
            &opts,
            0.0,
            |j| format!("head {j}"),
            |_, _| {
                Ok(vec![Evaluation {
                    f: f64::NAN,
                    g: vec![0.0; 2],
                }])
            },
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("head 0:"), "{e}");
    }
}
