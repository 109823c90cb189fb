//! Stage 1 (images), the fast JPEG path's first step: the markers before
//! the entropy-coded data of a baseline (or extended sequential, 8-bit)
//! Huffman JPEG, read into a [`Frame`]. Anything this path does not decode
//! (progressive or arithmetic coding, 12-bit samples, 2 or 4 components,
//! an Adobe transform, a first scan without every component) is
//! [`Parsed::Unsupported`], and the caller hands the file to jpeg-decoder.

use super::bits::HuffmanTable;
pub use super::error::JpegError;

/// One colour component of the frame.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    pub id: u8,
    pub h: usize,
    pub v: usize,
    pub quant: usize,
    pub dc_table: usize,
    pub ac_table: usize,
}

/// The frame and the first scan's tables, with the scan's data offset.
#[derive(Debug)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub components: Vec<Component>,
    /// Quantisation tables in natural (row-major) order.
    pub quant: [[u16; 64]; 4],
    pub dc: [Option<HuffmanTable>; 4],
    pub ac: [Option<HuffmanTable>; 4],
    /// MCUs between restart markers (0: none).
    pub restart_interval: usize,
    /// The EXIF chunk (from the TIFF header on), if any.
    pub exif: Option<Vec<u8>>,
    /// Offset of the first scan's entropy-coded data.
    pub scan_start: usize,
}

impl Frame {
    pub fn h_max(&self) -> usize {
        self.components.iter().map(|c| c.h).max().unwrap_or(1)
    }
    pub fn v_max(&self) -> usize {
        self.components.iter().map(|c| c.v).max().unwrap_or(1)
    }
}

/// What the header says about the fast path.
#[derive(Debug)]
pub enum Parsed {
    Frame(Box<Frame>),
    Unsupported,
}

/// Zigzag index -> natural (row-major) index.
pub const UNZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

struct Segment<'a> {
    marker: u8,
    body: &'a [u8],
}

/// Reads the segment at `pos` (just after SOI or the previous segment).
fn segment(b: &[u8], pos: usize) -> Result<(Segment<'_>, usize), JpegError> {
    let mut p = pos;
    // Fill bytes (0xFF) may precede a marker.
    while b.get(p) == Some(&0xFF) && b.get(p + 1) == Some(&0xFF) {
        p += 1;
    }
    if b.get(p) != Some(&0xFF) {
        return Err(JpegError::Malformed("marker"));
    }
    let marker = *b.get(p + 1).ok_or(JpegError::Truncated("header"))?;
    let len = u16::from_be_bytes([
        *b.get(p + 2).ok_or(JpegError::Truncated("header"))?,
        *b.get(p + 3).ok_or(JpegError::Truncated("header"))?,
    ]) as usize;
    if len < 2 {
        return Err(JpegError::Malformed("length"));
    }
    let body = b
        .get(p + 4..p + 2 + len)
        .ok_or(JpegError::Truncated("header"))?;
    Ok((Segment { marker, body }, p + 2 + len))
}

/// Reads the markers up to the first scan.
pub fn parse(b: &[u8]) -> Result<Parsed, JpegError> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err(JpegError::Malformed("SOI"));
    }
    let mut f = Frame {
        width: 0,
        height: 0,
        components: Vec::new(),
        quant: [[0; 64]; 4],
        dc: [None, None, None, None],
        ac: [None, None, None, None],
        restart_interval: 0,
        exif: None,
        scan_start: 0,
    };
    let mut pos = 2;
    loop {
        let (seg, next) = segment(b, pos)?;
        pos = next;
        match seg.marker {
            0xC0 | 0xC1 => frame(&mut f, seg.body)?,
            // Progressive, lossless, arithmetic, hierarchical: not here.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Ok(Parsed::Unsupported)
            }
            0xC4 => huffman(&mut f, seg.body)?,
            0xDB => quant(&mut f, seg.body)?,
            0xDD => {
                let r = seg.body.get(..2).ok_or(JpegError::Malformed("DRI"))?;
                f.restart_interval = u16::from_be_bytes([r[0], r[1]]) as usize;
            }
            0xE1 if seg.body.starts_with(b"Exif\0\0") && f.exif.is_none() => {
                f.exif = Some(seg.body[6..].to_vec());
            }
            // An Adobe segment may say the samples are RGB, not YCbCr.
            0xEE if seg.body.starts_with(b"Adobe") => return Ok(Parsed::Unsupported),
            0xDA => {
                if !scan(&mut f, seg.body)? {
                    return Ok(Parsed::Unsupported);
                }
                f.scan_start = pos;
                return Ok(Parsed::Frame(Box::new(f)));
            }
            0xD9 => return Err(JpegError::Truncated("header")),
            _ => {}
        }
    }
}

