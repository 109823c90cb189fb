//! Stage 1 (images), the fast JPEG path's second step: the interleaved
//! scan's MCUs, each 8x8 block reduced straight to a 4x4 (scale 1/2) or
//! 2x2 (scale 1/4) block of its component's plane. Only the coefficients
//! the reduced inverse DCT reads are kept; the others are skipped in the
//! bit stream without being stored or dequantised, which is what makes
//! this path faster than a full decode.
//!
//! The reduced transforms are those of jpeg-decoder 0.3 (Dugad and Ahuja's
//! scheme, as in stb_image, 12-bit fixed point), so the planes equal the
//! ones jpeg-decoder produces at the same scale (tested in `super::tests`).

use std::num::Wrapping as W;

use super::bits::BitReader;
use super::headers::{Frame, JpegError, UNZIGZAG};

/// One component's samples at the reduced scale, `stride` wide (whole
/// blocks) and `rows` high; `width x height` of them are the image.
pub struct Plane {
    pub data: Vec<u8>,
    pub stride: usize,
    pub width: usize,
    pub height: usize,
}

/// Side of a reduced block for scale `1/denom` (2 or 4).
fn side(denom: usize) -> usize {
    8 / denom
}

/// Zigzag positions the reduced transform reads (the rest are skipped):
/// the 4x4 corner ends at zigzag 24, the 2x2 corner at zigzag 4.
fn kept(denom: usize) -> usize {
    if denom == 2 {
        25
    } else {
        5
    }
}

/// Decodes the scan into one plane per component at scale `1/denom`.
pub fn decode_planes(b: &[u8], f: &Frame, denom: usize) -> Result<Vec<Plane>, JpegError> {
    debug_assert!(denom == 2 || denom == 4);
    let s = side(denom);
    let (hmax, vmax) = (f.h_max(), f.v_max());
    let mcux = f.width.div_ceil(8 * hmax);
    let mcuy = f.height.div_ceil(8 * vmax);
    let mut planes: Vec<Plane> = f
        .components
        .iter()
        .map(|c| {
            let stride = mcux * c.h * s;
            Plane {
                data: vec![0; stride * mcuy * c.v * s],
                stride,
                width: (f.width * c.h * s).div_ceil(hmax * 8),
                height: (f.height * c.v * s).div_ceil(vmax * 8),
            }
        })
        .collect();
    let tables = f
        .components
        .iter()
        .map(|c| {
            let dc = f.dc[c.dc_table]
                .as_ref()
                .ok_or(JpegError::MissingTable("DC"))?;
            let ac = f.ac[c.ac_table]
                .as_ref()
                .ok_or(JpegError::MissingTable("AC"))?;
            Ok((dc, ac, &f.quant[c.quant]))
        })
        .collect::<Result<Vec<_>, JpegError>>()?;
    let keep = kept(denom);
    let mut r = BitReader::new(b, f.scan_start);
    let mut pred = vec![0i16; f.components.len()];
    let mut coef = [0i16; 64];
    for my in 0..mcuy {
        for mx in 0..mcux {
            let done = my * mcux + mx; // MCUs before this one
            if f.restart_interval > 0 && done > 0 && done.is_multiple_of(f.restart_interval) {
                if !r.restart() {
                    return Err(JpegError::Malformed("restart marker"));
                }
                pred.fill(0);
            }
            for (ci, c) in f.components.iter().enumerate() {
                let (dc, ac, q) = tables[ci];
                let p = &mut planes[ci];
                for v in 0..c.v {
                    for h in 0..c.h {
                        for &z in &UNZIGZAG[..keep] {
                            coef[z as usize] = 0;
                        }
                        block(&mut r, dc, ac, &mut pred[ci], keep, &mut coef)?;
                        let (bx, by) = ((mx * c.h + h) * s, (my * c.v + v) * s);
                        let out = &mut p.data[by * p.stride + bx..];
                        if denom == 2 {
                            idct_4x4(&coef, q, p.stride, out);
                        } else {
                            idct_2x2(&coef, q, p.stride, out);
                        }
                    }
                }
            }
        }
    }
    if r.past_end() {
        return Err(JpegError::Truncated("scan"));
    }
    Ok(planes)
}

