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
/// its first symbol. AC tables also have a skip lookup, for skipping
/// coefficients without their values: see [`skip_entry`] and [`pair`].
#[derive(Debug, Clone)]
pub struct HuffmanTable {
    lookup: Box<[u16; 1 << LOOKUP]>,
    skip: Option<Box<[u32; 1 << SKIP]>>,
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
            skip: skip.map(pairs),
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

/// The skip entry of an AC symbol whose code has `len` bits (at most 11):
/// `bits | advance << 5`, where `bits` counts the code and its magnitude
/// bits and `advance` is how far the zigzag index moves (64 at the end of
/// block, 16 for a run of sixteen zeros); 0 stands for a longer code.
fn skip_entry(len: u32, rs: u8) -> u16 {
    let (run, size) = ((rs >> 4) as u16, (rs & 15) as u16);
    let advance = match (run, size) {
        (15, 0) => 16,
        (_, 0) => 64,
        _ => run + 1,
    };
    (len as u16 + size) | advance << 5
}

/// Bits 12..=24 of a skip entry: when the 11 bits also hold the whole of
/// a second symbol after the first (not at the end of block), the pair's
/// `bits | advance << 5` and a flag (bit 24).
const PAIR: u32 = 12;

/// The skip lookup with pairs: many high-frequency symbols take 3 to 5
/// bits, so one lookup often steps over two coefficients.
fn pairs(single: Box<[u16; 1 << SKIP]>) -> Box<[u32; 1 << SKIP]> {
    let mut out = Box::new([0u32; 1 << SKIP]);
    for (i, o) in out.iter_mut().enumerate() {
        let e1 = single[i] as u32;
        *o = e1;
        let (bits1, adv1) = (e1 & 31, e1 >> 5);
        if e1 == 0 || adv1 == 64 || bits1 >= SKIP {
            continue;
        }
        let e2 = single[(i << bits1) & ((1 << SKIP) - 1)] as u32;
        if e2 != 0 && (e2 & 31) <= SKIP - bits1 {
            let both = (bits1 + (e2 & 31)) | (adv1 + (e2 >> 5)) << 5;
            *o |= (both | 1 << 12) << PAIR;
        }
    }
    out
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

    /// Tops the buffer up to at least 56 bits, without a branch on how
    /// full it is (called before every symbol; that branch would be
    /// mispredicted every few symbols). When none of the next eight bytes
    /// is 0xFF they are ORed in below the valid bits; the whole bytes that
    /// fitted are consumed, and a partial one is read again next time
    /// (ORing the same bits in the same place).
    #[inline(always)]
    fn fill(&mut self) {
        if let Some(w) = self.data.get(self.pos..self.pos + 8) {
            let x = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            let inv = !x;
            if inv.wrapping_sub(ONES) & !inv & HIGHS == 0 {
                self.acc |= x >> self.n;
                self.pos += ((63 - self.n) >> 3) as usize;
                self.n |= 56;
                return;
            }
        }
        *self = self.fill_slow();
    }

    #[cold]
    #[inline(never)]
    fn fill_slow(mut self) -> Self {
        // Up to 49..=56 bits: `fill` shifts by `n`, which must stay below 64.
        while self.n <= 48 {
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

    /// Steps over the AC coefficient at zigzag index `k` (or a zero run,
    /// or the end of block), and the next one too when the lookup holds
    /// both and the block goes on, without reading their values: the next
    /// index (64 or more at the end of block).
    #[inline(always)]
    pub fn skip_coefficients(&mut self, t: &HuffmanTable, k: usize) -> Result<usize, JpegError> {
        self.fill();
        if let Some(skip) = &t.skip {
            let e = skip[(self.acc >> (64 - SKIP)) as usize];
            if e != 0 {
                // Branch-free choice between the pair and the first alone
                // (which one applies is as random as the data).
                let adv1 = ((e >> 5) & 127) as usize;
                let pair = (e >> (PAIR + 12) != 0) & (k + adv1 < 64);
                let e = if pair { e >> PAIR } else { e };
                self.consume(e & 31);
                return Ok(k + ((e >> 5) & 127) as usize);
            }
        }
        let rs = self.symbol(t)?;
        let e = skip_entry(0, rs);
        self.consume((e & 31) as u32);
        Ok(k + (e >> 5) as usize)
    }

    /// The value of a `size`-bit magnitude category (F.2.2.1 EXTEND);
    /// `size` 0 is 0. Needs no refill after [`Self::symbol`]: a symbol and
    /// its extra bits take at most 16 + 15 bits of the 49 it ensured.
    #[inline(always)]
    pub fn extend(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let v = self.bits(size) as i32;
        // Branch-free: the sign (top bit clear = negative) is random data.
        let negative = ((v >> (size - 1)) & 1) ^ 1;
        v - negative * ((1 << size) - 1)
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
    fn skipping_steps_over_pairs_but_not_past_the_block_end() {
        // Codes: 0x01 (run 0, size 1) -> 0, EOB -> 10, 0xF0 (16 zeros) -> 11.
        let counts = [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let t = HuffmanTable::new(&counts, &[0x01, 0x00, 0xF0], true).unwrap();
        // 0+1, 0+1 (a pair: 4 bits), 11 (ZRL), 0+1, 10 (EOB).
        let bytes = [0b0100_1101, 0b1000_0000, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut r = BitReader::new(&bytes, 0);
        assert_eq!(r.skip_coefficients(&t, 5).unwrap(), 7, "two at once");
        assert_eq!(
            r.skip_coefficients(&t, 7).unwrap(),
            24,
            "a zero run, then one"
        );
        assert!(r.skip_coefficients(&t, 24).unwrap() >= 64, "end of block");
        // At index 62 the pair would run past 63 into the next block.
        let mut r = BitReader::new(&bytes, 0);
        assert_eq!(r.skip_coefficients(&t, 63).unwrap(), 64);
        assert_eq!(
            r.skip_coefficients(&t, 1).unwrap(),
            18,
            "the second, then the zero run"
        );
    }

    #[test]
    fn over_full_code_lengths_are_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 3; // three 1-bit codes
        assert!(HuffmanTable::new(&counts, &[0, 1, 2], false).is_err());
    }
}
