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

/// Zhang-Suen thinning of `mask`.
///
/// Equivalent to testing every pixel in every sub-iteration, but a pixel is tested in a
/// sub-iteration only if its neighbourhood changed since it was last tested in one of the
/// same kind (otherwise the answer cannot have changed). The work list starts with the
/// mask's border (an interior pixel, all eight neighbours set, is never deletable) and takes
/// in the neighbours of each deletion, so a pass costs the moving front, not the area of a
/// thick vessel nor the skeleton already found. The mask is padded by one pixel so the
/// neighbourhood needs no bounds checks.
#[must_use]
pub fn thin(mask: &Mask) -> Mask {
    let (w, h) = (mask.width, mask.height);
    let stride = w + 2;
    let mut m = vec![0u8; stride * (h + 2)];
    for y in 0..h {
        for x in 0..w {
            m[(y + 1) * stride + x + 1] = u8::from(mask.data[y * w + x] != 0);
        }
    }
    // Padded offsets of RING.
    let offsets: [isize; 8] = RING.map(|(dx, dy)| dy * stride as isize + dx);
    let bits_at = |m: &[u8], i: usize| -> u8 {
        let mut bits = 0u8;
        for (k, o) in offsets.iter().enumerate() {
            bits |= m[i.wrapping_add_signed(*o)] << k;
        }
        bits
    };
    // need[i]: bit p set = to be tested in sub-iteration p.
    let mut need = vec![0u8; m.len()];
    let mut listed = vec![false; m.len()];
    let mut list: Vec<usize> = Vec::new();
    for y in 1..=h {
        for i in y * stride + 1..y * stride + 1 + w {
            if m[i] != 0 && bits_at(&m, i) != 0xff {
                need[i] = 0b11;
                listed[i] = true;
                list.push(i);
            }
        }
    }
    let mut remove = Vec::new();
    loop {
        let mut changed = false;
        for (pass, table) in TABLES.iter().enumerate() {
            let bit = 1u8 << pass;
            remove.clear();
            for &i in &list {
                if m[i] != 0 && need[i] & bit != 0 {
                    need[i] &= !bit;
                    if table[bits_at(&m, i) as usize] {
                        remove.push(i);
                    }
                }
            }
            for &i in &remove {
                m[i] = 0;
                need[i] = 0;
            }
            // The neighbours of deleted pixels must be tested again, in both kinds.
            for &i in &remove {
                for o in offsets {
                    let j = i.wrapping_add_signed(o);
                    if m[j] != 0 {
                        need[j] = 0b11;
                        if !listed[j] {
                            listed[j] = true;
                            list.push(j);
                        }
                    }
                }
            }
            changed |= !remove.is_empty();
            list.retain(|&i| {
                listed[i] = need[i] != 0;
                listed[i]
            });
        }
        if !changed {
            break;
        }
    }
    let mut data = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            data[y * w + x] = if m[(y + 1) * stride + x + 1] != 0 { 255 } else { 0 };
        }
    }
    Mask { width: w, height: h, data }
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

    /// Zhang-Suen as published: every foreground pixel tested in every sub-iteration.
    fn thin_reference(mask: &Mask) -> Mask {
        let (w, h) = (mask.width, mask.height);
        let mut m = mask.data.clone();
        loop {
            let mut changed = false;
            for table in &TABLES {
                let remove: Vec<usize> = (0..w * h)
                    .filter(|&i| m[i] != 0 && table[neighbourhood(&m, w, h, i % w, i / w) as usize])
                    .collect();
                for &i in &remove {
                    m[i] = 0;
                }
                changed |= !remove.is_empty();
            }
            if !changed {
                break;
            }
        }
        Mask { width: w, height: h, data: m }
    }

    #[test]
    fn border_lists_thin_exactly_as_the_full_scan() {
        // Overlapping discs and bars of pseudo-random sizes (a fixed LCG, reproducible).
        let mut state = 12_345u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % n) as i64
        };
        for _ in 0..20 {
            let mut m = Mask::empty(64, 48);
            for _ in 0..4 {
                let (cx, cy, r) = (next(64), next(48), 2 + next(9));
                let bar = next(2) == 0;
                for y in 0..48i64 {
                    for x in 0..64i64 {
                        let inside = if bar {
                            (y - cy).abs() <= r / 2 && (x - cx).abs() <= 3 * r
                        } else {
                            (x - cx).pow(2) + (y - cy).pow(2) <= r * r
                        };
                        if inside {
                            m.set(x as usize, y as usize, true);
                        }
                    }
                }
            }
            assert_eq!(thin(&m), thin_reference(&m));
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
