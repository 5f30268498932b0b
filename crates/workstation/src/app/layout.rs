//! Screen layout: where the 3D view, the venogram views and the panels go for a target size,
//! and how image pixels of a venogram map to screen pixels (used by the views, the headless
//! summary and the rendering test).

use bevy::camera::{RenderTarget, Viewport};
use bevy::prelude::*;
use serde::Serialize;

/// An axis-aligned rectangle in physical screen pixels, origin top-left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScreenRect {
    /// Left edge, px.
    pub x: f32,
    /// Top edge, px.
    pub y: f32,
    /// Width, px.
    pub w: f32,
    /// Height, px.
    pub h: f32,
}

impl ScreenRect {
    /// The rectangle as a camera viewport (at least 1 px each way).
    #[must_use]
    pub fn viewport(&self) -> Viewport {
        Viewport {
            physical_position: UVec2::new(self.x.max(0.0) as u32, self.y.max(0.0) as u32),
            physical_size: UVec2::new(self.w.max(1.0) as u32, self.h.max(1.0) as u32),
            ..default()
        }
    }

    /// The rectangle snapped to whole pixels (what a viewport really covers).
    #[must_use]
    pub fn snapped(&self) -> Self {
        Self { x: self.x.floor(), y: self.y.floor(), w: self.w.floor().max(1.0), h: self.h.floor().max(1.0) }
    }
}

/// How a venogram image is shown in its view: fitted, centred, aspect kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ImageFit {
    /// The view's viewport, px.
    pub viewport: ScreenRect,
    /// Image size, px (columns, rows).
    pub image_px: [f32; 2],
    /// Screen px per image px.
    pub scale: f32,
}

impl ImageFit {
    /// Fits an image of `columns` x `rows` into `viewport`.
    #[must_use]
    pub fn new(viewport: ScreenRect, columns: u32, rows: u32) -> Self {
        let viewport = viewport.snapped();
        let (c, r) = (columns.max(1) as f32, rows.max(1) as f32);
        Self { viewport, image_px: [c, r], scale: (viewport.w / c).min(viewport.h / r) }
    }

    /// Image pixel (x = column, y = row, pixel centres at integers) to the view's world
    /// coordinates (image centred on the origin, y up, one unit per image px).
    #[must_use]
    pub fn world_from_image(&self, xy: [f64; 2]) -> Vec2 {
        Vec2::new(xy[0] as f32 + 0.5 - self.image_px[0] / 2.0, self.image_px[1] / 2.0 - 0.5 - xy[1] as f32)
    }

    /// Image pixel to screen pixel (the continuous position of the pixel's centre).
    #[must_use]
    pub fn screen_from_image(&self, xy: [f64; 2]) -> [f32; 2] {
        let w = self.world_from_image(xy);
        let v = &self.viewport;
        [v.x + v.w / 2.0 + w.x * self.scale, v.y + v.h / 2.0 - w.y * self.scale]
    }

    /// Screen pixel to image pixel (the inverse of [`Self::screen_from_image`]); `None`
    /// outside the image.
    #[must_use]
    pub fn image_from_screen(&self, screen: [f32; 2]) -> Option<[f64; 2]> {
        let v = &self.viewport;
        let wx = (screen[0] - v.x - v.w / 2.0) / self.scale;
        let wy = (v.y + v.h / 2.0 - screen[1]) / self.scale;
        let x = f64::from(wx - 0.5 + self.image_px[0] / 2.0);
        let y = f64::from(self.image_px[1] / 2.0 - 0.5 - wy);
        let inside = (-0.5..f64::from(self.image_px[0]) - 0.5).contains(&x)
            && (-0.5..f64::from(self.image_px[1]) - 0.5).contains(&y);
        inside.then_some([x, y])
    }
}

