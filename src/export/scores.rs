//! Export, the scored rows of `ovr score` (one per image) as the CSV and
//! JSON Lines exporters read them.

/// One scored image.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// The image's key (its path).
    pub path: String,
    /// Its class when the input is labelled.
    pub label: Option<String>,
    /// The predicted class, or `unknown` when it abstained.
    pub predicted: String,
    /// The probability of the argmax class.
    pub probability: f32,
    pub abstained: bool,
    /// The top classes with their probabilities, best first.
    pub top: Vec<(String, f32)>,
}

/// Every scored image, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreRows {
    pub rows: Vec<ScoreRow>,
}
