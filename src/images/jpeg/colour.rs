//! Stage 1 (images), the fast JPEG path's last step: the reduced planes
//! become interleaved 8-bit RGB. Subsampled chroma is upsampled with the
//! triangle ("fancy") filter of jpeg-decoder 0.3, row by row, then YCbCr
//! goes to RGB with BT.601 in 20-bit fixed point (libjpeg's jdcolor.c,
//! and jpeg-decoder's portable path).

use image::RgbImage;

use super::scan::Plane;

/// How a component's plane maps onto the output grid.
#[derive(Clone, Copy, PartialEq)]
enum Up {
    Same,
    H2,
    H2V2,
}

/// `planes` (1 = gray, 3 = YCbCr) with their sampling factors `(h, v)`
/// against the largest `(hmax, vmax)`, as an RGB image of `width x height`.
/// `None` for vertical-only subsampling (4:4:0), which has no reference
/// fixture (Pillow cannot write it) and is left to jpeg-decoder.
pub fn to_rgb(
    planes: &[Plane],
    sampling: &[(usize, usize)],
    (hmax, vmax): (usize, usize),
    width: usize,
    height: usize,
) -> Option<RgbImage> {
    let mut rgb = vec![0u8; width * height * 3];
    if let [y] = planes {
        for (row, out) in rgb.chunks_exact_mut(width * 3).enumerate() {
            let line = &y.data[row * y.stride..row * y.stride + width];
            for (px, &v) in out.chunks_exact_mut(3).zip(line) {
                px.fill(v);
            }
        }
        return RgbImage::from_raw(width as u32, height as u32, rgb);
    }
    // jpeg-decoder also treats a 1-pixel-wide or -high output as not
    // subsampled; at 1/2 or 1/4 scale an output is at least twice the
    // input size, so that case never reaches this path.
    let ups: Option<Vec<Up>> = sampling
        .iter()
        .map(|&(h, v)| match (h == hmax, v == vmax) {
            (true, true) => Some(Up::Same),
            (false, true) => Some(Up::H2),
            (false, false) => Some(Up::H2V2),
            (true, false) => None,
        })
        .collect();
    let ups = ups?;
    let mut lines = vec![vec![0u8; width + 1]; 3];
    for (row, out) in rgb.chunks_exact_mut(width * 3).enumerate() {
        for ((p, &up), line) in planes.iter().zip(&ups).zip(lines.iter_mut()) {
            upsample_row(p, up, row, width, line);
        }
        ycbcr_row(&lines[0][..width], &lines[1], &lines[2], out);
    }
    RgbImage::from_raw(width as u32, height as u32, rgb)
}

/// The two source rows of output row `row` when doubling vertically: the
/// nearer one and the one on the other side (clamped at the edges).
fn near_far(row: usize, height: usize) -> (usize, usize) {
    let near = row / 2;
    let far = if row.is_multiple_of(2) {
        near.saturating_sub(1)
    } else {
        (near + 1).min(height - 1)
    };
    (near, far)
}

fn upsample_row(p: &Plane, up: Up, row: usize, width: usize, out: &mut [u8]) {
    let at = |r: usize| &p.data[r * p.stride..r * p.stride + p.width];
    match up {
        Up::Same => out[..width].copy_from_slice(&at(row)[..width]),
        Up::H2 => h2(at(row), out),
        Up::H2V2 => {
            let (n, f) = near_far(row, p.height);
            h2v2(at(n), at(f), out);
        }
    }
}

