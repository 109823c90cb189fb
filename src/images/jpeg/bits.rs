//! Stage 1 (images), the fast JPEG path's entropy layer: a bit reader over
//! the entropy-coded bytes (0xFF 0x00 stuffing removed, eight bytes at a
//! time when none of them is 0xFF) and canonical Huffman tables with a
//! 9-bit first-level lookup (ITU T.81 Annex C and F.2.2).

use super::error::JpegError;

/// Bits of the first-level lookup.
const LOOKUP: u32 = 9;

/// Bits of the AC skip lookup.
const SKIP: u32 = 11;

/// A Huffman table: lookup `(length << 8) | symbol` (length 0: longer code),
/// and for longer codes the largest code of each length and the offset of
/// its first symbol. AC tables also have a skip lookup: for a code of at
/// most 11 bits, `bits | advance << 5`, where `bits` counts the code and its
/// magnitude bits and `advance` is how far the zigzag index moves (64 at
/// end of block); 0 for a longer code.
#[derive(Debug, Clone)]
pub struct HuffmanTable {
    lookup: Box<[u16; 1 << LOOKUP]>,
    skip: Option<Box<[u16; 1 << SKIP]>>,
    maxcode: [i32; 17],
    offset: [i32; 17],
    values: Vec<u8>,
}

