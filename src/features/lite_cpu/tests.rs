//! Kernel tests of the native Lite engine: each kernel on every dispatch
//! level this CPU runs against a plain (naive, f64-accumulating)
//! implementation, at odd sizes, strides 1 and 2, kernels 3 and 5, with and
//! without the residual; the threaded batch modes against one worker.

use super::dw::{depthwise, depthwise_naive, out_size, Depthwise};
use super::gemm::{gemm, gemm_naive, Dense, Out};
use super::simd::Isa;
use super::*;

fn levels() -> Vec<Isa> {
    [Isa::Portable, Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|i| i.supported())
        .collect()
}

/// Deterministic values in `[lo, hi)` (xorshift).
fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1f32, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

#[test]
fn gemm_matches_naive_on_every_level() {
    for isa in levels() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 5, 3),
            (13, 27, 32),
            (50, 16, 24),
            (9, 33, 40),
            (17, 70, 97),
            (49, 320, 1280),
            // Several row blocks (64 KiB / k rows each), the last one shorter.
            (300, 600, 24),
        ] {
            for (relu6, residual) in [(true, false), (false, true), (false, false)] {
                let a = values(m * k, 1 + m as u64, -1.0, 1.0);
                let w = values(k * n, 2 + k as u64, -0.5, 0.5);
                let b = values(n, 3, -0.5, 0.5);
                let res = values(m * n, 4, -2.0, 2.0);
                let d = Dense::pack(isa, &w, &b, k, n);
                let mut c = vec![f32::NAN; m * n];
                let r = residual.then_some(res.as_slice());
                gemm(
                    &a,
                    m,
                    &d,
                    relu6,
                    Out::Store { c: &mut c, res: r },
                    0..d.panel_count(),
                );
                let want = gemm_naive(&a, &w, &b, m, k, n, relu6, r);
                let e = max_rel(&c, &want);
                assert!(
                    e < 1e-5,
                    "{isa:?} m{m} k{k} n{n} relu6 {relu6} res {residual}: {e}"
                );
            }
        }
    }
}

#[test]
fn tile_heights_cover_the_span_evenly_within_the_tile_limit() {
    use super::gemm::tile_height;
    // Known cases: 49 rows at 8 -> seven 7s; 25 at 8 -> 7, 6, 6, 6.
    assert_eq!(
        (0..7).map(|i| tile_height(49, 8, i)).collect::<Vec<_>>(),
        [7; 7]
    );
    assert_eq!(
        (0..4).map(|i| tile_height(25, 8, i)).collect::<Vec<_>>(),
        [7, 6, 6, 6]
    );
    for mr in [4, 6, 8] {
        for span in 1..200usize {
            let tiles = span.div_ceil(mr);
            let h: Vec<usize> = (0..tiles).map(|i| tile_height(span, mr, i)).collect();
            assert_eq!(h.iter().sum::<usize>(), span, "span {span} mr {mr}");
            let (lo, hi) = (*h.iter().min().unwrap(), *h.iter().max().unwrap());
            assert!(
                hi <= mr && hi - lo <= 1 && lo >= 1,
                "span {span} mr {mr}: {h:?}"
            );
        }
    }
}

#[test]
fn gemm_pool_sums_columns_over_panel_ranges() {
    for isa in levels() {
        let (m, k, n) = (23, 19, 77);
        let a = values(m * k, 5, -1.0, 1.0);
        let w = values(k * n, 6, -0.5, 0.5);
        let b = values(n, 7, 0.0, 1.0);
        let d = Dense::pack(isa, &w, &b, k, n);
        let full = gemm_naive(&a, &w, &b, m, k, n, true, None);
        let want: Vec<f32> = (0..n)
            .map(|j| (0..m).map(|i| full[i * n + j]).sum())
            .collect();
        // Two disjoint panel ranges, as two batch-1 workers split the head.
        let mut pool = vec![0f32; d.padded_n()];
        let p = d.panel_count();
        for range in [0..p / 2, p / 2..p] {
            let cols = d.padded_cols(range.clone());
            gemm(
                &a,
                m,
                &d,
                true,
                Out::Pool {
                    pool: &mut pool[cols],
                },
                range,
            );
        }
        let e = max_rel(&pool[..n], &want);
        assert!(e < 1e-5, "{isa:?}: {e}");
    }
}

