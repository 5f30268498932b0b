//! X-ray cine rendering of a synthetic patient with ground truth.
//!
//! Each frame is a perspective projection through [`venogram::CArmProjection`] (the one
//! projection implementation csnav has): contrast-filled veins and the confounders of a real
//! venogram (guide catheter and occlusion balloon at the CS ostium, RA/RV pacing leads,
//! sternal wires, ribs, spine, cardiac silhouette, diaphragm) attenuate the beam by
//! Beer-Lambert (`I = I0 exp(-sum mu_i * path_i)`, path lengths through each tube or body
//! computed per ray); the intensity is blurred by the detector, given quantum (Poisson)
//! noise over a uniform scatter veil and log-mapped to 8-16-bit samples, darker where attenuation is higher
//! (MONOCHROME2, as XA stores it). Contrast fills retrogradely from the ostium, plateaus and
//! washes out; the heart moves per frame ([`crate::motion`]).

use nalgebra::{Point2, Point3, Vector3};
use serde::Serialize;
use venogram::{CArmProjection, Cine, PhotometricInterpretation, PixelFormat, VeinLabel};

use crate::patient::SyntheticPatient;
use crate::rng::SimRng;
use crate::venous_tree::Takeoff;
use crate::view::ViewAngles;

/// The contrast injection against the occlusion balloon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Injection {
    /// Start of the injection, ms from the first frame.
    pub start_ms: f64,
    /// Speed of the retrograde contrast front along the veins, mm/s.
    pub front_speed_mm_per_s: f64,
    /// When washout begins (balloon deflated), ms.
    pub washout_start_ms: f64,
    /// Washout time constant, ms.
    pub washout_tau_ms: f64,
    /// Linear attenuation of the undiluted contrast column, per mm.
    pub contrast_mu_per_mm: f64,
}

/// What to render.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderSettings {
    /// The C-arm angulation.
    pub view: ViewAngles,
    /// Image rows.
    pub rows: u32,
    /// Image columns.
    pub columns: u32,
    /// Bits stored per sample (8-16).
    pub bits_stored: u16,
    /// Number of frames.
    pub frames: u32,
    /// Frame rate, frames per second.
    pub frame_rate_hz: f64,
    /// Distance source to detector, mm.
    pub distance_source_to_detector_mm: f64,
    /// Distance source to isocentre, mm.
    pub distance_source_to_patient_mm: f64,
    /// Detector field imaged by the matrix, mm (pixel spacing = field / columns).
    pub detector_field_mm: f64,
    /// Photons per pixel behind an average chest (sets the quantum noise).
    pub photons_per_pixel: f64,
    /// Detector blur, Gaussian sigma in pixels at a 512 matrix (scaled with the matrix).
    pub blur_sigma_px_at_512: f64,
    /// The injection.
    pub injection: Injection,
    /// Seed of the quantum noise (the anatomy comes from the patient's seed).
    pub noise_seed: u64,
    /// Wires and leads placed in the veins (training fluoroscopy), moving with the heart.
    pub instruments: Vec<Instrument>,
}

/// A wire or lead lying in the veins, drawn radiopaque and moved with the heart like them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instrument {
    /// What it is (reported in the ground truth).
    pub kind: DeviceKind,
    /// Centerline at end-diastole, patient LPS mm.
    pub points_in_patient: Vec<Point3<f64>>,
    /// Radius, mm.
    pub radius_mm: f64,
    /// Linear attenuation, per mm.
    pub mu_per_mm: f64,
}

impl RenderSettings {
    /// Typical settings of an occlusive venogram at 15 frames/s.
    #[must_use]
    pub fn typical(view: ViewAngles, size: u32, bits_stored: u16, frames: u32) -> Self {
        let frame_rate_hz = 15.0;
        let duration_ms = 1000.0 * f64::from(frames.max(1)) / frame_rate_hz;
        Self {
            view,
            rows: size,
            columns: size,
            bits_stored,
            frames,
            frame_rate_hz,
            distance_source_to_detector_mm: 1100.0,
            distance_source_to_patient_mm: 780.0,
            detector_field_mm: 250.0,
            photons_per_pixel: 1500.0,
            blur_sigma_px_at_512: 0.8,
            injection: Injection {
                start_ms: 0.08 * duration_ms,
                front_speed_mm_per_s: 260.0 / (0.4 * duration_ms / 1000.0),
                washout_start_ms: 0.75 * duration_ms,
                washout_tau_ms: 0.2 * duration_ms,
                contrast_mu_per_mm: 0.25,
            },
            noise_seed: 1,
            instruments: Vec::new(),
        }
    }

