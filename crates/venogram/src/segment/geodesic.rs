//! Minimal paths over a pixel grid: Dijkstra's search, 8-connected, in a window of the image.
//! Shared by the review's "add a branch" (a path through the vesselness between two points,
//! [`edit`](mod@super::edit)) and by the joining of twigs cut off at their takeoff (a path
//! through the line response to the nearest pixel of the mask, [`bridge`](mod@super::bridge)).
//!
//! Written by hand: OpenCV has no minimal-path search.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A rectangle of pixels, bounds included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// First column.
    pub left: usize,
    /// First row.
    pub top: usize,
    /// Last column.
    pub right: usize,
    /// Last row.
    pub bottom: usize,
}

impl Window {
    /// The window of pixels within `margin` of the pixels `a` and `b` (and the box between
    /// them), clipped to an image of `width` x `height` (both at least 1).
    pub(crate) fn around(a: (usize, usize), b: (usize, usize), margin: usize, width: usize, height: usize) -> Self {
        Self {
            left: a.0.min(b.0).saturating_sub(margin),
            top: a.1.min(b.1).saturating_sub(margin),
            right: (a.0.max(b.0) + margin).min(width - 1),
            bottom: (a.1.max(b.1) + margin).min(height - 1),
        }
    }

    fn width(&self) -> usize {
        self.right - self.left + 1
    }

    fn contains(&self, (x, y): (usize, usize)) -> bool {
        (self.left..=self.right).contains(&x) && (self.top..=self.bottom).contains(&y)
    }
}

/// A search node: its cost so far and its index in the window.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Open {
    cost: f64,
    at: usize,
}

impl Eq for Open {}

impl Ord for Open {
    fn cmp(&self, other: &Self) -> Ordering {
        // Lowest cost first from the max-heap; ties by index, so the search is deterministic.
        other.cost.total_cmp(&self.cost).then_with(|| self.at.cmp(&other.at))
    }
}

impl PartialOrd for Open {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The cheapest 8-connected path within `window` from `start` to the first pixel, in order of
/// cost, for which `is_goal` holds (the start itself included). A step into pixel `(x, y)`
/// costs its length (1 or the square root of 2) times `cost_at(x, y)`; `None` there makes the
/// pixel impassable. Returns the pixels from `start` to the goal, both included, or `None`
/// when `start` is outside the window or no goal can be reached.
pub(crate) fn cheapest_path(
    window: &Window,
    start: (usize, usize),
    cost_at: impl Fn(usize, usize) -> Option<f64>,
    is_goal: impl Fn(usize, usize) -> bool,
) -> Option<Vec<(usize, usize)>> {
    if !window.contains(start) {
        return None;
    }
    let w = window.width();
    let h = window.bottom - window.top + 1;
    let index = |(x, y): (usize, usize)| (y - window.top) * w + (x - window.left);
    let pixel = |at: usize| (at % w + window.left, at / w + window.top);
    let mut cost = vec![f64::INFINITY; w * h];
    let mut came_from = vec![usize::MAX; w * h];
    let first = index(start);
    cost[first] = 0.0;
    let mut open = BinaryHeap::from([Open { cost: 0.0, at: first }]);
    while let Some(Open { cost: c, at }) = open.pop() {
        if c > cost[at] {
            continue;
        }
        let (x, y) = pixel(at);
        if is_goal(x, y) {
            let mut path = vec![(x, y)];
            let mut back = at;
            while came_from[back] != usize::MAX {
                back = came_from[back];
                path.push(pixel(back));
            }
            path.reverse();
            return Some(path);
        }
        for (dx, dy) in [(-1i64, -1i64), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
            let (nx, ny) = (x as i64 + dx, y as i64 + dy);
            if nx < 0 || ny < 0 || !window.contains((nx as usize, ny as usize)) {
                continue;
            }
            let (nx, ny) = (nx as usize, ny as usize);
            let Some(unit) = cost_at(nx, ny) else { continue };
            let step = if dx != 0 && dy != 0 { std::f64::consts::SQRT_2 } else { 1.0 };
            let through = c + step * unit;
            let next = index((nx, ny));
            if through < cost[next] {
                cost[next] = through;
                came_from[next] = at;
                open.push(Open { cost: through, at: next });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap corridor along row 5 from (0, 5) to (19, 5), and a wall at column 10 but for a
    /// gap at row 5.
    fn corridor(x: usize, y: usize) -> Option<f64> {
        if x == 10 && y != 5 {
            None
        } else if y == 5 {
            Some(0.1)
        } else {
            Some(1.0)
        }
    }

    #[test]
    fn the_path_follows_the_cheap_pixels_through_the_gap_to_the_goal() {
        let window = Window { left: 0, top: 0, right: 19, bottom: 9 };
        let path = cheapest_path(&window, (0, 1), corridor, |x, y| (x, y) == (19, 1)).unwrap();
        assert_eq!(path.first(), Some(&(0, 1)));
        assert_eq!(path.last(), Some(&(19, 1)));
        assert!(path.contains(&(10, 5)), "through the gap: {path:?}");
        // 8-connected, one pixel per step.
        assert!(path.windows(2).all(|s| s[0].0.abs_diff(s[1].0) <= 1 && s[0].1.abs_diff(s[1].1) <= 1));
    }

    #[test]
    fn no_reachable_goal_or_a_start_outside_gives_none_and_a_start_on_the_goal_a_single_pixel() {
        let window = Window { left: 0, top: 0, right: 19, bottom: 9 };
        let walled = |x: usize, _: usize| (x != 10).then_some(1.0);
        assert_eq!(cheapest_path(&window, (0, 0), walled, |x, _| x == 15), None);
        assert_eq!(cheapest_path(&window, (25, 0), corridor, |_, _| true), None);
        assert_eq!(cheapest_path(&window, (3, 3), corridor, |x, y| (x, y) == (3, 3)), Some(vec![(3, 3)]));
    }

    #[test]
    fn a_window_around_two_pixels_is_clipped_to_the_image() {
        let w = Window::around((2, 50), (30, 40), 10, 35, 55);
        assert_eq!(w, Window { left: 0, top: 30, right: 34, bottom: 54 });
    }
}