/// One block (F.2.2): the DC difference, then the AC run/size symbols;
/// zigzag positions below `keep` are stored, the rest only skipped.
#[inline(always)]
fn block(
    r: &mut BitReader,
    dc: &super::bits::HuffmanTable,
    ac: &super::bits::HuffmanTable,
    pred: &mut i16,
    keep: usize,
    coef: &mut [i16; 64],
) -> Result<(), JpegError> {
    let size = r.symbol(dc)?;
    *pred = pred.wrapping_add(r.extend(size as u32) as i16);
    coef[0] = *pred;
    let mut k = 1usize;
    while k < keep {
        let rs = r.symbol(ac)?;
        let (run, size) = ((rs >> 4) as usize, (rs & 15) as u32);
        if size == 0 {
            if run != 15 {
                return Ok(());
            }
            k += 16;
            continue;
        }
        k += run;
        if k >= keep {
            r.skip(size);
            k += 1;
            break;
        }
        coef[UNZIGZAG[k] as usize] = r.extend(size) as i16;
        k += 1;
    }
    while k < 64 {
        k = r.skip_coefficients(ac, k)?;
    }
    Ok(())
}

fn deq(coef: &[i16; 64], q: &[u16; 64], i: usize) -> W<i32> {
    W(i32::from(coef[i]).wrapping_mul(i32::from(q[i])))
}

fn clamp(x: W<i32>) -> u8 {
    x.0.clamp(0, 255) as u8
}

/// The rotation constants in 12-bit fixed point, `(x * 4096 + 0.5) as
/// i32` as stb_image computes them: 0.541196100, -1.847759065, 0.765366865.
const C1: W<i32> = W(2217);
const C2: W<i32> = W(-7567);
const C3: W<i32> = W(3135);

/// 2x2 from the four lowest coefficients (Dugad and Ahuja).
fn idct_2x2(coef: &[i16; 64], q: &[u16; 64], stride: usize, out: &mut [u8]) {
    let (s00, s01, s10, s11) = (
        deq(coef, q, 0),
        deq(coef, q, 1),
        deq(coef, q, 8),
        deq(coef, q, 9),
    );
    let bias = W(4 + (128 << 3));
    let (top, bottom) = (s00 + s10 + bias, s00 - s10 + bias);
    let (even, odd) = (s01 + s11, s01 - s11);
    out[0] = clamp((top + even) >> 3);
    out[1] = clamp((top - even) >> 3);
    out[stride] = clamp((bottom + odd) >> 3);
    out[stride + 1] = clamp((bottom - odd) >> 3);
}

/// The 4-point butterfly of the reduced transform: (x0, x2) carry the
/// even part, the odd part is rotated by the two constants.
fn butterfly([s0, s1, s2, s3]: [W<i32>; 4], shift: usize, round: W<i32>) -> [W<i32>; 4] {
    let p1 = (s1 + s3) * C1;
    let t0 = p1 + s3 * C2 + round;
    let t2 = p1 + s1 * C3 + round;
    let (t0, t2) = if shift > 0 {
        (t0 >> shift, t2 >> shift)
    } else {
        (t0, t2)
    };
    [s0 + s2, t2, s0 - s2, t0]
}

/// 4x4 from the 4x4 lowest coefficients: columns (2 fraction bits kept),
/// then rows, with the +128 level shift folded into the rounding.
fn idct_4x4(coef: &[i16; 64], q: &[u16; 64], stride: usize, out: &mut [u8]) {
    const CONST_BITS: usize = 12;
    const PASS1_BITS: usize = 2;
    const FINAL_BITS: usize = CONST_BITS + PASS1_BITS + 3;
    let mut t = [W(0i32); 16];
    for i in 0..4 {
        let s = [0, 1, 2, 3].map(|r| deq(coef, q, i + 8 * r));
        let [e, t2, d, t0] = butterfly(s, CONST_BITS - PASS1_BITS, W(512));
        let (x0, x2) = (e << PASS1_BITS, d << PASS1_BITS);
        t[i] = x0 + t2;
        t[i + 12] = x0 - t2;
        t[i + 4] = x2 + t0;
        t[i + 8] = x2 - t0;
    }
    let bias = W((1 << (FINAL_BITS - 1)) + (128 << FINAL_BITS));
    for i in 0..4 {
        let s = [t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]];
        let [e, t2, d, t0] = butterfly(s, 0, W(0));
        let (x0, x2) = ((e << CONST_BITS) + bias, (d << CONST_BITS) + bias);
        let o = &mut out[i * stride..i * stride + 4];
        o[0] = clamp((x0 + t2) >> FINAL_BITS);
        o[3] = clamp((x0 - t2) >> FINAL_BITS);
        o[1] = clamp((x2 + t0) >> FINAL_BITS);
        o[2] = clamp((x2 - t0) >> FINAL_BITS);
    }
}