    /// Imager pixel spacing, mm (square pixels).
    #[must_use]
    pub fn pixel_spacing_mm(&self) -> f64 {
        self.detector_field_mm / f64::from(self.columns.max(1))
    }

    /// The projection of this view.
    pub fn projection(&self) -> Result<CArmProjection, venogram::geometry::GeometryError> {
        let ps = self.pixel_spacing_mm();
        CArmProjection::new(
            self.view.primary_deg,
            self.view.secondary_deg,
            self.distance_source_to_detector_mm,
            self.distance_source_to_patient_mm,
            [ps, ps],
            self.rows,
            self.columns,
        )
    }

    /// Time of frame `k`, ms.
    #[must_use]
    pub fn frame_time_ms(&self, k: u32) -> f64 {
        1000.0 * f64::from(k) / self.frame_rate_hz
    }
}

/// Rounds to 1/1000 (of a pixel) for the truth files: far below any tolerance, and it keeps
/// a case's JSON small.
fn milli(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn serialize_points_milli<S: serde::Serializer>(points: &[[f64; 2]], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq as _;
    let mut seq = s.serialize_seq(Some(points.len()))?;
    for p in points {
        seq.serialize_element(&[milli(p[0]), milli(p[1])])?;
    }
    seq.end()
}

fn serialize_values_milli<S: serde::Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq as _;
    let mut seq = s.serialize_seq(Some(values.len()))?;
    for v in values {
        seq.serialize_element(&milli(*v))?;
    }
    seq.end()
}

/// One branch as it appears in one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BranchTruth {
    /// Branch index in the patient's tree.
    pub id: u32,
    /// Anatomical label.
    pub label: VeinLabel,
    /// Where it leaves its parent.
    pub takeoff: Option<Takeoff>,
    /// Projected centerline, pixels `(column, row)`.
    #[serde(serialize_with = "serialize_points_milli")]
    pub centerline_px: Vec<[f64; 2]>,
    /// Projected radius at each point, pixels.
    #[serde(serialize_with = "serialize_values_milli")]
    pub radius_px: Vec<f64>,
    /// Contrast concentration at each point, 0..1.
    #[serde(serialize_with = "serialize_values_milli")]
    pub opacity: Vec<f64>,
}

/// Ground truth of one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameTruth {
    /// Frame index (0-based).
    pub frame: u32,
    /// Time, ms from the first frame.
    pub time_ms: f64,
    /// Every branch, projected.
    pub branches: Vec<BranchTruth>,
    /// Projected bifurcations (each child's takeoff), pixels.
    #[serde(serialize_with = "serialize_points_milli")]
    pub bifurcations_px: Vec<[f64; 2]>,
    /// Devices in the field (catheter, balloon, leads, sternal wires), projected.
    pub devices: Vec<DeviceTruth>,
}

impl FrameTruth {
    /// The frame's true 2D tree as segmentation gives one (every branch whole, its identifier
    /// the patient's branch index, pixel spacing unknown): the input of tests and benchmarks
    /// of what comes after segmentation.
    #[must_use]
    pub fn tree(&self) -> venogram::segment::BranchTree {
        use venogram::segment::{BranchTree, NodeKind, TreeBranch, TreeNode};
        let mut tree = BranchTree::default();
        for b in &self.branches {
            let kind = if b.takeoff.is_none() { NodeKind::Root } else { NodeKind::End };
            tree.nodes.push(TreeNode { id: b.id, kind, xy: b.centerline_px[0] });
            let parent = b.takeoff.map(|t| t.parent.0);
            tree.branches.push(TreeBranch::measured(
                b.id,
                parent,
                b.label,
                b.id,
                b.id,
                &b.centerline_px,
                &b.radius_px,
                None,
            ));
        }
        tree
    }
}