#[test]
fn depthwise_matches_naive_on_every_level() {
    for isa in levels() {
        for &(h, w, c) in &[
            (1, 1, 8),
            (7, 9, 3),
            (14, 14, 16),
            (15, 13, 24),
            (8, 5, 40),
            (28, 28, 144),
        ] {
            for k in [3, 5] {
                for stride in [1, 2] {
                    let d = Depthwise {
                        c,
                        k,
                        stride,
                        taps: values(k * k * c, 8, -0.5, 0.5),
                        bias: values(c, 9, -0.2, 0.6),
                    };
                    let x = values(h * w * c, 10, -1.0, 3.0);
                    let (ho, wo) = out_size(&d, h, w);
                    let want = depthwise_naive(&d, &x, h, w);
                    let mut out = vec![f32::NAN; ho * wo * c];
                    // In two row ranges, as batch-1 workers do.
                    let mid = ho / 2;
                    depthwise(isa, &d, &x, h, w, &mut out[..mid * wo * c], 0..mid);
                    depthwise(isa, &d, &x, h, w, &mut out[mid * wo * c..], mid..ho);
                    let e = max_rel(&out, &want);
                    assert!(e < 1e-5, "{isa:?} {h}x{w}x{c} k{k} s{stride}: {e}");
                }
            }
        }
    }
}

/// Naive dense 3x3 stride-2 stem on `(x - 127) / 128` with zero SAME padding.
fn stem_naive(w: &[f32], b: &[f32], px: &[f32], s: usize) -> Vec<f32> {
    let cout = b.len();
    let (so, pad) = super::dw::same_pad(s, 3, 2);
    let mut out = vec![0f32; so * so * cout];
    for oy in 0..so {
        for ox in 0..so {
            for n in 0..cout {
                let mut acc = f64::from(b[n]);
                for c in 0..3 {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let iy = (oy * 2 + ky) as isize - pad as isize;
                            let ix = (ox * 2 + kx) as isize - pad as isize;
                            if iy < 0 || ix < 0 || iy >= s as isize || ix >= s as isize {
                                continue;
                            }
                            let v = (px[(c * s + iy as usize) * s + ix as usize] - 127.0) / 128.0;
                            acc += f64::from(v) * f64::from(w[((n * 3 + c) * 3 + ky) * 3 + kx]);
                        }
                    }
                }
                out[(oy * so + ox) * cout + n] = (acc as f32).clamp(0.0, 6.0);
            }
        }
    }
    out
}

#[test]
fn stem_matches_naive_at_even_and_odd_sizes() {
    for isa in levels() {
        for s in [9, 16, 17] {
            let cout = 32;
            let w = values(cout * 27, 11, -0.5, 0.5);
            let b = values(cout, 12, -0.5, 0.5);
            let px = values(3 * s * s, 13, 0.0, 255.0);
            let st = super::stem::Stem::pack(isa, &w, &b, 3, 2);
            let so = st.out_side(s);
            let mut patch = vec![0f32; st.patch_len(s)];
            let mut out = vec![f32::NAN; so * so * cout];
            st.rows(&px, s, &mut patch, &mut out, 0..so);
            let e = max_rel(&out, &stem_naive(&w, &b, &px, s));
            assert!(e < 1e-5, "{isa:?} s{s}: {e}");
        }
    }
}

/// A small random Lite-shaped network (both kernels, both strides, with and
/// without expansion and residual).
fn tiny_spec(input: usize) -> LiteSpec {
    let dense = |k: usize, n: usize, seed: u64| DenseSpec {
        w: values(k * n, seed, -0.3, 0.3),
        b: values(n, seed + 1, -0.1, 0.3),
        k,
        n,
    };
    let block = |cin: usize, e: usize, cout: usize, k: usize, s: usize, seed: u64| BlockSpec {
        expand: (e != cin).then(|| dense(cin, e, seed)),
        dw_taps: values(k * k * e, seed + 2, -0.4, 0.4),
        dw_bias: values(e, seed + 3, -0.1, 0.3),
        kernel: k,
        stride: s,
        project: dense(e, cout, seed + 4),
        residual: s == 1 && cin == cout,
    };
    LiteSpec {
        input,
        stem_w: values(16 * 27, 20, -0.3, 0.3),
        stem_b: values(16, 21, -0.1, 0.2),
        blocks: vec![
            block(16, 16, 8, 3, 1, 30),
            block(8, 48, 24, 3, 2, 40),
            block(24, 72, 24, 5, 1, 50),
            block(24, 72, 40, 5, 2, 60),
        ],
        head: dense(40, 64, 70),
    }
}

#[test]
fn batch_modes_and_threads_agree_with_one_worker() {
    // 37: odd maps; 40: two blocks in a row on even maps (20 -> 10, 10).
    for side in [37, 40] {
        modes_agree(side);
    }
}

