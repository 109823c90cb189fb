//! Stage 2 (features), for splits larger than RAM: a split file (the format
//! of [`FeatureSet`](super::feature_set::FeatureSet), f32 or f16 features)
//! read through a memory map, and the streaming writer of such files.
//!
//! [`MappedFeatures`] holds the labels (4 bytes a row) and the metadata but
//! not the feature matrix: rows are decoded to f32 on demand
//! ([`MappedFeatures::read_rows`]) and their pages handed back to the kernel
//! afterwards ([`MappedFeatures::release`], `MADV_DONTNEED`), so the
//! resident set follows the rows in use, not the file. The heads stage
//! reads it block by block (`heads::rows`).
//!
//! Why `memmap2`: it is already in the build (candle-core maps safetensors
//! weights with it), and a map lets the safetensors crate parse and check
//! the file in place. Mapping is `unsafe` because another process could
//! change the file under the map; split files are only ever replaced by an
//! atomic rename (a new inode), never written in place, so a mapped file
//! does not change.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rayon::prelude::*;
use safetensors::tensor::Dtype;

use super::feature_set::{label_bytes, parse, FeatureDtype, SplitHeader};
use super::st_file::{header, TensorSpec};
use super::store_io::{bad_header, malformed, write_failed, StoreError};
use crate::assets::cache::{io_err, write_atomic_with};

/// Rows decoded per rayon task in [`MappedFeatures::read_rows`].
const DECODE_ROWS: usize = 64;

/// A split file mapped into memory; features stay on disk until read.
pub struct MappedFeatures {
    map: memmap2::Mmap,
    path: PathBuf,
    /// Byte offset of the features in the file.
    offset: usize,
    pub header: SplitHeader,
    pub labels: Vec<u32>,
    pub n: usize,
    pub dim: usize,
    pub dtype: FeatureDtype,
    /// The most rows one [`MappedFeatures::read_rows`] decoded, and the rows
    /// decoded in all: what a streamed fit really held at once.
    reads: ReadStats,
}

/// Counters of [`MappedFeatures::read_rows`].
#[derive(Debug, Default)]
struct ReadStats {
    largest: AtomicUsize,
    total: AtomicU64,
}

impl std::fmt::Debug for MappedFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFeatures")
            .field("path", &self.path)
            .field("n", &self.n)
            .field("dim", &self.dim)
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl MappedFeatures {
    /// Maps and checks a split file (the same checks as `FeatureSet::load`;
    /// the item keys are counted, not kept).
    pub fn open(path: &Path) -> Result<MappedFeatures, StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: split files are replaced only by rename, never modified in
        // place (see the module docs), so the mapped bytes do not change.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let parsed = parse(path, &map, false)?;
        let offset = parsed.features.data().as_ptr() as usize - map.as_ptr() as usize;
        let (header, labels, n, dim, dtype) = (
            parsed.header,
            parsed.labels,
            parsed.n,
            parsed.dim,
            parsed.dtype,
        );
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFeatures {
            map,
            path: path.to_path_buf(),
            offset,
            header,
            labels,
            n,
            dim,
            dtype,
            reads: ReadStats::default(),
        })
    }

    /// The largest number of rows decoded by one read so far (a streamed
    /// fit never holds more rows of this file at once).
    pub fn largest_read(&self) -> usize {
        self.reads.largest.load(Ordering::Relaxed)
    }

    /// Rows decoded so far, over every read (N per pass over the file).
    pub fn rows_read(&self) -> u64 {
        self.reads.total.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn byte_range(&self, start: usize, len: usize) -> Result<std::ops::Range<usize>, StoreError> {
        if start.checked_add(len).is_none_or(|end| end > self.n) {
            return Err(malformed(
                &self.path,
                format!("rows {start}..{} asked of {} rows", start + len, self.n),
            ));
        }
        let row = self.dim * self.dtype.size();
        Ok(self.offset + start * row..self.offset + (start + len) * row)
    }

    /// Decodes rows `start..start + len` into `out` (`len * dim` values,
    /// f32; f16 widened exactly).
    pub fn read_rows(&self, start: usize, len: usize, out: &mut [f32]) -> Result<(), StoreError> {
        let range = self.byte_range(start, len)?;
        if out.len() != len * self.dim {
            return Err(malformed(
                &self.path,
                format!("{} values asked for {len} rows of {}", out.len(), self.dim),
            ));
        }
        self.reads.largest.fetch_max(len, Ordering::Relaxed);
        self.reads.total.fetch_add(len as u64, Ordering::Relaxed);
        let bytes = &self.map[range];
        let row = self.dim * self.dtype.size();
        if row == 0 {
            return Ok(());
        }
        out.par_chunks_mut(DECODE_ROWS * self.dim)
            .zip(bytes.par_chunks(DECODE_ROWS * row))
            .for_each(|(o, b)| self.dtype.decode_into(b, o));
        Ok(())
    }

    /// Tells the kernel the pages of rows `start..start + len` are not
    /// needed now: they leave this process's resident set (a later read
    /// maps them again from the page cache or the disk).
    pub fn release(&self, start: usize, len: usize) {
        let Ok(range) = self.byte_range(start, len) else {
            return;
        };
        #[cfg(unix)]
        // SAFETY: the map is private and read-only; after MADV_DONTNEED a
        // read refills the pages from the unchanged file, so no reference
        // into the map ever sees different bytes.
        unsafe {
            let _ = self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                range.start,
                range.len(),
            );
        }
        #[cfg(not(unix))]
        let _ = range;
    }
}