/// A rendered run.
#[derive(Debug, Clone)]
pub struct RenderedRun {
    /// The settings it was rendered with.
    pub settings: RenderSettings,
    /// Its projection.
    pub projection: CArmProjection,
    /// The frames.
    pub cine: Cine,
    /// Frames at R waves (0-based).
    pub r_wave_frame_indices: Vec<u32>,
    /// Ground truth per frame.
    pub truth: Vec<FrameTruth>,
    /// The frame with the most contrast in view.
    pub peak_frame: u32,
}

/// Why a run cannot be rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderError {
    /// The settings describe an impossible image or geometry.
    Settings(String),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Settings(why) => write!(f, "cannot render: {why}"),
        }
    }
}

impl std::error::Error for RenderError {}

/// A tube in patient space (a vessel, a lead, a rib): centerline, radius and attenuation per point.
struct Tube {
    points: Vec<Point3<f64>>,
    radius_mm: Vec<f64>,
    mu_per_mm: Vec<f64>,
    /// What it is, when it is a device (reported in the ground truth).
    device: Option<DeviceKind>,
}

impl Tube {
    fn uniform(points: Vec<Point3<f64>>, radius_mm: f64, mu_per_mm: f64) -> Self {
        let n = points.len();
        Self { points, radius_mm: vec![radius_mm; n], mu_per_mm: vec![mu_per_mm; n], device: None }
    }

    fn device(mut self, kind: DeviceKind) -> Self {
        self.device = Some(kind);
        self
    }
}

/// A radiopaque device in the field: what segmentation must not take for a vein.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeviceKind {
    /// The guide catheter from the SVC into the CS ostium.
    GuideCatheter,
    /// The occlusion balloon in the proximal CS.
    Balloon,
    /// An existing pacing lead (RA or RV).
    PacingLead,
    /// A sternal wire loop.
    SternalWire,
    /// A coronary guidewire in the veins (training fluoroscopy).
    Guidewire,
    /// The LV lead being placed (training fluoroscopy).
    LvLead,
}

/// A device as it appears in one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceTruth {
    /// What it is.
    pub kind: DeviceKind,
    /// Projected centerline, pixels `(column, row)`.
    #[serde(serialize_with = "serialize_points_milli")]
    pub centerline_px: Vec<[f64; 2]>,
    /// Projected radius, pixels (largest along it).
    pub radius_px: f64,
}

/// An ellipsoidal body (heart, abdomen under the diaphragm) adding `mu` over its chord.
struct Body {
    center: Point3<f64>,
    axes: [Vector3<f64>; 3],
    radii_mm: [f64; 3],
    mu_per_mm: f64,
}

impl Body {
    fn chord_mm(&self, origin: &Point3<f64>, direction: &Vector3<f64>) -> f64 {
        let oc = origin - self.center;
        let o: Vector3<f64> = Vector3::from_fn(|i, _| oc.dot(&self.axes[i]) / self.radii_mm[i]);
        let d: Vector3<f64> = Vector3::from_fn(|i, _| direction.dot(&self.axes[i]) / self.radii_mm[i]);
        let (a, b, c) = (d.dot(&d), o.dot(&d), o.dot(&o) - 1.0);
        let disc = b * b - a * c;
        if disc <= 0.0 || a <= 0.0 { 0.0 } else { 2.0 * disc.sqrt() / a }
    }
}

/// Path length through an infinite cylinder (the spine).
fn cylinder_chord_mm(
    origin: &Point3<f64>,
    direction: &Vector3<f64>,
    on_axis: &Point3<f64>,
    axis: &Vector3<f64>,
    radius: f64,
) -> f64 {
    let oc = origin - on_axis;
    let o = oc - axis * oc.dot(axis);
    let d = direction - axis * direction.dot(axis);
    let (a, b, c) = (d.dot(&d), o.dot(&d), o.dot(&o) - radius * radius);
    let disc = b * b - a * c;
    if disc <= 0.0 || a <= 1e-12 { 0.0 } else { 2.0 * disc.sqrt() / a }
}

