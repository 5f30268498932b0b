//! The app rendered offscreen: `csnav demo --headless` on the bundled case (software Vulkan
//! from Mesa's lavapipe where there is no GPU; `scripts/test.sh` installs it). The screenshots
//! must not be blank, the live tip marker's colour must be where the navigation pipeline
//! projected the tip, and the tree overlay must cover the ground-truth centerline.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failure is a failed test")]

mod common;

use std::path::Path;

use serde_json::Value;

/// An RGB screenshot.
struct Shot {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Shot {
    fn read(path: &Path) -> Self {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
        rgb.truncate(info.buffer_size());
        Self { width: info.width as usize, height: info.height as usize, rgb }
    }

    fn at(&self, x: i64, y: i64) -> Option<[u8; 3]> {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return None;
        }
        let k = (y as usize * self.width + x as usize) * 3;
        Some([self.rgb[k], self.rgb[k + 1], self.rgb[k + 2]])
    }

    /// Whether a pixel within `radius` of (x, y) is within `tolerance` of one of `colours`.
    fn near(&self, x: f64, y: f64, radius: i64, colours: &[[u8; 3]], tolerance: u8) -> bool {
        let (cx, cy) = (x.floor() as i64, y.floor() as i64);
        (-radius..=radius).any(|dy| {
            (-radius..=radius).any(|dx| {
                self.at(cx + dx, cy + dy)
                    .is_some_and(|p| colours.iter().any(|c| p.iter().zip(c).all(|(a, b)| a.abs_diff(*b) <= tolerance)))
            })
        })
    }

    /// Distinct colours (quantised), a cheap "not blank" measure.
    fn distinct_colours(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        for p in self.rgb.chunks_exact(3) {
            seen.insert((p[0] >> 3, p[1] >> 3, p[2] >> 3));
        }
        seen.len()
    }
}

/// The overlay colours of the vein labels (the app's palette, `app/colors.rs`).
const LABEL_COLOURS: [[u8; 3]; 8] = [
    [255, 140, 30],
    [235, 210, 50],
    [70, 130, 255],
    [165, 95, 255],
    [40, 215, 90],
    [30, 205, 230],
    [255, 100, 170],
    [190, 190, 190],
];
const TIP_COLOUR: [u8; 3] = [255, 0, 255];

fn screen_from_image(fit: &Value, xy: [f64; 2]) -> [f64; 2] {
    let v = &fit["viewport"];
    let (vx, vy, vw, vh) =
        (v["x"].as_f64().unwrap(), v["y"].as_f64().unwrap(), v["w"].as_f64().unwrap(), v["h"].as_f64().unwrap());
    let (c, r) = (fit["image_px"][0].as_f64().unwrap(), fit["image_px"][1].as_f64().unwrap());
    let s = fit["scale"].as_f64().unwrap();
    [vx + vw / 2.0 + (xy[0] + 0.5 - c / 2.0) * s, vy + vh / 2.0 + (xy[1] + 0.5 - r / 2.0) * s]
}

#[test]
fn demo_renders_offscreen_with_the_tip_and_tree_where_they_belong() {
    let out = tempfile::tempdir().unwrap();
    let result = common::csnav_command()
        .args(["demo", "--headless", "--case", &common::case(), "--out"])
        .arg(out.path())
        .args(["--speed-mm-s", "60", "--size", "1600x900"])
        .output()
        .unwrap();
    let stderr = common::text(&result.stderr);
    assert!(result.status.success(), "csnav demo failed:\n{stderr}\n{}", common::text(&result.stdout));
    let stdout = common::text(&result.stdout);
    println!("{stdout}");
    for name in [
        "screen.png",
        "view3d.png",
        "sites.png",
        "device.png",
        "view-lao30.png",
        "view-rao30.png",
        "summary.json",
        "session.rrd",
    ] {
        assert!(out.path().join(name).is_file(), "{name} missing; stderr:\n{stderr}");
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["ranking"].as_array().unwrap().len(), 3, "three sites ranked: {summary}");
    for name in ["screen.png", "view3d.png", "view-lao30.png", "view-rao30.png", "sites.png"] {
        let shot = Shot::read(&out.path().join(name));
        let colours = shot.distinct_colours();
        println!("{name}: {}x{}, {colours} distinct colours", shot.width, shot.height);
        assert!(colours > 12, "{name} looks blank ({colours} colours)");
    }

    let screen = Shot::read(&out.path().join("screen.png"));
    let views = summary["views"].as_array().unwrap();
    assert_eq!(views.len(), 2);
    for view in views {
        let source = view["source"].as_str().unwrap();
        // The tip marker where the navigation pipeline projected the tip.
        let tip = &view["tips"][0];
        assert_eq!(tip["stale"], false, "{source}: the parked tip is streaming, not stale");
        let xy = [tip["projection_px"][0].as_f64().unwrap(), tip["projection_px"][1].as_f64().unwrap()];
        let [sx, sy] = screen_from_image(&view["fit"], xy);
        assert!(screen.near(sx, sy, 3, &[TIP_COLOUR], 40), "{source}: no tip colour within 3 px of ({sx:.1}, {sy:.1})");

        // The tree overlay over the ground-truth centerline of the frame shown.
        let stem = source.trim_end_matches(".dcm");
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(&common::case()).join(format!("{stem}.truth.json"))).unwrap(),
        )
        .unwrap();
        let frame = view["shown_frame"].as_u64().unwrap() as usize;
        let (mut covered, mut total) = (0usize, 0usize);
        for branch in truth["frames"][frame]["branches"].as_array().unwrap() {
            let points = branch["centerline_px"].as_array().unwrap();
            let opacity = branch["opacity"].as_array().unwrap();
            for (p, o) in points.iter().zip(opacity) {
                if o.as_f64().unwrap() < 0.3 {
                    continue;
                }
                let [sx, sy] = screen_from_image(&view["fit"], [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()]);
                total += 1;
                // 2 image px of centreline tolerance at this scale, plus the line's half width.
                let radius = (2.0 * view["fit"]["scale"].as_f64().unwrap()).ceil() as i64 + 1;
                if screen.near(sx, sy, radius, &LABEL_COLOURS, 30) {
                    covered += 1;
                }
            }
        }
        let fraction = covered as f64 / total.max(1) as f64;
        println!(
            "{source}: overlay covers {covered}/{total} ground-truth centerline points ({:.0} %)",
            100.0 * fraction
        );
        assert!(total > 50, "{source}: too few truth points ({total})");
        assert!(
            fraction >= 0.75,
            "{source}: the tree overlay covers only {:.0} % of the ground-truth centerline",
            100.0 * fraction
        );
    }
}

#[test]
fn demo_rejects_a_bad_size_and_a_missing_case() {
    let bad = common::csnav(&["demo", "--headless", "--size", "10x10"]);
    assert!(!bad.status.success());
    assert!(common::text(&bad.stderr).contains("320-7680"), "{}", common::text(&bad.stderr));
    let out = tempfile::tempdir().unwrap();
    let missing = common::csnav_command()
        .args(["demo", "--headless", "--no-record", "--case", "/nonexistent/case", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = common::text(&missing.stderr);
    assert!(stderr.contains("/nonexistent/case"), "the error should name the case: {stderr}");
}
