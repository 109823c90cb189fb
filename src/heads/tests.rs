//! Heads stage (cached features -> trained linear heads), tests: the fused
//! binary heads and the softmax head against scikit-learn
//! (`tests/fixtures/heads/logreg.json`, made by
//! `tests/reference/make_head_fixtures.py`), fusion independence, huge logits,
//! errors. Timing runs (ignored) are in `timing.rs`.

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Fixture {
    n: usize,
    d: usize,
    k: usize,
    x: Vec<f32>,
    labels: Vec<u32>,
    binary: Vec<BinaryCase>,
    softmax: Vec<SoftmaxCase>,
    standardizer: StdCase,
}

#[derive(Deserialize)]
struct BinaryCase {
    class: u32,
    c: f64,
    weighting: String,
    coef: Vec<f64>,
    intercept: f64,
    objective: f64,
}

#[derive(Deserialize)]
struct SoftmaxCase {
    c: f64,
    weighting: String,
    coef_dk: Vec<f64>,
    intercept: Vec<f64>,
    objective: f64,
}

#[derive(Deserialize)]
struct StdCase {
    n: usize,
    d: usize,
    x: Vec<f32>,
    mean: Vec<f64>,
    std: Vec<f64>,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/heads/logreg.json"
    );
    let text = std::fs::read_to_string(path).expect("read logreg.json");
    serde_json::from_str(&text).expect("parse logreg.json")
}

fn weighting(name: &str) -> ClassWeighting {
    match name {
        "balanced" => ClassWeighting::Balanced,
        "none" => ClassWeighting::None,
        other => panic!("unknown weighting {other}"),
    }
}

