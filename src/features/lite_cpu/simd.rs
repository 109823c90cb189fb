//! Stage 2 (features), native Lite engine: which SIMD kernels run. Chosen
//! once per engine at load from what the CPU supports (`is_x86_feature_detected!`),
//! or forced with `OVR_SIMD=portable|avx2|avx512` (tests force each path; a
//! forced path the CPU lacks falls back to the best one it has, never to an
//! illegal instruction).

use crate::util::choice::Choice;

/// An instruction-set level with its own micro-kernels and weight panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust (auto-vectorised for the baseline target); runs anywhere.
    Portable,
    /// AVX2 + FMA, 8 lanes.
    Avx2,
    /// AVX-512F, 16 lanes.
    Avx512,
}

/// `OVR_SIMD`'s spellings.
impl Choice for Isa {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("portable", Isa::Portable),
        ("avx2", Isa::Avx2),
        ("avx512", Isa::Avx512),
    ];
    const UNKNOWN: &'static str = "unknown SIMD level";
}

impl Isa {
    /// The best level this CPU runs.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Whether this CPU can run `self`.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            _ => Isa::detect().rank() >= self.rank(),
        }
    }

    fn rank(self) -> u8 {
        match self {
            Isa::Portable => 0,
            Isa::Avx2 => 1,
            Isa::Avx512 => 2,
        }
    }

    /// `requested` if the CPU runs it, else the best level it has.
    pub fn or_supported(requested: Isa) -> Isa {
        if requested.supported() {
            requested
        } else {
            Isa::detect()
        }
    }

    /// The level to use: `OVR_SIMD` when set to a known, supported name, else
    /// the best detected one.
    pub fn from_env() -> Isa {
        match std::env::var("OVR_SIMD")
            .ok()
            .as_deref()
            .and_then(Isa::parse)
        {
            Some(isa) => Isa::or_supported(isa),
            None => Isa::detect(),
        }
    }

    /// Whether `OVR_SIMD` names a level.
    pub fn forced_by_env() -> bool {
        std::env::var("OVR_SIMD")
            .ok()
            .as_deref()
            .and_then(Isa::parse)
            .is_some()
    }

    /// f32 lanes of one vector register.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Portable | Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }

    /// Rows of the GEMM micro-tile.
    pub fn tile_rows(self) -> usize {
        match self {
            Isa::Portable => 4,
            Isa::Avx2 => 6,
            Isa::Avx512 => 8,
        }
    }

    /// Columns of a full weight panel (two vectors); the last panel of a
    /// layer may be one vector wide.
    pub fn panel_cols(self) -> usize {
        2 * self.lanes()
    }
}
