//! Stage 2 (features), the decoder threads' side of the extraction
//! pipeline ([`super::extract`]): one item -> its content hash -> a cache
//! hit, another shard's image, a missing one (a merge computes nothing), or
//! decoded + resized pixels for the backbone.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::shard_spec::{shard_of, Scope};
use crate::images::dataset::{ImageSource, Item};
use crate::images::decode::{gray_to_rgb, prepare, read_image_file, DecodeError, DecodeOptions};
use crate::images::orient::Orientation;
use crate::images::resize::to_input;

/// What a decoder thread sends the calling thread about one item.
pub(super) enum Msg {
    Cached {
        idx: usize,
        hash: String,
    },
    Pixels {
        idx: usize,
        hash: String,
        pixels: Vec<f32>,
    },
    Failed {
        idx: usize,
        /// The content hash, when the bytes could be read.
        hash: Option<String>,
        reason: String,
    },
    /// Not cached, and this run computes nothing ([`Scope::Merge`]).
    Missing {
        idx: usize,
        hash: String,
    },
    /// Another shard's image ([`Scope::Shard`]).
    Elsewhere,
}

/// Content hash of an item: SHA-256 of the file bytes, or of the raw raster
/// with its geometry for in-memory images.
fn read_and_hash(item: &Item, opts: &DecodeOptions) -> Result<(String, Vec<u8>), DecodeError> {
    match &item.source {
        ImageSource::File(p) => {
            let bytes = read_image_file(p, opts)?;
            Ok((hex(&Sha256::digest(&bytes)), bytes))
        }
        ImageSource::Gray {
            pixels,
            offset,
            width,
            height,
        } => {
            let raw = pixels
                .get(*offset..*offset + width * height)
                .ok_or(DecodeError::BadRaw {
                    width: *width,
                    height: *height,
                })?;
            let mut h = Sha256::new();
            h.update(format!("gray:{width}x{height}:").as_bytes());
            h.update(raw);
            Ok((hex(&h.finalize()), raw.to_vec()))
        }
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_item(
    item: &Item,
    bytes: &[u8],
    size: usize,
    opts: &DecodeOptions,
) -> Result<Vec<f32>, DecodeError> {
    match &item.source {
        ImageSource::File(_) => prepare(bytes, size, opts),
        ImageSource::Gray { width, height, .. } => {
            let rgb = gray_to_rgb(bytes, *width, *height)?;
            to_input(
                &rgb,
                size,
                opts.resize,
                opts.filter,
                Orientation::NoTransforms,
            )
        }
    }
}

/// What a decoder thread makes of one item.
pub(super) fn classify_item(
    idx: usize,
    item: &Item,
    decode: &DecodeOptions,
    size: usize,
    snapshot: &HashSet<String>,
    scope: Scope,
) -> Msg {
    let (hash, bytes) = match read_and_hash(item, decode) {
        Ok(x) => x,
        Err(e) => {
            return Msg::Failed {
                idx,
                hash: None,
                reason: crate::util::chain::chain(&e),
            }
        }
    };
    if let Scope::Shard(s) = scope {
        if shard_of(&hash, s.count) != s.index {
            return Msg::Elsewhere;
        }
    }
    if snapshot.contains(&hash) {
        return Msg::Cached { idx, hash };
    }
    if scope == Scope::Merge {
        return Msg::Missing { idx, hash };
    }
    match decode_item(item, &bytes, size, decode) {
        Ok(pixels) => Msg::Pixels { idx, hash, pixels },
        Err(e) => Msg::Failed {
            idx,
            hash: Some(hash),
            reason: crate::util::chain::chain(&e),
        },
    }
}