/// SOF0/SOF1: size and components; false-y cases become `Unsupported` at
/// the scan (the check needs the scan's component list anyway).
fn frame(f: &mut Frame, s: &[u8]) -> Result<(), JpegError> {
    if s.len() < 6 {
        return Err(JpegError::Malformed("SOF"));
    }
    let precision = s[0];
    f.height = u16::from_be_bytes([s[1], s[2]]) as usize;
    f.width = u16::from_be_bytes([s[3], s[4]]) as usize;
    let n = s[5] as usize;
    if s.len() < 6 + 3 * n {
        return Err(JpegError::Malformed("SOF"));
    }
    f.components = (0..n)
        .map(|i| {
            let c = &s[6 + 3 * i..9 + 3 * i];
            Component {
                id: c[0],
                h: (c[1] >> 4) as usize,
                v: (c[1] & 15) as usize,
                quant: (c[2] & 3) as usize,
                dc_table: 0,
                ac_table: 0,
            }
        })
        .collect();
    if precision != 8 {
        // Marks the frame as one this path leaves alone.
        f.components.clear();
    }
    Ok(())
}

fn huffman(f: &mut Frame, mut s: &[u8]) -> Result<(), JpegError> {
    while !s.is_empty() {
        if s.len() < 17 {
            return Err(JpegError::Malformed("DHT"));
        }
        let (class, id) = (s[0] >> 4, (s[0] & 15) as usize);
        let mut counts = [0u8; 16];
        counts.copy_from_slice(&s[1..17]);
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let values = s.get(17..17 + total).ok_or(JpegError::Malformed("DHT"))?;
        if id > 3 || class > 1 {
            return Err(JpegError::Malformed("DHT"));
        }
        let t = HuffmanTable::new(&counts, values, class == 1)?;
        if class == 0 {
            f.dc[id] = Some(t);
        } else {
            f.ac[id] = Some(t);
        }
        s = &s[17 + total..];
    }
    Ok(())
}

fn quant(f: &mut Frame, mut s: &[u8]) -> Result<(), JpegError> {
    while !s.is_empty() {
        let (wide, id) = (s[0] >> 4, (s[0] & 15) as usize);
        let n = if wide == 0 { 64 } else { 128 };
        let body = s.get(1..1 + n).ok_or(JpegError::Malformed("DQT"))?;
        if id > 3 {
            return Err(JpegError::Malformed("DQT"));
        }
        for k in 0..64 {
            let q = if wide == 0 {
                body[k] as u16
            } else {
                u16::from_be_bytes([body[2 * k], body[2 * k + 1]])
            };
            f.quant[id][UNZIGZAG[k] as usize] = q;
        }
        s = &s[1 + n..];
    }
    Ok(())
}

/// SOS: true when the scan is the one this path decodes: every component
/// of a 1- or 3-component 8-bit frame, interleaved, full spectrum, with
/// sampling factors the upsampler handles.
fn scan(f: &mut Frame, s: &[u8]) -> Result<bool, JpegError> {
    let n = *s.first().ok_or(JpegError::Malformed("SOS"))? as usize;
    let tail = s
        .get(1 + 2 * n..4 + 2 * n)
        .ok_or(JpegError::Malformed("SOS"))?;
    let usable = matches!(f.components.len(), 1 | 3)
        && n == f.components.len()
        && tail == [0, 63, 0]
        && f.width > 0
        && f.height > 0
        && sampling_supported(&f.components);
    if !usable {
        return Ok(false);
    }
    for i in 0..n {
        let (id, tables) = (s[1 + 2 * i], s[2 + 2 * i]);
        let c = &mut f.components[i];
        if c.id != id {
            return Ok(false);
        }
        c.dc_table = (tables >> 4) as usize & 3;
        c.ac_table = (tables & 15) as usize & 3;
    }
    // Component ids 'R', 'G', 'B' mean RGB samples (as in jpeg-decoder).
    let ids: Vec<u8> = f.components.iter().map(|c| c.id).collect();
    Ok(ids != b"RGB")
}

/// Luma 1x1 (4:4:4), 2x1 (4:2:2) or 2x2 (4:2:0) with chroma 1x1, or one
/// component at 1x1. 1x2 (4:4:0) is left to jpeg-decoder: no fixture
/// tests it against the reference (Pillow cannot write it).
fn sampling_supported(c: &[Component]) -> bool {
    match c {
        [y] => y.h == 1 && y.v == 1,
        [y, cb, cr] => {
            matches!((y.h, y.v), (1, 1) | (2, 1) | (2, 2))
                && [cb, cr].iter().all(|c| c.h == 1 && c.v == 1)
        }
        _ => false,
    }
}