/// Writes a split file of `labels.len()` rows without holding its features:
/// `fill(start, rows)` must return rows `start..start + rows` (row-major
/// f32), called in order for blocks of `block_rows`. The file is the same as
/// `FeatureSet::save_as` writes for the same rows; written atomically.
#[allow(clippy::too_many_arguments)]
pub fn write_streamed(
    path: &Path,
    head: &SplitHeader,
    keys: &[String],
    labels: &[u32],
    dim: usize,
    dtype: FeatureDtype,
    block_rows: usize,
    mut fill: impl FnMut(usize, usize) -> Vec<f32>,
) -> Result<(), StoreError> {
    let n = labels.len();
    let write_err = |message: String| StoreError::Write {
        path: path.to_path_buf(),
        message,
    };
    if keys.len() != n || block_rows == 0 {
        return Err(write_err(format!(
            "{} keys for {n} labels, block of {block_rows} rows",
            keys.len()
        )));
    }
    let specs = [
        TensorSpec {
            name: "features",
            dtype: dtype.st_dtype(),
            shape: vec![n, dim],
            bytes: n * dim * dtype.size(),
        },
        TensorSpec {
            name: "labels",
            dtype: Dtype::U32,
            shape: vec![n],
            bytes: n * 4,
        },
    ];
    let head_bytes = header(&specs, &head.metadata(path, keys)?).map_err(bad_header(path))?;
    let mut bad_block = None;
    write_atomic_with(path, |file, tmp| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&head_bytes).map_err(io_err(tmp))?;
        for start in (0..n).step_by(block_rows) {
            let rows = block_rows.min(n - start);
            let block = fill(start, rows);
            if block.len() != rows * dim {
                bad_block = Some((start, block.len()));
                break;
            }
            w.write_all(&dtype.encode(&block)).map_err(io_err(tmp))?;
        }
        if bad_block.is_some() {
            return Err(io_err(tmp)(std::io::Error::other("short block")));
        }
        w.write_all(&label_bytes(labels)).map_err(io_err(tmp))?;
        w.flush().map_err(io_err(tmp))
    })
    .map_err(|e| match bad_block {
        Some((start, got)) => write_err(format!(
            "the block at row {start} has {got} values, expected rows x {dim}"
        )),
        None => write_failed(path)(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::feature_set::FeatureSet;

    fn set(n: usize, dim: usize) -> FeatureSet {
        FeatureSet {
            dataset: "d".into(),
            split: "train".into(),
            backbone: "b".into(),
            weights_sha256: "00".into(),
            classes: vec!["a".into(), "b".into(), "c".into()],
            keys: (0..n).map(|i| format!("k{i}")).collect(),
            labels: (0..n).map(|i| (i % 3) as u32).collect(),
            dim,
            features: (0..n * dim)
                .map(|i| (i as f32 * 0.37).sin() * 3.0)
                .collect(),
        }
    }

    #[test]
    fn mapped_rows_equal_the_loaded_rows_in_both_dtypes() {
        let dir = tempfile::tempdir().unwrap();
        let s = set(300, 7);
        for dtype in [FeatureDtype::F32, FeatureDtype::F16] {
            let p = dir.path().join(format!("{dtype}.safetensors"));
            s.save_as(&p, dtype).unwrap();
            let loaded = FeatureSet::load(&p).unwrap();
            let m = MappedFeatures::open(&p).unwrap();
            assert_eq!((m.n, m.dim, m.dtype), (300, 7, dtype));
            assert_eq!(m.labels, s.labels);
            assert_eq!(m.header, s.header());
            let mut out = vec![0f32; 100 * 7];
            m.read_rows(150, 100, &mut out).unwrap();
            assert_eq!(out, loaded.features[150 * 7..250 * 7]);
            m.read_rows(0, 30, &mut out[..30 * 7]).unwrap();
            assert_eq!((m.largest_read(), m.rows_read()), (100, 130));
            m.read_rows(150, 100, &mut out).unwrap();
            m.release(150, 100);
            m.read_rows(150, 100, &mut out).unwrap();
            assert_eq!(out, loaded.features[150 * 7..250 * 7]);
            assert!(m.read_rows(250, 51, &mut vec![0f32; 51 * 7]).is_err());
            match dtype {
                // f32 is exact; f16 rounds to nearest (relative 2^-11).
                FeatureDtype::F32 => assert_eq!(loaded.features, s.features),
                FeatureDtype::F16 => {
                    assert_ne!(loaded.features, s.features);
                    for (a, b) in loaded.features.iter().zip(&s.features) {
                        assert!((a - b).abs() <= b.abs() / 2048.0 + 1e-7, "{a} vs {b}");
                        assert_eq!(*a, half::f16::from_f32(*b).to_f32());
                    }
                }
            }
        }
        let f32_len = std::fs::metadata(dir.path().join("f32.safetensors"))
            .unwrap()
            .len();
        let f16_len = std::fs::metadata(dir.path().join("f16.safetensors"))
            .unwrap()
            .len();
        assert_eq!(f32_len - f16_len, 300 * 7 * 2);
    }

    #[test]
    fn streamed_file_is_byte_equal_to_save_as() {
        let dir = tempfile::tempdir().unwrap();
        let s = set(101, 5);
        for dtype in [FeatureDtype::F32, FeatureDtype::F16] {
            let a = dir.path().join("a.safetensors");
            let b = dir.path().join("b.safetensors");
            s.save_as(&a, dtype).unwrap();
            write_streamed(
                &b,
                &s.header(),
                &s.keys,
                &s.labels,
                5,
                dtype,
                16,
                |start, rows| s.features[start * 5..(start + rows) * 5].to_vec(),
            )
            .unwrap();
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        }
        // A short block is an error and leaves nothing behind.
        let c = dir.path().join("c.safetensors");
        let e = write_streamed(
            &c,
            &s.header(),
            &s.keys,
            &s.labels,
            5,
            FeatureDtype::F32,
            16,
            |_, _| vec![0.0; 3],
        )
        .unwrap_err();
        assert!(e.to_string().contains("row 0"), "{e}");
        assert!(!c.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_truncated_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.safetensors");
        set(10, 3).save(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 8]).unwrap();
        let e = MappedFeatures::open(&p).unwrap_err();
        assert!(e.to_string().contains("t.safetensors"), "{e}");
    }
}