/// Where everything goes.
#[derive(Debug, Clone, PartialEq, Serialize, Resource)]
pub struct Layout {
    /// Target size, px.
    pub size_px: [f32; 2],
    /// Header bar (mode, disclaimer, link status).
    pub header: ScreenRect,
    /// The 3D view.
    pub view3d: ScreenRect,
    /// The venogram views, one per run slot (left to right).
    pub views2d: Vec<ScreenRect>,
    /// Caption line under each venogram view.
    pub captions2d: Vec<ScreenRect>,
    /// Branch list.
    pub branches: ScreenRect,
    /// Tip state.
    pub tips: ScreenRect,
    /// Device panel.
    pub device: ScreenRect,
    /// The EGM strip inside the device panel.
    pub egm: ScreenRect,
    /// Ranked site table.
    pub sites: ScreenRect,
}

/// Venogram view slots (with more runs, the newest takes the last slot).
pub const VIEW_SLOTS: usize = 2;

/// The run (index) shown in a view slot when there are `runs`: the first runs in their own
/// slots, the newest in the last one (a run received during the case replaces the view there).
#[must_use]
pub fn run_in_slot(slot: usize, runs: usize) -> Option<usize> {
    if slot + 1 >= VIEW_SLOTS && runs > VIEW_SLOTS { Some(runs - 1) } else { (slot < runs).then_some(slot) }
}

/// Whether run `k` of `runs` is on screen.
#[must_use]
pub fn is_shown(k: usize, runs: usize) -> bool {
    run_in_slot(k.min(VIEW_SLOTS - 1), runs) == Some(k)
}

impl Layout {
    /// The layout for a target of `w` x `h` px.
    #[must_use]
    pub fn for_size(w: f32, h: f32) -> Self {
        let header_h = (h * 0.04).max(28.0);
        let top_end = (h * 0.62).round();
        let caption_h = (h * 0.028).max(20.0);
        let view3d = ScreenRect { x: 0.0, y: header_h, w: (w * 0.40).round(), h: top_end - header_h };
        let slot_w = (w - view3d.w) / VIEW_SLOTS as f32;
        let views2d: Vec<ScreenRect> = (0..VIEW_SLOTS)
            .map(|k| ScreenRect {
                x: view3d.w + slot_w * k as f32,
                y: header_h,
                w: slot_w,
                h: top_end - header_h - caption_h,
            })
            .collect();
        let captions2d = views2d.iter().map(|v| ScreenRect { x: v.x, y: v.y + v.h, w: v.w, h: caption_h }).collect();
        let bottom_h = h - top_end;
        let col = |x0: f32, x1: f32| ScreenRect {
            x: (w * x0).round(),
            y: top_end,
            w: (w * x1).round() - (w * x0).round(),
            h: bottom_h,
        };
        let device = col(0.44, 0.72);
        let egm =
            ScreenRect { x: device.x + 8.0, y: device.y + 34.0, w: device.w - 16.0, h: (bottom_h * 0.32).round() };
        Self {
            size_px: [w, h],
            header: ScreenRect { x: 0.0, y: 0.0, w, h: header_h },
            view3d,
            views2d,
            captions2d,
            branches: col(0.0, 0.22),
            tips: col(0.22, 0.44),
            device,
            egm,
            sites: col(0.72, 1.0),
        }
    }

    /// The venogram view slot of the `index`-th run (0-based).
    #[must_use]
    pub fn slot(&self, index: usize) -> ScreenRect {
        self.views2d[index.min(VIEW_SLOTS - 1)]
    }
}

/// The physical size of what the cameras draw into (the primary window or the offscreen image).
#[derive(Debug, Clone, Copy, PartialEq, Resource)]
pub struct TargetSize(pub UVec2);

/// Keeps [`Layout`] in step with the target size.
pub struct LayoutPlugin;

