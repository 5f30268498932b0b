//! The app's palette: the vein labels' colours (venogram's palette, the same in the 3D and 2D
//! views, the branch list, the overlay pictures and the recordings), and the colours of tips,
//! targets, results and alarms, chosen to stay distinct from the labels, from each other and
//! from the grey of a venogram.

use bevy::prelude::Color;

/// Window background.
pub const BACKGROUND: Color = Color::srgb(0.06, 0.07, 0.09);
/// Panel background.
pub const PANEL: Color = Color::srgb(0.10, 0.11, 0.14);
/// Ordinary text.
pub const TEXT: Color = Color::srgb(0.90, 0.92, 0.95);
/// Secondary text.
pub const DIM: Color = Color::srgb(0.60, 0.63, 0.68);
/// An alarm (lost link, safety event, not eligible).
pub const ALARM: Color = Color::srgb(1.0, 0.25, 0.2);
/// A warning (stale, pending, marginal).
pub const WARN: Color = Color::srgb(1.0, 0.75, 0.1);
/// Good (connected, eligible, captured).
pub const GOOD: Color = Color::srgb(0.25, 0.9, 0.4);
/// A live tracked tip (magenta: no vein label uses it).
pub const TIP: Color = Color::srgb(1.0, 0.0, 1.0);
/// A stale tip: a pale lavender ring, visible on a grey venogram and unlike any label or
/// the live tip (a grey one would vanish into the X-ray).
pub const TIP_STALE: Color = Color::srgb_u8(199, 199, 255);
/// The guidance path and vector.
pub const GUIDANCE: Color = Color::srgb(1.0, 1.0, 1.0);
/// A target not yet tested.
pub const TARGET: Color = Color::srgb(1.0, 0.85, 0.0);

/// A vein label's colour.
#[must_use]
pub fn label_color(label: &str) -> Color {
    let [r, g, b] = venogram::VeinLabel::rgb_of(label);
    Color::srgb_u8(r, g, b)
}