fn modes_agree(side: usize) {
    let spec = tiny_spec(side);
    let img = 3 * side * side;
    let px = values(5 * img, 80, 0.0, 255.0);
    for isa in levels() {
        let mut one = LiteEngine::new(&spec, isa, 1);
        one.set_fuse_bytes(usize::MAX);
        let dim = one.feature_dim();
        let mut want = vec![0f32; 5 * dim];
        one.features(&px, 5, &mut want);
        for (threads, fuse) in [
            (1, 0),
            (2, 0),
            (2, usize::MAX),
            (3, 0),
            (3, 4096),
            (7, 0),
            (7, usize::MAX),
        ] {
            let mut e = LiteEngine::new(&spec, isa, threads);
            e.set_fuse_bytes(fuse);
            for batch in [1, 2, 5] {
                let mut got = vec![f32::NAN; batch * dim];
                // Twice: the second run reuses the arenas.
                for _ in 0..2 {
                    e.features(&px, batch, &mut got);
                    let err = max_rel(&got, &want[..batch * dim]);
                    assert!(
                        err < 1e-6,
                        "{isa:?} threads {threads} fuse {fuse} batch {batch}: {err}"
                    );
                }
            }
        }
    }
}

#[test]
fn levels_agree_with_each_other() {
    let spec = tiny_spec(33);
    let px = values(2 * 3 * 33 * 33, 90, 0.0, 255.0);
    let run = |isa| {
        let e = LiteEngine::new(&spec, isa, 1);
        let mut f = vec![0f32; 2 * e.feature_dim()];
        e.features(&px, 2, &mut f);
        f
    };
    let base = run(Isa::Portable);
    for isa in levels() {
        let e = max_rel(&run(isa), &base);
        assert!(e < 1e-5, "{isa:?}: {e}");
    }
}

/// Throughput of representative GEMM shapes (not a test: `--ignored --nocapture`).
#[test]
#[ignore = "throughput of the GEMM tiles, prints figures: run with --ignored --nocapture"]
fn gemm_throughput() {
    let isa = Isa::detect();
    for &(m, k, n) in &[
        (112, 16, 96),
        (56, 24, 144),
        (56, 144, 24),
        (28, 40, 240),
        (784, 240, 40),
        (14, 80, 480),
        (196, 480, 80),
        (7, 192, 1152),
        (49, 1152, 192),
        (49, 320, 1280),
    ] {
        let a = values(m * k, 1, -1.0, 1.0);
        let w = values(k * n, 2, -0.5, 0.5);
        let b = values(n, 3, -0.5, 0.5);
        let d = Dense::pack(isa, &w, &b, k, n);
        let mut c = vec![0f32; m * n];
        let reps = (200_000_000 / (m * k * n)).max(1);
        let t = std::time::Instant::now();
        for _ in 0..reps {
            gemm(
                &a,
                m,
                &d,
                true,
                Out::Store {
                    c: &mut c,
                    res: None,
                },
                0..d.panel_count(),
            );
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{isa:?} m{m} k{k} n{n}: {:.1} GMAC/s",
            (reps * m * k * n) as f64 / s / 1e9
        );
    }
}

/// Throughput of Lite0's depthwise shapes (not a test: `--ignored --nocapture`).
#[test]
#[ignore = "throughput of the depthwise kernels, prints figures: run with --ignored --nocapture"]
fn depthwise_throughput() {
    let isa = Isa::detect();
    for &(h, c, k, s) in &[
        (112, 32, 3, 1),
        (112, 96, 3, 2),
        (56, 144, 3, 1),
        (56, 144, 5, 2),
        (28, 240, 5, 1),
        (28, 240, 3, 2),
        (14, 480, 3, 1),
        (14, 480, 5, 1),
        (14, 672, 5, 1),
        (14, 672, 5, 2),
        (7, 1152, 5, 1),
        (7, 1152, 3, 1),
    ] {
        let d = Depthwise {
            c,
            k,
            stride: s,
            taps: values(k * k * c, 1, -0.5, 0.5),
            bias: values(c, 2, 0.0, 0.1),
        };
        let x = values(h * h * c, 3, 0.0, 1.0);
        let (ho, wo) = out_size(&d, h, h);
        let mut out = vec![0f32; ho * wo * c];
        let macs = ho * wo * c * k * k;
        let reps = (50_000_000 / macs).max(1);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                depthwise(isa, &d, &x, h, h, &mut out, 0..ho);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{isa:?} {h}x{h}x{c} k{k} s{s}: {:.1} GMAC/s",
            (reps * macs) as f64 / best / 1e9
        );
    }
}