impl Plugin for LayoutPlugin {
    fn build(&self, app: &mut App) {
        let size = app.world().get_resource::<super::AppOptions>().map_or((1920, 1080), |o| o.size_px);
        app.insert_resource(TargetSize(UVec2::new(size.0, size.1)))
            .insert_resource(Layout::for_size(size.0 as f32, size.1 as f32))
            .add_systems(PreUpdate, (track_window_size, relayout).chain());
    }
}

fn track_window_size(windows: Query<&Window>, mut size: ResMut<TargetSize>) {
    if let Some(window) = windows.iter().next() {
        let now = UVec2::new(window.physical_width(), window.physical_height());
        if now.x > 0 && now.y > 0 && size.0 != now {
            size.0 = now;
        }
    }
}

fn relayout(size: Res<TargetSize>, mut layout: ResMut<Layout>) {
    if size.is_changed() {
        *layout = Layout::for_size(size.0.x as f32, size.0.y as f32);
    }
}

/// The render target every camera of the app draws into: the primary window, or the
/// offscreen image when running headless.
#[derive(Debug, Clone, Resource)]
pub struct AppTarget(pub RenderTarget);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_run_takes_the_last_slot() {
        assert_eq!(run_in_slot(0, 0), None);
        assert_eq!((run_in_slot(0, 1), run_in_slot(1, 1)), (Some(0), None));
        assert_eq!((run_in_slot(0, 2), run_in_slot(1, 2)), (Some(0), Some(1)));
        assert_eq!((run_in_slot(0, 4), run_in_slot(1, 4)), (Some(0), Some(3)));
        let shown: Vec<usize> = (0..4).filter(|&k| is_shown(k, 4)).collect();
        assert_eq!(shown, [0, 3]);
    }

    #[test]
    fn regions_tile_the_screen_without_overlap() {
        let l = Layout::for_size(1920.0, 1080.0);
        let top = [l.view3d, l.views2d[0], l.views2d[1]];
        for pair in top.windows(2) {
            assert!(pair[0].x + pair[0].w <= pair[1].x + 0.5, "{pair:?}");
        }
        let bottom = [l.branches, l.tips, l.device, l.sites];
        for pair in bottom.windows(2) {
            assert!(pair[0].x + pair[0].w <= pair[1].x + 0.5, "{pair:?}");
        }
        assert!(l.views2d[1].x + l.views2d[1].w <= 1920.5);
        assert!(l.captions2d[0].y + l.captions2d[0].h <= l.branches.y + 0.5);
        assert!(l.egm.y + l.egm.h < l.device.y + l.device.h);
    }

    #[test]
    fn image_pixels_map_to_the_fitted_view() {
        let fit = ImageFit::new(ScreenRect { x: 100.0, y: 50.0, w: 600.0, h: 400.0 }, 512, 512);
        assert!((fit.scale - 400.0 / 512.0).abs() < 1e-6);
        // The image centre (between pixels 255 and 256) is the viewport centre.
        let c = fit.screen_from_image([255.5, 255.5]);
        assert!((c[0] - 400.0).abs() < 1e-3 && (c[1] - 250.0).abs() < 1e-3, "{c:?}");
        // Pixel (0, 0)'s centre is half a pixel in from the fitted image's top-left corner.
        let tl = fit.screen_from_image([0.0, 0.0]);
        let half = 0.5 * fit.scale;
        assert!((tl[0] - (400.0 - 200.0 + half)).abs() < 1e-3 && (tl[1] - (50.0 + half)).abs() < 1e-3, "{tl:?}");
        // And back.
        for xy in [[0.0, 0.0], [100.25, 400.75], [511.0, 3.0]] {
            let back = fit.image_from_screen(fit.screen_from_image(xy)).unwrap();
            assert!((back[0] - xy[0]).abs() < 1e-2 && (back[1] - xy[1]).abs() < 1e-2, "{xy:?} -> {back:?}");
        }
        assert_eq!(fit.image_from_screen([150.0, 250.0]), None, "left of the fitted image");
    }
}