/// Horizontal doubling: each output sample 3/4 its own input, 1/4 the
/// neighbour on its side; the two ends copy and blend as jpeg-decoder does.
fn h2(input: &[u8], out: &mut [u8]) {
    let w = input.len();
    if w == 1 {
        out[0] = input[0];
        out[1] = input[0];
        return;
    }
    out[0] = input[0];
    out[1] = ((input[0] as u32 * 3 + input[1] as u32 + 2) >> 2) as u8;
    for i in 1..w - 1 {
        let s = 3 * input[i] as u32 + 2;
        out[i * 2] = ((s + input[i - 1] as u32) >> 2) as u8;
        out[i * 2 + 1] = ((s + input[i + 1] as u32) >> 2) as u8;
    }
    out[(w - 1) * 2] = ((input[w - 1] as u32 * 3 + input[w - 2] as u32 + 2) >> 2) as u8;
    out[(w - 1) * 2 + 1] = input[w - 1];
}

/// Both directions: rows blended 3:1 first, then columns 3:1 (x16 total).
fn h2v2(near: &[u8], far: &[u8], out: &mut [u8]) {
    let w = near.len();
    let t = |i: usize| 3 * near[i] as u32 + far[i] as u32;
    if w == 1 {
        let v = ((t(0) + 2) >> 2) as u8;
        out[0] = v;
        out[1] = v;
        return;
    }
    let mut t1 = t(0);
    out[0] = ((t1 + 2) >> 2) as u8;
    for i in 1..w {
        let t0 = t1;
        t1 = t(i);
        out[i * 2 - 1] = ((3 * t0 + t1 + 8) >> 4) as u8;
        out[i * 2] = ((3 * t1 + t0 + 8) >> 4) as u8;
    }
    out[w * 2 - 1] = ((t1 + 2) >> 2) as u8;
}

const FIX: i32 = 20;

/// `(x * 2^20 + 0.5) as i32` of the BT.601 factors 1.402, 0.34414,
/// 0.71414 and 1.772.
const CR_R: i32 = 1_470_104;
const CB_G: i32 = 360_857;
const CR_G: i32 = 748_830;
const CB_B: i32 = 1_858_077;

fn fixed_to_u8(v: i32) -> u8 {
    (v >> FIX).clamp(0, 255) as u8
}

fn ycbcr_row(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    for (((px, &y), &cb), &cr) in out.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
        let y = ((y as i32) << FIX) + (1 << (FIX - 1));
        let (cb, cr) = (cb as i32 - 128, cr as i32 - 128);
        px[0] = fixed_to_u8(y + CR_R * cr);
        px[1] = fixed_to_u8(y - CB_G * cb - CR_G * cr);
        px[2] = fixed_to_u8(y + CB_B * cb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_factors_are_the_rounded_bt601_ones() {
        for (c, x) in [
            (CR_R, 1.402),
            (CB_G, 0.34414),
            (CR_G, 0.71414),
            (CB_B, 1.772),
        ] {
            assert_eq!(c, (x * (1u32 << FIX) as f64 + 0.5) as i32);
        }
    }

    #[test]
    fn gray_and_neutral_chroma_give_gray() {
        let mut out = [0u8; 9];
        ycbcr_row(&[0, 128, 255], &[128; 3], &[128; 3], &mut out);
        assert_eq!(out, [0, 0, 0, 128, 128, 128, 255, 255, 255]);
        // Pure red in BT.601: Y 76, Cb 85, Cr 255 -> about (254, 0, 0).
        ycbcr_row(&[76], &[85], &[255], &mut out[..3]);
        assert!(
            out[0] >= 253 && out[1] <= 1 && out[2] <= 1,
            "{:?}",
            &out[..3]
        );
    }

    #[test]
    fn upsampling_blends_three_to_one() {
        let mut out = [0u8; 4];
        h2(&[0, 100], &mut out);
        assert_eq!(out, [0, 25, 75, 100]);
        h2v2(&[0, 160], &[0, 160], &mut out);
        assert_eq!(out, [0, 40, 120, 160]);
        assert_eq!(near_far(0, 5), (0, 0));
        assert_eq!(near_far(1, 5), (0, 1));
        assert_eq!(near_far(4, 5), (2, 1));
        assert_eq!(near_far(9, 5), (4, 4));
    }
}