impl HuffmanTable {
    /// From a DHT segment's 16 code counts and its symbols; a DC symbol
    /// above 11 or an AC size above 10 is refused.
    pub fn new(counts: &[u8; 16], values: &[u8], ac: bool) -> Result<Self, JpegError> {
        let bad = |&v: &u8| if ac { v & 15 > 10 } else { v > 11 };
        if values.iter().any(bad) {
            return Err(JpegError::Malformed("DHT symbol"));
        }
        let mut lookup = Box::new([0u16; 1 << LOOKUP]);
        let mut skip = ac.then(|| Box::new([0u16; 1 << SKIP]));
        let (mut maxcode, mut offset) = ([-1i32; 17], [0i32; 17]);
        let (mut code, mut k) = (0u32, 0usize);
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as usize;
            offset[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                if code >= 1 << len {
                    return Err(JpegError::Malformed("DHT code lengths"));
                }
                if len <= LOOKUP {
                    let first = (code << (LOOKUP - len)) as usize;
                    let entry = ((len as u16) << 8) | values[k] as u16;
                    lookup[first..first + (1 << (LOOKUP - len))].fill(entry);
                }
                if let (Some(t), true) = (skip.as_mut(), len <= SKIP) {
                    let first = (code << (SKIP - len)) as usize;
                    t[first..first + (1 << (SKIP - len))].fill(skip_entry(len, values[k]));
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Ok(HuffmanTable {
            lookup,
            skip,
            maxcode,
            offset,
            values: values.to_vec(),
        })
    }
}

/// A code longer than the first-level lookup, from the top 16 bits of
/// `acc`: its length and symbol.
#[cold]
#[inline(never)]
fn long_code(acc: u64, t: &HuffmanTable) -> Result<(u32, u8), JpegError> {
    let bits = (acc >> 48) as i32;
    for len in LOOKUP as usize + 1..=16 {
        let code = bits >> (16 - len);
        if code <= t.maxcode[len] {
            let i = (code + t.offset[len]) as usize;
            let symbol = t.values.get(i).copied().ok_or(JpegError::BadCode)?;
            return Ok((len as u32, symbol));
        }
    }
    Err(JpegError::BadCode)
}

/// The skip entry of an AC symbol whose code has `len` bits.
fn skip_entry(len: u32, rs: u8) -> u16 {
    let (run, size) = ((rs >> 4) as u16, (rs & 15) as u16);
    let advance = match (run, size) {
        (15, 0) => 16,
        (_, 0) => 64,
        _ => run + 1,
    };
    (len as u16 + size) | advance << 5
}

#[cfg(test)]
impl HuffmanTable {
    /// Length of the longest code.
    pub fn longest(&self) -> usize {
        (1..=16).rev().find(|&l| self.maxcode[l] >= 0).unwrap_or(0)
    }
}

/// Reads bits MSB first; past a marker or the end it reads zeros and
/// remembers why. `Copy`, and its cold paths take and return it by value,
/// so that in the decode loop its state stays in registers (a `&mut self`
/// call anywhere in the loop would pin it to memory).
#[derive(Clone, Copy)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    stopped: bool,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            acc: 0,
            n: 0,
            stopped: false,
        }
    }

    /// Tops the buffer up to at least 32 bits.
    #[inline(always)]
    fn fill(&mut self) {
        if self.n >= 32 {
            return;
        }
        if let Some(w) = self.data.get(self.pos..self.pos + 8) {
            let x = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            let inv = !x;
            if inv.wrapping_sub(ONES) & !inv & HIGHS == 0 {
                // No 0xFF among the eight: take whole bytes while they fit.
                let take = (63 - self.n) / 8;
                let keep = 64 - 8 * take;
                self.acc |= (x >> keep) << (keep - self.n);
                self.n += 8 * take;
                self.pos += take as usize;
                return;
            }
        }
        *self = self.fill_slow();
    }

    #[cold]
    #[inline(never)]
    fn fill_slow(mut self) -> Self {
        while self.n <= 56 {
            let mut byte = 0u8;
            if !self.stopped {
                match self.data.get(self.pos) {
                    Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0) => {
                        byte = 0xFF;
                        self.pos += 2;
                    }
                    Some(&0xFF) | None => self.stopped = true,
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                }
            }
            self.acc |= (byte as u64) << (56 - self.n);
            self.n += 8;
        }
        self
    }

    #[inline(always)]
    fn consume(&mut self, k: u32) {
        self.acc <<= k;
        self.n -= k;
    }

    /// `k` (1..=16) raw bits.
    #[inline(always)]
    fn bits(&mut self, k: u32) -> u32 {
        let v = (self.acc >> (64 - k)) as u32;
        self.consume(k);
        v
    }

    /// One Huffman symbol.
    #[inline(always)]
    pub fn symbol(&mut self, t: &HuffmanTable) -> Result<u8, JpegError> {
        self.fill();
        let e = t.lookup[(self.acc >> (64 - LOOKUP)) as usize];
        if e >> 8 != 0 {
            self.consume((e >> 8) as u32);
            return Ok(e as u8);
        }
        let (len, symbol) = long_code(self.acc, t)?;
        self.consume(len);
        Ok(symbol)
    }

    /// Steps over one AC coefficient (or run, or the end of block) without
    /// reading its value: the zigzag advance (64 at end of block).
    #[inline(always)]
    pub fn skip_coefficient(&mut self, t: &HuffmanTable) -> Result<usize, JpegError> {
        self.fill();
        if let Some(skip) = &t.skip {
            let e = skip[(self.acc >> (64 - SKIP)) as usize];
            if e != 0 {
                self.consume((e & 31) as u32);
                return Ok((e >> 5) as usize);
            }
        }
        let rs = self.symbol(t)?;
        let e = skip_entry(0, rs);
        self.consume((e & 31) as u32);
        Ok((e >> 5) as usize)
    }

    /// The value of a `size`-bit magnitude category (F.2.2.1 EXTEND);
    /// `size` 0 is 0. Needs no refill after [`Self::symbol`]: a symbol and
    /// its extra bits take at most 16 + 15 bits of the 32 it ensured.
    #[inline(always)]
    pub fn extend(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let v = self.bits(size) as i32;
        if v < 1 << (size - 1) {
            v - (1 << size) + 1
        } else {
            v
        }
    }

    /// Drops `size` bits (a coefficient the reduced transform never reads).
    #[inline(always)]
    pub fn skip(&mut self, size: u32) {
        self.consume(size);
    }

    /// Ran out of data (not at a marker): the stream is truncated.
    pub fn past_end(&self) -> bool {
        self.stopped && self.pos >= self.data.len()
    }

    /// At a restart interval's end: drops the padding bits and steps over
    /// the RSTn marker; false when the next marker is not a restart.
    pub fn restart(&mut self) -> bool {
        self.acc = 0;
        self.n = 0;
        self.stopped = false;
        match self.data.get(self.pos..self.pos + 2) {
            Some([0xFF, m]) if (0xD0..=0xD7).contains(m) => {
                self.pos += 2;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of T.81 Table K.3 (luminance DC).
    fn dc_luma() -> HuffmanTable {
        let counts = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
        HuffmanTable::new(&counts, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], false).unwrap()
    }

    #[test]
    fn codes_follow_the_canonical_assignment() {
        // K.3: 0 -> 00, 1 -> 010, 5 -> 110, 6 -> 1110, 11 -> 111111110.
        let t = dc_luma();
        let bytes = [0b0001_0110, 0b1110_1111, 0b1111_0000];
        let mut r = BitReader::new(&bytes, 0);
        let got: Vec<u8> = (0..4).map(|_| r.symbol(&t).unwrap()).collect();
        assert_eq!(got, [0, 1, 5, 6]);
        assert_eq!(r.symbol(&t).unwrap(), 11, "a 9-bit code");
    }

    #[test]
    fn long_codes_use_the_second_level() {
        // 16 codes of length 12 after one of length 1: the long path.
        let mut counts = [0u8; 16];
        counts[0] = 1;
        counts[11] = 16;
        let values: Vec<u8> = (0..17u8).map(|i| (i % 16) << 4).collect();
        let t = HuffmanTable::new(&counts, &values, true).unwrap();
        // First long code is 1000_0000_0000, the fourth 1000_0000_0011.
        let bytes = [0b1000_0000, 0b0011_0000, 0, 0];
        let mut r = BitReader::new(&bytes, 0);
        assert_eq!(r.symbol(&t).unwrap(), 0x40);
        assert_eq!(r.symbol(&t).unwrap(), 0, "then a 1-bit code");
        assert_eq!(t.longest(), 12);
    }

    #[test]
    fn stuffed_bytes_and_markers_are_handled() {
        // 0xFF 0x00 is a data byte 0xFF; 0xFF 0xD0 is a marker, after
        // which zeros are read and the restart steps over it.
        let bytes = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56];
        let mut r = BitReader::new(&bytes, 0);
        r.fill();
        assert_eq!(r.bits(16), 0x12FF);
        assert_eq!(r.bits(8), 0x34);
        assert_eq!(r.bits(16), 0, "zeros past the marker");
        assert!(!r.past_end());
        assert!(r.restart());
        r.fill();
        assert_eq!(r.bits(8), 0x56);
    }

    #[test]
    fn the_eight_byte_refill_equals_the_bytewise_one() {
        let bytes: Vec<u8> = (0..64u32).map(|i| (i * 37 % 251) as u8).collect();
        let mut fast = BitReader::new(&bytes, 0);
        let mut slow = BitReader::new(&bytes, 0);
        for k in [3u32, 11, 16, 1, 7, 13, 16, 9, 2, 15]
            .iter()
            .cycle()
            .take(30)
        {
            fast.fill();
            slow = slow.fill_slow();
            assert_eq!(fast.bits(*k), slow.bits(*k));
        }
    }

    #[test]
    fn extend_gives_signed_magnitudes() {
        // Category 3: 000 -> -7, 011 -> -4, 100 -> 4, 111 -> 7.
        let bytes = [0b0000_1110, 0b0111_0000, 0, 0];
        let mut r = BitReader::new(&bytes, 0);
        r.fill();
        let got: Vec<i32> = (0..4).map(|_| r.extend(3)).collect();
        assert_eq!(got, [-7, -4, 4, 7]);
        assert_eq!(r.extend(0), 0);
    }

    #[test]
    fn over_full_code_lengths_are_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 3; // three 1-bit codes
        assert!(HuffmanTable::new(&counts, &[0, 1, 2], false).is_err());
    }
}
