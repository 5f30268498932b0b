//! Stage 4a: thinning of the vessel mask to a one-pixel-wide skeleton.
//!
//! Written by hand rather than taken from OpenCV: `cv::ximgproc::thinning` lives in the
//! contrib module (its Rust bindings pull in calib3d, features2d and flann, minutes of CI
//! build) and rescans the whole image on every pass, while a vessel mask covers a few percent
//! of the frame. This Zhang-Suen (CACM 27(3), 1984) keeps a list of the foreground pixels
//! still on the border and decides each with a 256-entry table of its 8-neighbourhood.

use super::image::Mask;

/// Neighbour offsets in Zhang-Suen's order P2..P9: N, NE, E, SE, S, SW, W, NW.
const RING: [(isize, isize); 8] = [(0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1)];

/// Whether a pixel with neighbourhood `bits` (bit i = RING[i]) is deleted in sub-iteration
/// `pass` (0 or 1).
const fn bit(bits: u8, i: usize) -> u8 {
    (bits >> i) & 1
}

const fn deletable(bits: u8, pass: usize) -> bool {
    let b = bits.count_ones();
    let mut a = 0;
    let mut i = 0;
    while i < 8 {
        if bit(bits, i) == 0 && bit(bits, (i + 1) % 8) == 1 {
            a += 1;
        }
        i += 1;
    }
    let (p2, p4, p6, p8) = (bit(bits, 0), bit(bits, 2), bit(bits, 4), bit(bits, 6));
    let cond = if pass == 0 { p2 * p4 * p6 == 0 && p4 * p6 * p8 == 0 } else { p2 * p4 * p8 == 0 && p2 * p6 * p8 == 0 };
    b >= 2 && b <= 6 && a == 1 && cond
}

const fn table(pass: usize) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = deletable(i as u8, pass);
        i += 1;
    }
    t
}

const TABLES: [[bool; 256]; 2] = [table(0), table(1)];

fn neighbourhood(m: &[u8], w: usize, h: usize, x: usize, y: usize) -> u8 {
    let mut bits = 0u8;
    for (i, (dx, dy)) in RING.iter().enumerate() {
        let (nx, ny) = (x as isize + dx, y as isize + dy);
        if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h && m[ny as usize * w + nx as usize] != 0 {
            bits |= 1 << i;
        }
    }
    bits
}

/// Zhang-Suen thinning of `mask`.
#[must_use]
pub fn thin(mask: &Mask) -> Mask {
    let (w, h) = (mask.width, mask.height);
    let mut m = mask.data.clone();
    let mut alive: Vec<usize> = (0..w * h).filter(|i| m[*i] != 0).collect();
    let mut remove = Vec::new();
    loop {
        let mut changed = false;
        for table in &TABLES {
            remove.clear();
            for &i in &alive {
                if m[i] != 0 && table[neighbourhood(&m, w, h, i % w, i / w) as usize] {
                    remove.push(i);
                }
            }
            for &i in &remove {
                m[i] = 0;
            }
            changed |= !remove.is_empty();
        }
        alive.retain(|i| m[*i] != 0);
        if !changed {
            break;
        }
    }
    Mask { width: w, height: h, data: m }
}

/// The 8-neighbours of `(x, y)` that are set in `mask`, as pixel indices.
pub(crate) fn neighbours(mask: &Mask, x: usize, y: usize) -> impl Iterator<Item = usize> + '_ {
    RING.iter().filter_map(move |(dx, dy)| {
        let (nx, ny) = (x as isize + dx, y as isize + dy);
        (nx >= 0 && ny >= 0 && (nx as usize) < mask.width && (ny as usize) < mask.height)
            .then(|| ny as usize * mask.width + nx as usize)
            .filter(|i| mask.data[*i] != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thick_bar_thins_to_a_line_along_its_axis() {
        let mut m = Mask::empty(40, 15);
        for y in 4..11 {
            for x in 3..37 {
                m.set(x, y, true);
            }
        }
        let s = thin(&m);
        assert!(s.count() >= 25 && s.count() <= 34, "{}", s.count());
        for x in 8..32 {
            assert!(s.get(x, 7), "axis pixel {x}");
            assert!(!s.get(x, 5) && !s.get(x, 9));
        }
    }

    #[test]
    fn thinning_keeps_connectivity_of_a_ring() {
        let mut m = Mask::empty(40, 40);
        for y in 0..40 {
            for x in 0..40 {
                let r = ((x as f64 - 20.0).powi(2) + (y as f64 - 20.0).powi(2)).sqrt();
                m.set(x, y, (10.0..15.0).contains(&r));
            }
        }
        let s = thin(&m);
        // Every skeleton pixel of a closed ring has at least two neighbours.
        for y in 0..40 {
            for x in 0..40 {
                if s.get(x, y) {
                    assert!(neighbours(&s, x, y).count() >= 2, "({x},{y})");
                }
            }
        }
    }
}