/// Adds `mu x path length` of a tube to `attenuation` (max within the tube, so joints of
/// consecutive segments are not counted twice).
fn rasterize_tube(
    tube: &Tube,
    projection: &CArmProjection,
    rows: u32,
    columns: u32,
    scratch: &mut Vec<f64>,
    attenuation: &mut [f64],
) {
    let (w, h) = (columns as usize, rows as usize);
    // The scratch buffer is all zeros between calls: only touched cells are reset below.
    if scratch.len() != w * h {
        scratch.clear();
        scratch.resize(w * h, 0.0);
    }
    let mut touched: Vec<usize> = Vec::new();
    let ps_col = projection.distance_source_to_detector_mm / projection.intrinsics[(0, 0)];
    for i in 0..tube.points.len().saturating_sub(1) {
        let (a3, b3) = (tube.points[i], tube.points[i + 1]);
        let (Some(a), Some(b)) = (projection.project(&a3), projection.project(&b3)) else { continue };
        let depth = 0.5 * (projection.depth_mm(&a3) + projection.depth_mm(&b3));
        // Pixels per mm at the segment's depth.
        let k = projection.distance_source_to_detector_mm / (depth.max(1.0) * ps_col);
        let r_max = tube.radius_mm[i].max(tube.radius_mm[i + 1]);
        let reach = r_max * k + 1.5;
        let (u0, u1) = ((a.x.min(b.x) - reach).floor().max(0.0), (a.x.max(b.x) + reach).ceil().min(w as f64 - 1.0));
        let (v0, v1) = ((a.y.min(b.y) - reach).floor().max(0.0), (a.y.max(b.y) + reach).ceil().min(h as f64 - 1.0));
        if u0 > u1 || v0 > v1 {
            continue;
        }
        let seg3 = b3 - a3;
        let ray = (nalgebra::center(&a3, &b3) - projection.source_in_patient).normalize();
        let sin_theta = if seg3.norm() > 1e-9 { ray.cross(&seg3.normalize()).norm().max(0.15) } else { 1.0 };
        let ab = b - a;
        let len2 = ab.norm_squared();
        for v in v0 as usize..=v1 as usize {
            for u in u0 as usize..=u1 as usize {
                let p = Point2::new(u as f64, v as f64);
                let t = if len2 > 1e-12 { ((p - a).dot(&ab) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let d_mm = (p - (a + ab * t)).norm() / k;
                let r = tube.radius_mm[i] + (tube.radius_mm[i + 1] - tube.radius_mm[i]) * t;
                if d_mm >= r {
                    continue;
                }
                let mu = tube.mu_per_mm[i] + (tube.mu_per_mm[i + 1] - tube.mu_per_mm[i]) * t;
                let value = mu * 2.0 * (r * r - d_mm * d_mm).sqrt() / sin_theta;
                let cell = &mut scratch[v * w + u];
                if *cell == 0.0 {
                    touched.push(v * w + u);
                }
                *cell = cell.max(value);
            }
        }
    }
    for index in touched {
        attenuation[index] += scratch[index];
        scratch[index] = 0.0;
    }
}

/// Contrast concentration along the tree at `t_ms`: a retrograde front from the ostium
/// (5 mm soft edge), then washout.
fn concentration(distance_from_ostium_mm: f64, t_ms: f64, injection: &Injection) -> f64 {
    let front = injection.front_speed_mm_per_s * (t_ms - injection.start_ms).max(0.0) / 1000.0;
    let x = ((front - distance_from_ostium_mm) / 5.0 + 0.5).clamp(0.0, 1.0);
    let filled = x * x * (3.0 - 2.0 * x);
    let washout = if t_ms > injection.washout_start_ms {
        (-(t_ms - injection.washout_start_ms) / injection.washout_tau_ms).exp()
    } else {
        1.0
    };
    // Contrast mixes with venous blood on its way out: distal veins are diluted.
    let dilution = 1.0 - 0.4 * distance_from_ostium_mm / (distance_from_ostium_mm + 80.0);
    filled * washout * dilution
}

/// Distance from the ostium along the tree of every centerline point, mm.
fn distances_from_ostium(patient: &SyntheticPatient) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(patient.tree.branches.len());
    for b in &patient.tree.branches {
        let start = b.takeoff.map_or(0.0, |t| out[t.parent.0 as usize][t.index]);
        out.push(b.arc_lengths_mm().into_iter().map(|s| start + s).collect());
    }
    out
}

/// The confounders and body of the chest, seeded from the patient.
struct Chest {
    static_tubes: Vec<Tube>,
    moving_tubes: Vec<Tube>,
    heart: Body,
    abdomen: [Body; 2],
}

fn polyline(points: &[[f64; 3]]) -> Vec<Point3<f64>> {
    // Densify to about 2 mm per segment so curved objects stay curved after projection.
    let mut out = Vec::new();
    for w in points.windows(2) {
        let (a, b) = (Point3::from(w[0]), Point3::from(w[1]));
        let n = ((b - a).norm() / 2.0).ceil().max(1.0) as usize;
        for k in 0..n {
            out.push(a + (b - a) * (k as f64 / n as f64));
        }
    }
    if let Some(last) = points.last() {
        out.push(Point3::from(*last));
    }
    out
}

impl Chest {
    fn new(patient: &SyntheticPatient) -> Self {
        let mut rng = SimRng::new(patient.seed, 10);
        let lv = &patient.lv;
        let mut static_tubes = Vec::new();
        // Ribs: posterior at the spine, sweeping laterally and anteriorly, sloping down.
        for k in 0..9 {
            let z0 = 150.0 - 32.0 * f64::from(k) + rng.normal(0.0, 3.0);
            for side in [-1.0, 1.0] {
                let pts: Vec<[f64; 3]> = (0..=22)
                    .map(|j| {
                        let a = 0.15 + 2.1 * f64::from(j) / 22.0;
                        [side * 135.0 * a.sin(), 95.0 * a.cos() - 5.0, z0 - 28.0 * a]
                    })
                    .collect();
                static_tubes.push(Tube::uniform(polyline(&pts), 5.5, 0.03));
            }
        }
        // Sternal wires after sternotomy (about a third of CRT candidates).
        if rng.chance(0.3) {
            for k in 0..5 {
                let z = 20.0 + 30.0 * f64::from(k);
                let loop_pts: Vec<[f64; 3]> = (0..=16)
                    .map(|j| f64::from(j) * std::f64::consts::TAU / 16.0)
                    .map(|a| [9.0 * a.cos(), -92.0, z + 4.0 * a.sin()])
                    .collect();
                static_tubes.push(Tube::uniform(polyline(&loop_pts), 0.6, 0.3).device(DeviceKind::SternalWire));
            }
        }
        let ostium = patient.tree.ostium().unwrap_or(lv.base_center_in_patient);
        let apex = lv.apex();
        let mut moving_tubes = Vec::new();
        // Guide catheter from the SVC through the RA into the ostium, and the occlusion balloon.
        let o = ostium.coords;
        let catheter = [
            [o.x, o.y, o.z],
            [o.x - 22.0, o.y - 6.0, o.z + 25.0],
            [o.x - 32.0, o.y - 8.0, o.z + 75.0],
            [o.x - 34.0, o.y - 4.0, o.z + 300.0],
        ];
        moving_tubes.push(Tube::uniform(polyline(&catheter), 1.15, 0.035).device(DeviceKind::GuideCatheter));
        if let Some(cs) = patient.tree.branches.first() {
            let tip = cs.centerline_in_patient.get(7).copied().unwrap_or(ostium);
            moving_tubes.push(
                Tube::uniform(
                    polyline(&[[o.x, o.y, o.z], [tip.x, tip.y, tip.z]]),
                    venogram::atlas::OCCLUSION_BALLOON_RADIUS_MM,
                    0.1,
                )
                .device(DeviceKind::Balloon),
            );
        }
        // Existing RA and RV leads (an upgrade to CRT), from a left pectoral device.
        let svc = [o.x - 30.0, o.y - 12.0, o.z + 60.0];
        let ra_lead = [
            [70.0, -40.0, 260.0],
            [20.0, -10.0, 160.0],
            svc,
            [o.x - 35.0, o.y - 30.0, o.z + 25.0],
            [o.x - 20.0, o.y - 42.0, o.z + 35.0],
        ];
        let rv_apex = apex.coords + Vector3::new(-28.0, -8.0, 4.0);
        let rv_lead = [
            [70.0, -40.0, 262.0],
            [22.0, -12.0, 160.0],
            svc,
            [o.x - 25.0, o.y - 10.0, o.z],
            [rv_apex.x, rv_apex.y, rv_apex.z],
        ];
        moving_tubes.push(Tube::uniform(polyline(&ra_lead), 0.95, 0.18).device(DeviceKind::PacingLead));
        moving_tubes.push(Tube::uniform(polyline(&rv_lead), 0.95, 0.18).device(DeviceKind::PacingLead));
        let middle = lv.base_center_in_patient + lv.long_axis.into_inner() * (0.45 * lv.base_to_apex_mm);
        let heart = Body {
            center: middle + Vector3::new(-18.0, -5.0, 8.0),
            axes: [lv.long_axis.into_inner(), lv.anterior_axis.into_inner(), lv.lateral_axis.into_inner()],
            radii_mm: [0.75 * lv.base_to_apex_mm, 1.9 * lv.radius_mm, 1.9 * lv.radius_mm],
            mu_per_mm: 0.004,
        };
        let dome = apex.z - rng.range(5.0, 20.0);
        let sphere = |x: f64, z: f64| Body {
            center: Point3::new(x, 10.0, z - 160.0),
            axes: [Vector3::x(), Vector3::y(), Vector3::z()],
            radii_mm: [160.0, 160.0, 160.0],
            mu_per_mm: 0.005,
        };
        Self { static_tubes, moving_tubes, heart, abdomen: [sphere(70.0, dome), sphere(-70.0, dome + 18.0)] }
    }
}

/// Renders a cine run of the patient.
pub fn render(patient: &SyntheticPatient, settings: &RenderSettings) -> Result<RenderedRun, RenderError> {
    use rayon::prelude::*;
    if !(8..=16).contains(&settings.bits_stored) || settings.frames == 0 || settings.rows < 16 || settings.columns < 16
    {
        return Err(RenderError::Settings(format!(
            "{} frames of {}x{} at {} bits: need at least one frame, 16x16 pixels and 8-16 bits",
            settings.frames, settings.columns, settings.rows, settings.bits_stored
        )));
    }
    let projection = settings.projection().map_err(|e| RenderError::Settings(e.to_string()))?;
    let chest = Chest::new(patient);
    let distances = distances_from_ostium(patient);
    let rendered: Vec<(Vec<u16>, FrameTruth)> = (0..settings.frames)
        .into_par_iter()
        .map(|k| render_frame(patient, settings, &projection, &chest, &distances, k))
        .collect();
    let mut samples = Vec::with_capacity(rendered.len() * (settings.rows * settings.columns) as usize);
    let mut truth = Vec::with_capacity(rendered.len());
    for (frame, t) in rendered {
        samples.extend_from_slice(&frame);
        truth.push(t);
    }
    let format = PixelFormat {
        bits_allocated: if settings.bits_stored > 8 { 16 } else { 8 },
        bits_stored: settings.bits_stored,
        high_bit: settings.bits_stored - 1,
        photometric_in_file: PhotometricInterpretation::Monochrome2,
    };
    let cine = Cine::new(settings.rows, settings.columns, settings.frames, samples, format)
        .map_err(|e| RenderError::Settings(e.to_string()))?;
    let duration_ms = settings.frame_time_ms(settings.frames);
    let frame_ms = 1000.0 / settings.frame_rate_hz;
    let r_wave_frame_indices = patient
        .motion
        .r_wave_times_ms(duration_ms)
        .iter()
        .map(|t| (t / frame_ms).round() as u32)
        .filter(|f| *f < settings.frames)
        .collect();
    let opacity = |t: &FrameTruth| t.branches.iter().flat_map(|b| b.opacity.iter()).sum::<f64>();
    let peak_frame = truth.iter().enumerate().fold((0u32, f64::MIN), |best, (i, t)| {
        let o = opacity(t);
        if o > best.1 + 1e-9 { (i as u32, o) } else { best }
    });
    Ok(RenderedRun {
        settings: settings.clone(),
        projection,
        cine,
        r_wave_frame_indices,
        truth,
        peak_frame: peak_frame.0,
    })
}

fn render_frame(
    patient: &SyntheticPatient,
    settings: &RenderSettings,
    projection: &CArmProjection,
    chest: &Chest,
    distances: &[Vec<f64>],
    k: u32,
) -> (Vec<u16>, FrameTruth) {
    let (w, h) = (settings.columns as usize, settings.rows as usize);
    let t = settings.frame_time_ms(k);
    let shift = Vector3::new(0.0, 0.0, patient.motion.respiratory_shift_mm(t));
    let mut attenuation = body_attenuation(projection, chest, &shift, w, h);
    let mut scratch = Vec::new();
    let mut devices = Vec::new();
    let ps = settings.pixel_spacing_mm();
    let mut report = |tube: &Tube| {
        if let Some(kind) = tube.device {
            let centerline_px = tube.points.iter().filter_map(|p| projection.project(p)).map(|q| [q.x, q.y]).collect();
            let radius_px = tube
                .points
                .iter()
                .zip(&tube.radius_mm)
                .map(|(p, r)| r * projection.distance_source_to_detector_mm / (projection.depth_mm(p) * ps))
                .fold(0.0, f64::max);
            devices.push(DeviceTruth { kind, centerline_px, radius_px: milli(radius_px) });
        }
    };
    for tube in &chest.static_tubes {
        rasterize_tube(tube, projection, settings.rows, settings.columns, &mut scratch, &mut attenuation);
        report(tube);
    }
    // Devices move with the breath; wires and leads in the veins with the heart as well.
    let moved: Vec<Tube> = chest
        .moving_tubes
        .iter()
        .map(|tube| Tube {
            points: tube.points.iter().map(|p| p + shift).collect(),
            radius_mm: tube.radius_mm.clone(),
            mu_per_mm: tube.mu_per_mm.clone(),
            device: tube.device,
        })
        .chain(instrument_tubes(patient, settings, t))
        .collect();
    for tube in &moved {
        rasterize_tube(tube, projection, settings.rows, settings.columns, &mut scratch, &mut attenuation);
        report(tube);
    }
    // Veins, moved with the heart, filled with contrast.
    let mut branches = Vec::with_capacity(patient.tree.branches.len());
    let mut bifurcations_px = Vec::new();
    for (b, dist) in patient.tree.branches.iter().zip(distances) {
        let points: Vec<Point3<f64>> =
            b.centerline_in_patient.iter().map(|p| patient.motion.displace(&patient.lv, p, t)).collect();
        let opacity: Vec<f64> = dist.iter().map(|d| concentration(*d, t, &settings.injection)).collect();
        let mu: Vec<f64> = opacity.iter().map(|c| c * settings.injection.contrast_mu_per_mm).collect();
        let centerline_px: Vec<[f64; 2]> =
            points.iter().map(|p| projection.project(p).map_or([f64::NAN, f64::NAN], |q| [q.x, q.y])).collect();
        let radius_px: Vec<f64> = points
            .iter()
            .zip(&b.radius_mm)
            .map(|(p, r)| r * projection.distance_source_to_detector_mm / (projection.depth_mm(p) * ps))
            .collect();
        if b.takeoff.is_some() {
            bifurcations_px.push(centerline_px[0]);
        }
        rasterize_tube(
            &Tube { points, radius_mm: b.radius_mm.clone(), mu_per_mm: mu, device: None },
            projection,
            settings.rows,
            settings.columns,
            &mut scratch,
            &mut attenuation,
        );
        branches.push(BranchTruth {
            id: b.id.0,
            label: b.label,
            takeoff: b.takeoff,
            centerline_px,
            radius_px,
            opacity,
        });
    }
    // Beer-Lambert, detector blur, quantum noise, log mapping to samples.
    let i0 = settings.photons_per_pixel * 4.7f64.exp();
    let intensity: Vec<f64> = attenuation.iter().map(|a| i0 * (-a).exp()).collect();
    let sigma = settings.blur_sigma_px_at_512 * f64::from(settings.columns) / 512.0;
    let mut blurred = gaussian_blur(&intensity, w, h, sigma);
    // Scatter: a smooth veil of about a quarter of the primary signal, lowering contrast.
    let scatter = SCATTER_TO_PRIMARY * blurred.iter().sum::<f64>() / blurred.len() as f64;
    for i in &mut blurred {
        *i += scatter;
    }
    let mut rng = SimRng::new(settings.noise_seed ^ patient.seed.rotate_left(17), 1000 + u64::from(k));
    let max = f64::from(((1u32 << settings.bits_stored) - 1) as u16);
    let (a_lo, a_hi) = (2.8, 9.5);
    let samples = blurred
        .iter()
        .map(|&i| {
            let noisy = (i + i.sqrt() * rng.normal(0.0, 1.0)).max(1.0);
            let a = (i0 / noisy).ln();
            (((a_hi - a) / (a_hi - a_lo)).clamp(0.0, 1.0) * max).round() as u16
        })
        .collect();
    (samples, FrameTruth { frame: k, time_ms: t, branches, bifurcations_px, devices })
}

/// Attenuation of the bodies (spine, heart, abdomen) along every pixel's ray, the heart and
/// abdomen shifted with the breath.
fn body_attenuation(projection: &CArmProjection, chest: &Chest, shift: &Vector3<f64>, w: usize, h: usize) -> Vec<f64> {
    let mut attenuation = vec![0.0f64; w * h];
    // Bodies, per ray.
    let spine_axis = Vector3::z();
    let spine_point = Point3::new(0.0, 72.0, 0.0);
    for (index, a) in attenuation.iter_mut().enumerate() {
        let pixel = Point2::new((index % w) as f64, (index / w) as f64);
        let (origin, dir) = projection.ray_through_pixel(&pixel);
        let moved = origin - shift;
        *a = 4.2
            + 0.035 * cylinder_chord_mm(&origin, &dir, &spine_point, &spine_axis, 24.0)
            + chest.heart.mu_per_mm * chest.heart.chord_mm(&moved, &dir)
            + chest.abdomen.iter().map(|b| b.mu_per_mm * b.chord_mm(&moved, &dir)).sum::<f64>();
    }
    attenuation
}

/// The wires and leads of the settings as tubes at time `t_ms`, moved with the heart.
fn instrument_tubes<'a>(
    patient: &'a SyntheticPatient,
    settings: &'a RenderSettings,
    t_ms: f64,
) -> impl Iterator<Item = Tube> + 'a {
    settings.instruments.iter().map(move |instrument| {
        let points: Vec<Point3<f64>> =
            instrument.points_in_patient.iter().map(|p| patient.motion.displace(&patient.lv, p, t_ms)).collect();
        Tube::uniform(points, instrument.radius_mm, instrument.mu_per_mm).device(instrument.kind)
    })
}

/// Scatter-to-primary ratio of the chest at cardiac angulations (a uniform veil).
const SCATTER_TO_PRIMARY: f64 = 0.25;

/// Separable Gaussian blur with edge clamping.
fn gaussian_blur(image: &[f64], w: usize, h: usize, sigma: f64) -> Vec<f64> {
    if sigma < 0.05 {
        return image.to_vec();
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-radius..=radius).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp()).collect();
    let norm: f64 = kernel.iter().sum();
    let kernel: Vec<f64> = kernel.iter().map(|k| k / norm).collect();
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(j, k)| k * image[y * w + clamp(x as isize + j as isize - radius, w)])
                .sum();
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(j, k)| k * tmp[clamp(y as isize + j as isize - radius, h) * w + x])
                .sum();
        }
    }
    out
}
