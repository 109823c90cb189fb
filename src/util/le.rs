//! The little-endian f32 codec of every tensor file `ovr` writes or reads
//! (safetensors ensembles and feature shards, converted weights).

/// Values as little-endian bytes, 4 per value.
pub fn f32_to_le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes back to values; `None` when the length is not a
/// multiple of 4.
pub fn f32_from_le(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bytes_and_round_trip() {
        // 1.0 = 0x3f800000, -2.5 = 0xc0200000 (IEEE 754), low byte first.
        assert_eq!(
            f32_to_le(&[1.0, -2.5]),
            [0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]
        );
        let v = [
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::INFINITY,
            3.25e-7,
        ];
        let back = f32_from_le(&f32_to_le(&v)).unwrap();
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(f32_from_le(&[1, 2, 3]), None);
    }
}
