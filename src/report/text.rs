//! Report stage, text helpers shared by every part of the page written from
//! a `Comparison`: HTML/XML escaping of user strings, number formatting that
//! never prints `NaN` / `inf`, axis ticks, label truncation and colour scales.

use std::fmt;

/// A user string escaped for HTML text, HTML attributes and SVG/XML alike
/// (`& < > " '`). Control characters other than tab / newline (not allowed
/// in XML 1.0) become U+FFFD.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) =
            rest.find(|ch: char| matches!(ch, '&' | '<' | '>' | '"' | '\'') || bad_control(ch))
        {
            f.write_str(&rest[..i])?;
            let ch = rest[i..].chars().next().unwrap_or('\u{fffd}');
            f.write_str(match ch {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => "\u{fffd}",
            })?;
            rest = &rest[i + ch.len_utf8()..];
        }
        f.write_str(rest)
    }
}

fn bad_control(ch: char) -> bool {
    (ch.is_control() && !matches!(ch, '\t' | '\n' | '\r')) || matches!(ch, '\u{fffe}' | '\u{ffff}')
}

/// [`Esc`] into a new `String`.
pub fn escape(s: &str) -> String {
    Esc(s).to_string()
}

/// An SVG coordinate / length: at most 2 decimals, trailing zeros trimmed,
/// 0 for a non-finite value (never `NaN`, `inf` or `-0`).
#[derive(Clone, Copy)]
pub struct N(pub f64);

impl fmt::Display for N {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.0.is_finite() { self.0 } else { 0.0 };
        if v.abs() < 0.005 {
            return f.write_str("0");
        }
        let s = format!("{v:.2}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        f.write_str(s)
    }
}

/// What a table shows for a missing or non-finite number.
pub const NONE: &str = "—";

/// A fraction in [0, 1] as a percentage with 2 decimals (`87.50`), or `—`.
pub fn pct(v: f64) -> String {
    fixed(v * 100.0, 2)
}

/// `v` with `decimals` decimals, or `—` when not finite; never `-0.00`.
pub fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return NONE.to_string();
    }
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A difference with an explicit sign (`+1.25`, `-0.40`, `0.00`), or `—`.
pub fn signed(v: f64, decimals: usize) -> String {
    let s = fixed(v, decimals);
    if s == NONE || s.starts_with('-') || s.chars().all(|c| c == '0' || c == '.') {
        s
    } else {
        format!("+{s}")
    }
}

/// A p-value for a table: `< 0.001`, or 3 decimals.
pub fn p_value(p: f64) -> String {
    if !p.is_finite() {
        NONE.to_string()
    } else if p < 0.001 {
        "< 0.001".to_string()
    } else {
        fixed(p, 3)
    }
}

/// Clamps to [lo, hi]; a non-finite value becomes `lo`.
pub fn clamp(v: f64, lo: f64, hi: f64) -> f64 {
    if v.is_finite() {
        v.clamp(lo, hi)
    } else {
        lo
    }
}

/// "Nice" tick positions (steps of 1, 2 or 5 × 10^e) covering [lo, hi],
/// about `target` of them; decimals needed to print them.
pub fn ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, usize) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let v = (first..=last.min(first + 1000))
        .map(|i| i as f64 * step)
        .collect();
    (v, decimals)
}

/// At most `max` characters; longer strings end in `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Rough width in pixels of `chars` characters of a sans-serif font of size `font`.
pub fn text_width(chars: usize, font: f64) -> f64 {
    chars as f64 * font * 0.58
}

/// Sequential blue scale (ColorBrewer "Blues") at t in [0, 1] as `#rrggbb`.
pub fn blues(t: f64) -> String {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [247.0, 251.0, 255.0]),
        (0.25, [198.0, 219.0, 239.0]),
        (0.5, [107.0, 174.0, 214.0]),
        (0.75, [33.0, 113.0, 181.0]),
        (1.0, [8.0, 48.0, 107.0]),
    ];
    let t = clamp(t, 0.0, 1.0);
    let i = STOPS
        .iter()
        .rposition(|s| s.0 <= t)
        .unwrap_or(0)
        .min(STOPS.len() - 2);
    let (t0, c0) = STOPS[i];
    let (t1, c1) = STOPS[i + 1];
    let u = (t - t0) / (t1 - t0);
    let ch = |k: usize| (c0[k] + (c1[k] - c0[k]) * u).round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", ch(0), ch(1), ch(2))
}

/// A categorical palette (Tableau 10) for timeline jobs.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape(r#"<b>&"x"'"#), "&lt;b&gt;&amp;&quot;x&quot;&#39;");
        assert_eq!(escape("plain ü"), "plain ü");
        assert_eq!(escape("a\u{1}b"), "a\u{fffd}b");
    }

    #[test]
    fn numbers_never_print_nan_or_inf() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(N(v).to_string(), "0");
            assert_eq!(pct(v), NONE);
            assert_eq!(signed(v, 2), NONE);
            assert_eq!(p_value(v), NONE);
        }
        assert_eq!(N(-0.001).to_string(), "0");
        assert_eq!(N(12.5).to_string(), "12.5");
        assert_eq!(N(3.0).to_string(), "3");
        assert_eq!(pct(0.875), "87.50");
        assert_eq!(signed(-0.0001, 2), "0.00");
        assert_eq!(signed(0.5, 1), "+0.5");
        assert_eq!(p_value(0.0004), "< 0.001");
    }

    #[test]
    fn ticks_are_nice() {
        let (t, d) = ticks(0.0, 10.0, 5);
        assert_eq!(t, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(d, 0);
        let (t, d) = ticks(0.0, 0.3, 6);
        assert_eq!(t.len(), 7);
        assert_eq!(d, 2);
        assert_eq!(ticks(f64::NAN, 1.0, 5).0.first(), Some(&0.0));
    }

    #[test]
    fn blues_ends() {
        assert_eq!(blues(0.0), "#f7fbff");
        assert_eq!(blues(1.0), "#08306b");
        assert_eq!(blues(f64::NAN), "#f7fbff");
    }
}
