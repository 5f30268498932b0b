//! Least squares across a vessel: the projected profile of iodine cylinders on a linear
//! background, shared by the stages that read a vein's course from the image itself
//! ([`super::overlap`], [`super::tip`]).
//!
//! Written by hand: the systems are 2-4 unknowns, solved millions of times a frame, where a
//! general linear-algebra call would cost more in setup than in arithmetic.

/// Projected path through a cylinder of radius `r` centred at `centre`, at `u`.
pub(crate) fn chord(u: f64, centre: f64, r: f64) -> f64 {
    let d = u - centre;
    (r * r - d * d).max(0.0).sqrt()
}

/// Least squares of `y = sum(coef_i f_i(u)) + b` over the profile's `(u, y)` samples (`u`
/// a position across the vessel, or across and along it), `M` being `N + 1`; returns the coefficients (last the offset `b`) and the sum of squared
/// residuals.
pub(crate) fn least_squares<X: Copy, const N: usize, const M: usize>(
    profile: &[(X, f64)],
    f: impl Fn(X) -> [f64; N],
) -> Option<([f64; M], f64)> {
    debug_assert_eq!(M, N + 1);
    let row = |u: X| {
        let mut r = [1.0; M];
        r[..N].copy_from_slice(&f(u));
        r
    };
    // The normal equations.
    let mut ata = [[0.0; M]; M];
    let mut aty = [0.0; M];
    for &(u, y) in profile {
        let r = row(u);
        for (ata_row, ra) in ata.iter_mut().zip(r) {
            for (cell, rb) in ata_row.iter_mut().zip(r) {
                *cell += ra * rb;
            }
        }
        for (v, ra) in aty.iter_mut().zip(r) {
            *v += ra * y;
        }
    }
    let x = solve(ata, aty)?;
    let sse = profile
        .iter()
        .map(|&(u, y)| {
            let r = row(u);
            let e = y - r.iter().zip(&x).map(|(f, c)| f * c).sum::<f64>();
            e * e
        })
        .sum();
    Some((x, sse))
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` when singular.
pub(crate) fn solve<const M: usize>(mut a: [[f64; M]; M], mut b: [f64; M]) -> Option<[f64; M]> {
    for col in 0..M {
        let pivot = (col..M).max_by(|i, j| a[*i][col].abs().total_cmp(&a[*j][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (pivot_row, pivot_b) = (a[col], b[col]);
        for row in col + 1..M {
            let f = a[row][col] / pivot_row[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            b[row] -= f * pivot_b;
        }
    }
    let mut x = [0.0; M];
    for row in (0..M).rev() {
        let s: f64 = a[row].iter().zip(&x).skip(row + 1).map(|(a, x)| a * x).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// Synthetic top-hat images of vessels for the tests of the stages that fit profiles.
#[cfg(test)]
pub(crate) mod synthetic {
    use super::super::image::ImageF32;
    use super::super::junction::nearest_on_segment;
    use super::super::label::{OrientedEdge, dist};
    use super::chord;

    /// Points a pixel or less apart from `from` to `to`.
    pub(crate) fn line(from: [f64; 2], to: [f64; 2]) -> Vec<[f64; 2]> {
        let n = dist(from, to).ceil().max(1.0) as usize;
        (0..=n)
            .map(|i| {
                let t = i as f64 / n as f64;
                [from[0] + t * (to[0] - from[0]), from[1] + t * (to[1] - from[1])]
            })
            .collect()
    }

    /// A tree edge along `points` of radius `r` px.
    pub(crate) fn edge(parent: Option<usize>, children: Vec<usize>, points: Vec<[f64; 2]>, r: f64) -> OrientedEdge {
        let radius_px = vec![r; points.len()];
        OrientedEdge { parent, children, points, radius_px }
    }

    /// Iodine per pixel of path, in attenuation units.
    pub(crate) const MU: f64 = 0.01;

    /// The top-hat attenuation of `vessels` (polyline, radius px) in a `w x h` frame: each a
    /// cylinder of contrast, overlapping ones adding; `shape` maps a cylinder's path to its
    /// attenuation (a flat top for a lumen that is not round); plus Gaussian noise of `sigma`
    /// (a fixed linear congruential sequence, Box-Muller).
    pub(crate) fn render(
        w: usize,
        h: usize,
        vessels: &[(Vec<[f64; 2]>, f64)],
        shape: impl Fn(f64) -> f64,
        sigma: f64,
    ) -> ImageF32 {
        let mut img = ImageF32::zeros(w, h);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        for y in 0..h {
            for x in 0..w {
                let p = [x as f64, y as f64];
                let mut a = 0.0;
                for (line, r) in vessels {
                    let d = line
                        .windows(2)
                        .map(|s| dist(p, nearest_on_segment(p, s[0], s[1])))
                        .fold(f64::INFINITY, f64::min);
                    a += shape(MU * 2.0 * chord(d, 0.0, *r));
                }
                let noise = sigma * (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
                img.data[y * w + x] = (a + noise) as f32;
            }
        }
        img
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_a_two_cylinder_profile_and_its_slope() {
        let profile: Vec<(f64, f64)> = (-12..=12)
            .map(f64::from)
            .map(|u| (u, 2.0 * chord(u, 0.5, 7.0) + 1.5 * chord(u, 4.0, 3.0) + 0.1 * u + 3.0))
            .collect();
        let (x, sse) =
            least_squares::<_, 3, 4>(&profile, |u| [chord(u, 0.5, 7.0), chord(u, 4.0, 3.0), u]).expect("a fit");
        for (got, want) in x.iter().zip([2.0, 1.5, 0.1, 3.0]) {
            assert!((got - want).abs() < 1e-9, "{x:?}");
        }
        assert!(sse < 1e-12);
    }
}
