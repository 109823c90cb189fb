//! Images stage (stage 1): Fashion-MNIST in IDX format (`.gz` or raw).
//!
//! [`locate_fashion_mnist`] finds the four files (system install from the
//! Debian package, else the pinned `.deb` fetched into the cache by the
//! assets stage and unpacked once); [`read_idx_images`] / [`read_idx_labels`]
//! parse them with every size checked against the header.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::assets::archive::extract_deb;
use crate::assets::atomic_dir::build_dir_atomic;
use crate::assets::cache::{AssetError, Cache};
use crate::assets::clients::fetch_pinned;
use crate::assets::pins::FASHION_MNIST_DEB;

/// Errors reading IDX files or locating Fashion-MNIST.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an IDX {what} file (magic {found:#010x}, expected {expected:#010x})")]
    BadMagic {
        path: PathBuf,
        what: &'static str,
        expected: u32,
        found: u32,
    },
    #[error("{path}: truncated: header promises {expected} bytes of data, found {actual}")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: {detail}")]
    BadHeader { path: PathBuf, detail: String },
    #[error("{path}: data continues past the {expected} bytes the header declares")]
    TrailingData { path: PathBuf, expected: u64 },
    #[error("Fashion-MNIST file {file} missing in {dir} (delete {dir} to rebuild it)")]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error(transparent)]
    Asset(#[from] AssetError),
}

/// Images: `pixels[i*rows*cols + r*cols + c]`, 0 = background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// The `i`-th image (row-major), or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.rows * self.cols;
        self.pixels
            .get(i.checked_mul(n)?..i.checked_add(1)?.checked_mul(n)?)
    }
}

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// Refuse headers declaring more than this (a corrupt header must not make us
/// try to read or allocate terabytes).
const MAX_DATA_BYTES: u64 = 4 << 30;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IdxError + '_ {
    move |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens `path`, transparently gunzipping when it starts with the gzip magic.
fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>, IdxError> {
    let mut file = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut head = [0u8; 2];
    let n = read_up_to(&mut file, &mut head).map_err(io_err(path))?;
    let file = File::open(path).map_err(io_err(path))?;
    if n == 2 && head == [0x1f, 0x8b] {
        Ok(Box::new(MultiGzDecoder::new(BufReader::new(file))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads an IDX header (`magic`, then `ndims` big-endian u32 sizes) and then
/// exactly the declared data, refusing short or over-long files.
fn read_idx(
    path: &Path,
    what: &'static str,
    magic: u32,
    ndims: usize,
) -> Result<(Vec<usize>, Vec<u8>), IdxError> {
    let mut r = open_maybe_gz(path)?;
    let mut header = vec![0u8; 4 * (1 + ndims)];
    let got = read_up_to(&mut r, &mut header).map_err(io_err(path))?;
    if got >= 4 {
        let found = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if found != magic {
            return Err(IdxError::BadMagic {
                path: path.to_path_buf(),
                what,
                expected: magic,
                found,
            });
        }
    }
    if got < header.len() {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            expected: header.len() as u64,
            actual: got as u64,
        });
    }
    let dims: Vec<usize> = header[4..]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let total = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&t| t <= MAX_DATA_BYTES)
        .ok_or_else(|| IdxError::BadHeader {
            path: path.to_path_buf(),
            detail: format!("implausible dimensions {dims:?}"),
        })?;
    // Capacity from the header only up to 1 MiB: a corrupt header must not
    // reserve more than the data that actually arrives (read_to_end grows).
    let mut data = Vec::with_capacity(total.min(1 << 20) as usize);
    (&mut r)
        .take(total)
        .read_to_end(&mut data)
        .map_err(io_err(path))?;
    if (data.len() as u64) < total {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            expected: total,
            actual: data.len() as u64,
        });
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut r, &mut extra).map_err(io_err(path))? != 0 {
        return Err(IdxError::TrailingData {
            path: path.to_path_buf(),
            expected: total,
        });
    }
    Ok((dims, data))
}

/// Reads an IDX image file (magic `0x00000803`: count, rows, cols, u8 pixels).
pub fn read_idx_images(path: &Path) -> Result<IdxImages, IdxError> {
    let (dims, pixels) = read_idx(path, "images", IMAGES_MAGIC, 3)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels,
    })
}

/// Reads an IDX label file (magic `0x00000801`: count, u8 labels).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    Ok(read_idx(path, "labels", LABELS_MAGIC, 1)?.1)
}

/// Fashion-MNIST class names, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Path-safe class names (directory names, file names), by label.
pub const FASHION_MNIST_CLASS_DIRS: [&str; 10] = [
    "t-shirt-top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

/// The four Fashion-MNIST files (gzipped IDX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FashionMnistFiles {
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub test_images: PathBuf,
    pub test_labels: PathBuf,
}

const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Where Debian's `dataset-fashion-mnist` installs the files.
pub const SYSTEM_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Where the `.deb` keeps them (relative to its root).
const DEB_SUBDIR: &str = "usr/share/datasets/fashion-mnist";

impl FashionMnistFiles {
    fn in_dir(dir: &Path) -> Self {
        FashionMnistFiles {
            train_images: dir.join(FILE_NAMES[0]),
            train_labels: dir.join(FILE_NAMES[1]),
            test_images: dir.join(FILE_NAMES[2]),
            test_labels: dir.join(FILE_NAMES[3]),
        }
    }

    fn first_missing(dir: &Path) -> Option<&'static str> {
        FILE_NAMES.into_iter().find(|f| !dir.join(f).is_file())
    }
}

/// Uses `/usr/share/datasets/fashion-mnist/` when all four files are there;
/// else fetches the pinned `.deb` into the cache and unpacks it (once,
/// atomically) to `cache.datasets_dir()/fashion-mnist/`, which then holds the
/// four `.gz` files directly.
pub fn locate_fashion_mnist(cache: &Cache) -> Result<FashionMnistFiles, IdxError> {
    locate_fashion_mnist_in(cache, Path::new(SYSTEM_FASHION_MNIST_DIR))
}

/// [`locate_fashion_mnist`] with the system directory as a parameter.
pub fn locate_fashion_mnist_in(
    cache: &Cache,
    system_dir: &Path,
) -> Result<FashionMnistFiles, IdxError> {
    if FashionMnistFiles::first_missing(system_dir).is_none() {
        return Ok(FashionMnistFiles::in_dir(system_dir));
    }
    let dir = cache.datasets_dir().join("fashion-mnist");
    if !dir.exists() {
        let deb = fetch_pinned(cache, &FASHION_MNIST_DEB)?;
        let built = build_dir_atomic(&dir, |tmp| {
            let unpacked = tmp.join("deb");
            extract_deb(&deb, &unpacked)?;
            let src = unpacked.join(DEB_SUBDIR);
            if let Some(file) = FashionMnistFiles::first_missing(&src) {
                return Err(IdxError::MissingFile { dir: src, file });
            }
            for name in FILE_NAMES {
                let (from, to) = (src.join(name), tmp.join(name));
                fs::rename(&from, &to).map_err(io_err(&to))?;
            }
            fs::remove_dir_all(&unpacked).map_err(io_err(&unpacked))?;
            Ok(())
        });
        match built {
            // Another process unpacked it meanwhile: use theirs.
            Ok(()) | Err(IdxError::Asset(AssetError::DestinationExists { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(file) = FashionMnistFiles::first_missing(&dir) {
        return Err(IdxError::MissingFile { dir, file });
    }
    Ok(FashionMnistFiles::in_dir(&dir))
}

#[cfg(test)]
mod tests;
