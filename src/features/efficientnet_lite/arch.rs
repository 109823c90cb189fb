//! Stage 2 (features), the EfficientNet-Lite architecture table: which
//! network (Lite0/1/2), its input size, and the (kernel, stride, expand) of
//! every block after depth scaling. The network itself is in the parent.

/// Stage table of EfficientNet-B0 / Lite0: (repeats, kernel, stride, expand ratio).
const STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1),
    (2, 3, 2, 6),
    (2, 5, 2, 6),
    (3, 3, 2, 6),
    (3, 5, 1, 6),
    (4, 5, 2, 6),
    (1, 3, 1, 6),
];

/// Which EfficientNet-Lite network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteVariant {
    Lite0,
    Lite1,
    Lite2,
}

impl LiteVariant {
    pub const ALL: [LiteVariant; 3] = [LiteVariant::Lite0, LiteVariant::Lite1, LiteVariant::Lite2];

    pub fn id(self) -> &'static str {
        match self {
            LiteVariant::Lite0 => "efficientnet-lite0",
            LiteVariant::Lite1 => "efficientnet-lite1",
            LiteVariant::Lite2 => "efficientnet-lite2",
        }
    }

    pub fn from_id(id: &str) -> Option<LiteVariant> {
        Self::ALL.into_iter().find(|v| v.id() == id)
    }

    /// Input resolution the network was trained at.
    pub fn input_size(self) -> usize {
        match self {
            LiteVariant::Lite0 => 224,
            LiteVariant::Lite1 => 240,
            LiteVariant::Lite2 => 260,
        }
    }

    fn depth_multiplier(self) -> f64 {
        match self {
            LiteVariant::Lite0 => 1.0,
            LiteVariant::Lite1 => 1.1,
            LiteVariant::Lite2 => 1.2,
        }
    }

    /// (kernel, stride, expand) of every block, in order.
    pub(super) fn blocks(self) -> Vec<(usize, usize, usize)> {
        let last = STAGES.len() - 1;
        let mut out = Vec::new();
        for (i, &(repeats, k, s, e)) in STAGES.iter().enumerate() {
            let n = if i == 0 || i == last {
                repeats
            } else {
                (self.depth_multiplier() * repeats as f64).ceil() as usize
            };
            for j in 0..n {
                out.push((k, if j == 0 { s } else { 1 }, e));
            }
        }
        out
    }
}
