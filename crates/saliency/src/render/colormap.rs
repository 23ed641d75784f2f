//! Color maps for heat maps: perceptual sequential maps (inferno, viridis), gray, and a diverging map.

use std::fmt;
use std::str::FromStr;

use super::RenderError;

/// The color maps a heat map can be drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColorMap {
    /// Black through purple and orange to light yellow: the study's overlay map.
    Inferno,
    /// Dark blue through green to yellow.
    Viridis,
    /// Black to white.
    Gray,
    /// Diverging, for signed maps scaled to [-1, 1] and shifted to t = (v + 1) / 2:
    /// blue for negative (t = 0), near white for zero (t = 0.5), red for positive (t = 1).
    RedBlue,
}

impl ColorMap {
    /// Every map, in a fixed order (for help texts and tests).
    pub const ALL: [ColorMap; 4] = [
        ColorMap::Inferno,
        ColorMap::Viridis,
        ColorMap::Gray,
        ColorMap::RedBlue,
    ];

    fn name(self) -> &'static str {
        match self {
            ColorMap::Inferno => "inferno",
            ColorMap::Viridis => "viridis",
            ColorMap::Gray => "gray",
            ColorMap::RedBlue => "redblue",
        }
    }
}

impl fmt::Display for ColorMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ColorMap {
    type Err = RenderError;

    /// Accepts the display names case-insensitively, plus `grey`, `red-blue` and `red_blue`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "inferno" => Ok(ColorMap::Inferno),
            "viridis" => Ok(ColorMap::Viridis),
            "gray" | "grey" => Ok(ColorMap::Gray),
            "redblue" | "red-blue" | "red_blue" => Ok(ColorMap::RedBlue),
            _ => Err(RenderError::UnknownColorMap {
                found: s.to_string(),
            }),
        }
    }
}

/// The color of `map` at `t`, with `t` clamped to [0, 1] (NaN counts as 0).
pub fn color(map: ColorMap, t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) } as f64;
    let c = match map {
        ColorMap::Inferno => colorous::INFERNO.eval_continuous(t),
        ColorMap::Viridis => colorous::VIRIDIS.eval_continuous(t),
        ColorMap::Gray => {
            let v = (t * 255.0).round() as u8;
            return [v, v, v];
        }
        // colorous's RED_BLUE runs red -> blue; flip it so positive attribution is red.
        ColorMap::RedBlue => colorous::RED_BLUE.eval_continuous(1.0 - t),
    };
    [c.r, c.g, c.b]
}

/// `map` sampled at t = i / 255 for i in 0..256: a lookup table for drawing many pixels quickly.
///
/// 256 levels is what matplotlib's maps use too, so nothing visible is lost.
pub fn palette_256(map: ColorMap) -> [[u8; 3]; 256] {
    let mut table = [[0u8; 3]; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        *entry = color(map, i as f32 / 255.0);
    }
    table
}

/// The palette index for `t` in [0, 1] (clamped; NaN counts as 0).
pub fn palette_index(t: f32) -> usize {
    if t.is_nan() {
        0
    } else {
        (t.clamp(0.0, 1.0) * 255.0).round() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inferno_ends() {
        // Inferno starts at (0, 0, 4) and ends at (252, 255, 164).
        let lo = color(ColorMap::Inferno, 0.0);
        let hi = color(ColorMap::Inferno, 1.0);
        assert!(
            lo.iter().all(|&c| c < 10),
            "inferno(0) = {lo:?}, expected near black"
        );
        assert!(
            hi[0] > 240 && hi[1] > 240 && hi[2] > 130 && hi[2] < 200,
            "inferno(1) = {hi:?}, expected light yellow"
        );
        // Out-of-range t clamps.
        assert_eq!(color(ColorMap::Inferno, -3.0), lo);
        assert_eq!(color(ColorMap::Inferno, 7.0), hi);
        assert_eq!(color(ColorMap::Inferno, f32::NAN), lo);
    }

    #[test]
    fn redblue_is_red_for_positive() {
        let pos = color(ColorMap::RedBlue, 1.0);
        let neg = color(ColorMap::RedBlue, 0.0);
        let mid = color(ColorMap::RedBlue, 0.5);
        assert!(pos[0] > pos[2], "{pos:?}");
        assert!(neg[2] > neg[0], "{neg:?}");
        assert!(mid.iter().all(|&c| c > 220), "{mid:?}");
    }

    #[test]
    fn names_round_trip() {
        for map in ColorMap::ALL {
            assert_eq!(map.to_string().parse::<ColorMap>().unwrap(), map);
        }
        assert_eq!("Grey".parse::<ColorMap>().unwrap(), ColorMap::Gray);
        let err = "jet".parse::<ColorMap>().unwrap_err().to_string();
        assert!(err.contains("\"jet\"") && err.contains("inferno"), "{err}");
    }

    #[test]
    fn palette_matches_color() {
        let p = palette_256(ColorMap::Viridis);
        assert_eq!(p[0], color(ColorMap::Viridis, 0.0));
        assert_eq!(p[255], color(ColorMap::Viridis, 1.0));
        assert_eq!(palette_index(0.5), 128);
        assert_eq!(palette_index(f32::NAN), 0);
    }
}
