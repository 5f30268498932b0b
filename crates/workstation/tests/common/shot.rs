//! Screenshots of the app as the rendering tests read them.

use std::path::Path;

use serde_json::Value;

/// An RGB screenshot.
pub struct Shot {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// RGB bytes.
    pub rgb: Vec<u8>,
}

impl Shot {
    /// Reads an RGB PNG.
    pub fn read(path: &Path) -> Self {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
        rgb.truncate(info.buffer_size());
        Self { width: info.width as usize, height: info.height as usize, rgb }
    }

    /// The pixel at (x, y), if inside.
    pub fn at(&self, x: i64, y: i64) -> Option<[u8; 3]> {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return None;
        }
        let k = (y as usize * self.width + x as usize) * 3;
        Some([self.rgb[k], self.rgb[k + 1], self.rgb[k + 2]])
    }

    /// Whether a pixel within `radius` of (x, y) is within `tolerance` of one of `colours`.
    pub fn near(&self, x: f64, y: f64, radius: i64, colours: &[[u8; 3]], tolerance: u8) -> bool {
        let (cx, cy) = (x.floor() as i64, y.floor() as i64);
        (-radius..=radius).any(|dy| {
            (-radius..=radius).any(|dx| {
                self.at(cx + dx, cy + dy)
                    .is_some_and(|p| colours.iter().any(|c| p.iter().zip(c).all(|(a, b)| a.abs_diff(*b) <= tolerance)))
            })
        })
    }

    /// Distinct colours (quantised), a cheap "not blank" measure.
    pub fn distinct_colours(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        for p in self.rgb.chunks_exact(3) {
            seen.insert((p[0] >> 3, p[1] >> 3, p[2] >> 3));
        }
        seen.len()
    }
}

/// The colours of the vein labels (venogram's one palette).
pub fn label_colours() -> Vec<[u8; 3]> {
    venogram::VeinLabel::ALL.iter().map(|l| l.rgb()).collect()
}

/// A live tip (`app/colors.rs`, `TIP`).
pub const TIP_COLOUR: [u8; 3] = [255, 0, 255];
/// A stale tip is a ring this far out from its centre (`app/view2d.rs`, `TIP_PX`), screen px.
pub const STALE_RING_PX: i64 = 7;
/// A stale tip (`app/colors.rs`, `TIP_STALE`: pale lavender, unlike the greys of an X-ray
/// within a tolerance of 20).
pub const TIP_STALE_COLOUR: [u8; 3] = [199, 199, 255];

/// Where an image pixel of a view lands on the screen (the summary's `fit`).
pub fn screen_from_image(fit: &Value, xy: [f64; 2]) -> [f64; 2] {
    let v = &fit["viewport"];
    let (vx, vy, vw, vh) =
        (v["x"].as_f64().unwrap(), v["y"].as_f64().unwrap(), v["w"].as_f64().unwrap(), v["h"].as_f64().unwrap());
    let (c, r) = (fit["image_px"][0].as_f64().unwrap(), fit["image_px"][1].as_f64().unwrap());
    let s = fit["scale"].as_f64().unwrap();
    [vx + vw / 2.0 + (xy[0] + 0.5 - c / 2.0) * s, vy + vh / 2.0 + (xy[1] + 0.5 - r / 2.0) * s]
}