fn tensor(fx: &Fixture, dtype: DType) -> Tensor {
    Tensor::from_vec(fx.x.clone(), (fx.n, fx.d), &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .expect("x tensor")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// Every binary case of the fixture, fused in one call, vs scikit-learn.
fn check_binary_vs_sklearn(dtype: DType, opts: &FitOptions, max_rel: f64, max_coef: f64) {
    let fx = fixture();
    let jobs: Vec<BinaryJob> = fx
        .binary
        .iter()
        .map(|b| BinaryJob {
            class: b.class,
            c: b.c,
            weighting: weighting(&b.weighting),
        })
        .collect();
    let fits = fit_binary(&tensor(&fx, dtype), &fx.labels, &jobs, opts).expect("fit_binary");
    let (mut worst_rel, mut worst_coef) = (0.0f64, 0.0f64);
    for ((case, job), fit) in fx.binary.iter().zip(&jobs).zip(&fits) {
        let pos: Vec<bool> = fx.labels.iter().map(|&l| l == job.class).collect();
        let j_host = binary_objective(&fx.x, fx.n, fx.d, &pos, fit, job.c, job.weighting).unwrap();
        let rel = (j_host - case.objective) / case.objective;
        let rel_reported = (fit.objective - case.objective).abs() / case.objective;
        let coef = case
            .coef
            .iter()
            .chain(std::iter::once(&case.intercept))
            .zip(fit.w.iter().chain(&fit.b))
            .fold(0.0f64, |m, (s, r)| m.max((s - f64::from(*r)).abs()));
        println!(
            "{dtype:?} binary class {} C={} {}: J sklearn {:.10} rust {:.10} rel {:+.2e} \
             (reported {:.2e}) max|coef diff| {:.2e} iters {} converged {}",
            case.class,
            case.c,
            case.weighting,
            case.objective,
            j_host,
            rel,
            rel_reported,
            coef,
            fit.iterations,
            fit.converged
        );
        assert!(fit.converged, "class {} C {}", case.class, case.c);
        worst_rel = worst_rel.max(rel.abs()).max(rel_reported);
        worst_coef = worst_coef.max(coef);
    }
    println!("{dtype:?} binary: worst rel J gap {worst_rel:.2e}, worst coef diff {worst_coef:.2e}");
    assert!(worst_rel <= max_rel, "{worst_rel}");
    assert!(worst_coef <= max_coef, "{worst_coef}");
}

fn check_softmax_vs_sklearn(dtype: DType, opts: &FitOptions, max_rel: f64, max_coef: f64) {
    let fx = fixture();
    for case in &fx.softmax {
        let w = weighting(&case.weighting);
        let fit = fit_softmax(&tensor(&fx, dtype), &fx.labels, fx.k, case.c, w, opts)
            .expect("fit_softmax");
        let j_host =
            softmax_objective(&fx.x, fx.n, fx.d, fx.k, &fx.labels, &fit, case.c, w).unwrap();
        let rel = (j_host - case.objective) / case.objective;
        let rel_reported = (fit.objective - case.objective).abs() / case.objective;
        let mean_b = case.intercept.iter().sum::<f64>() / fx.k as f64;
        let coef = case
            .coef_dk
            .iter()
            .zip(&fit.w)
            .map(|(s, r)| (s - f64::from(*r)).abs())
            .chain(
                case.intercept
                    .iter()
                    .zip(&fit.b)
                    .map(|(s, r)| (s - mean_b - f64::from(*r)).abs()),
            )
            .fold(0.0f64, f64::max);
        println!(
            "{dtype:?} softmax C={} {}: J sklearn {:.10} rust {:.10} rel {:+.2e} (reported {:.2e}) \
             max|coef diff| {:.2e} iters {} converged {}",
            case.c,
            case.weighting,
            case.objective,
            j_host,
            rel,
            rel_reported,
            coef,
            fit.iterations,
            fit.converged
        );
        assert!(fit.converged);
        assert!(
            rel.abs() <= max_rel && rel_reported <= max_rel,
            "{rel} {rel_reported}"
        );
        assert!(coef <= max_coef, "{coef}");
    }
}

#[test]
fn binary_matches_sklearn_f32() {
    check_binary_vs_sklearn(DType::F32, &FitOptions::default(), 1e-6, 1e-3);
}

#[test]
fn binary_matches_sklearn_f32_tight() {
    let opts = FitOptions {
        tol: 1e-8,
        ..FitOptions::default()
    };
    check_binary_vs_sklearn(DType::F32, &opts, 1e-6, 1e-4);
}

#[test]
fn binary_matches_sklearn_f64() {
    let opts = FitOptions {
        tol: 1e-10,
        ..FitOptions::default()
    };
    check_binary_vs_sklearn(DType::F64, &opts, 1e-9, 1e-6);
}

#[test]
fn softmax_matches_sklearn_f32() {
    check_softmax_vs_sklearn(DType::F32, &FitOptions::default(), 1e-6, 1e-3);
}

#[test]
fn softmax_matches_sklearn_f32_tight() {
    let opts = FitOptions {
        tol: 1e-8,
        ..FitOptions::default()
    };
    check_softmax_vs_sklearn(DType::F32, &opts, 1e-6, 1e-4);
}

#[test]
fn softmax_matches_sklearn_f64() {
    let opts = FitOptions {
        tol: 1e-10,
        ..FitOptions::default()
    };
    check_softmax_vs_sklearn(DType::F64, &opts, 1e-9, 1e-6);
}

#[test]
fn fused_equals_one_at_a_time() {
    let fx = fixture();
    let x = tensor(&fx, DType::F32);
    let jobs: Vec<BinaryJob> = [0.01, 1.0]
        .iter()
        .flat_map(|&c| {
            (0..fx.k as u32).map(move |class| BinaryJob {
                class,
                c,
                weighting: ClassWeighting::Balanced,
            })
        })
        .collect();
    let opts = FitOptions::default();
    let fused = fit_binary(&x, &fx.labels, &jobs, &opts).expect("fused");
    let mut worst = 0.0f32;
    for (job, f) in jobs.iter().zip(&fused) {
        let alone = fit_binary(&x, &fx.labels, std::slice::from_ref(job), &opts).expect("alone");
        let diff = max_abs_diff(&f.w, &alone[0].w).max(max_abs_diff(&f.b, &alone[0].b));
        println!(
            "class {} C {}: fused vs alone max|diff| {diff:.2e} (iters {} vs {})",
            job.class, job.c, f.iterations, alone[0].iterations
        );
        worst = worst.max(diff);
    }
    assert!(worst <= 1e-5, "{worst}");
}

#[test]
fn huge_logits_stay_finite() {
    // Separable with a wide margin and large features: with C = 1e6 the
    // logits reach the thousands, where exp() overflows f32 and f64.
    let n = 64;
    let mut x = Vec::with_capacity(n * 2);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let side = if i % 2 == 0 { 1.0 } else { -1.0 };
        x.push(side * (50.0 + 100.0 * (i % 7) as f32));
        x.push(((i * 37) % 11) as f32 - 5.0);
        labels.push(u32::from(side > 0.0));
    }
    let t = Tensor::from_vec(x.clone(), (n, 2), &Device::Cpu).expect("x");
    let opts = FitOptions {
        tol: 1e-10,
        ..FitOptions::default()
    };
    let pos: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
    for weighting in [ClassWeighting::Balanced, ClassWeighting::None] {
        let job = BinaryJob {
            class: 1,
            c: 1e6,
            weighting,
        };
        let fits = fit_binary(&t, &labels, &[job], &opts).expect("fit");
        let fit = &fits[0];
        assert!(fit.w.iter().chain(&fit.b).all(|v| v.is_finite()), "{fit:?}");
        let j = binary_objective(&x, n, 2, &pos, fit, job.c, job.weighting).unwrap();
        assert!(j.is_finite() && fit.objective.is_finite(), "{j} {fit:?}");
        let logits = linear_logits(&x, n, 2, fit);
        let max_logit = logits.iter().fold(0.0f32, |m, z| m.max(z.abs()));
        assert!(max_logit > 100.0, "{max_logit}");
        assert!(logits
            .iter()
            .zip(&labels)
            .all(|(z, &l)| (*z > 0.0) == (l == 1)));
        println!("binary C=1e6 {weighting:?}: J {j:.10}, max |logit| {max_logit:.1}, {fit:?}");
        // scikit-learn 1.9.1, LogisticRegression(C=1e6, tol=1e-10) on the same
        // rows (balanced = none here: 32 / 32): J = 0.0954336331, printed by
        // tests/reference/make_huge_logits_constant.py.
        assert!((j - 0.0954336331).abs() <= 1e-6, "{j}");
        let soft = fit_softmax(&t, &labels, 2, 1e6, weighting, &opts).expect("softmax");
        assert!(
            soft.w.iter().chain(&soft.b).all(|v| v.is_finite()),
            "{soft:?}"
        );
        let js = softmax_objective(&x, n, 2, 2, &labels, &soft, 1e6, weighting).unwrap();
        assert!(
            js.is_finite() && soft.objective.is_finite(),
            "{js} {soft:?}"
        );
    }
}

#[test]
fn standardizer_matches_numpy() {
    let fx = fixture();
    let c = &fx.standardizer;
    let s = Standardizer::fit(&c.x, c.n, c.d);
    for j in 0..c.d {
        let (m, sd) = (f64::from(s.mean[j]), f64::from(s.std[j]));
        assert!(
            (m - c.mean[j]).abs() <= 1e-6 * c.mean[j].abs().max(1.0),
            "mean {j}"
        );
        assert!((sd - c.std[j]).abs() <= 1e-6 * c.std[j], "std {j}");
    }
    assert_eq!(s.std[3], 1.0, "constant feature");
    let z = s.apply(&c.x);
    assert!(z.iter().skip(3).step_by(c.d).all(|&v| v == 0.0));
}

#[test]
fn errors_name_the_field() {
    let fx = fixture();
    let x = tensor(&fx, DType::F32);
    let opts = FitOptions::default();
    let job = |class, c| BinaryJob {
        class,
        c,
        weighting: ClassWeighting::Balanced,
    };
    let e = fit_binary(&x, &fx.labels, &[], &opts).unwrap_err();
    assert!(matches!(e, HeadError::NoJobs), "{e}");
    let e = fit_binary(&x, &fx.labels, &[job(0, 1.0), job(2, 0.0)], &opts).unwrap_err();
    assert!(
        e.to_string().contains("binary job 1 (class 2): c must be"),
        "{e}"
    );
    let e = fit_binary(&x, &fx.labels, &[job(0, f64::NAN)], &opts).unwrap_err();
    assert!(matches!(e, HeadError::InvalidC { .. }), "{e}");
    let e = fit_binary(&x, &fx.labels, &[job(9, 1.0)], &opts).unwrap_err();
    assert!(e.to_string().contains("class 9"), "{e}");
    let e = fit_binary(&x, &fx.labels[1..], &[job(0, 1.0)], &opts).unwrap_err();
    assert!(e.to_string().starts_with("labels:"), "{e}");
    let bad = FitOptions { history: 0, ..opts };
    let e = fit_binary(&x, &fx.labels, &[job(0, 1.0)], &bad).unwrap_err();
    assert!(e.to_string().contains("history"), "{e}");
    let e = fit_softmax(&x, &fx.labels, 3, 1.0, ClassWeighting::None, &opts).unwrap_err();
    assert!(
        matches!(e, HeadError::LabelOutOfRange { label: 3, k: 3, .. }),
        "{e}"
    );
    let e = fit_softmax(&x, &fx.labels, 4, -1.0, ClassWeighting::None, &opts).unwrap_err();
    assert!(e.to_string().starts_with("softmax head: c must be"), "{e}");
    let e = fit_softmax(&x, &fx.labels, 1, 1.0, ClassWeighting::None, &opts).unwrap_err();
    assert!(matches!(e, HeadError::InvalidK { k: 1 }), "{e}");
    let xi = x.to_dtype(DType::U32).expect("u32");
    let e = fit_softmax(&xi, &fx.labels, 4, 1.0, ClassWeighting::None, &opts).unwrap_err();
    assert!(matches!(e, HeadError::Dtype { .. }), "{e}");
    let mut xn = fx.x.clone();
    xn[5] = f32::NAN;
    let tn = Tensor::from_vec(xn, (fx.n, fx.d), &Device::Cpu).expect("x");
    let e = fit_binary(&tn, &fx.labels, &[job(0, 1.0), job(1, 1.0)], &opts).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("binary job 0 (class 0): the objective"),
        "{e}"
    );
}
