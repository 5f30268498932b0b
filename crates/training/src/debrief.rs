//! The debrief: one self-contained HTML page (inline SVG plots, no scripts, no downloads)
//! for the trainee and the instructor. It gives the score and where points were lost, the
//! trainee's site beside the best available site with the reasons, and four plots: the tree
//! in the LAO view with every evaluated position coloured by its value (the trainee's site,
//! the best site, the phrenic nerve and the scar marked), the score parts, the site value
//! along the two veins, and the timeline of fluoroscopy, injections, tests and incidents.

use std::fmt::Write as _;

use nalgebra::Point3;
use simulator::render::RenderSettings;
use simulator::view::ViewAngles;
use venogram::VeinLabel;

use crate::session::{Level, Outcome, TrainingSession};
use crate::site::{Analysis, SiteEval};

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn rgb(c: [u8; 3]) -> String {
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

/// Red (worst) to green (best) for a fraction 0..1.
fn value_colour(f: f64) -> String {
    let f = f.clamp(0.0, 1.0);
    let r = (220.0 * (1.0 - f) + 30.0 * f) as u8;
    let g = (50.0 * (1.0 - f) + 170.0 * f) as u8;
    rgb([r, g, 60])
}

/// The page for a finished session.
#[must_use]
pub fn html(session: &TrainingSession, outcome: &Outcome) -> String {
    let scenario = &session.scenario().source;
    let score = &outcome.score;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>csnav debrief: {}</title>\n<style>{}</style></head><body>\n",
        esc(&scenario.title),
        STYLE
    );
    let _ = write!(
        h,
        "<p class=\"notice\">csnav is research software, not a cleared medical device. This is a simulator training debrief on a synthetic patient.</p>\n<h1>Debrief: {}</h1>\n<p>Scenario <code>{}</code> ({:?}), synthetic patient seed {}. {}</p>\n",
        esc(&scenario.title),
        esc(&scenario.id),
        scenario.difficulty,
        scenario.patient.seed,
        esc(scenario.summary.trim())
    );
    let _ = writeln!(
        h,
        "<div class=\"total\" id=\"total\">{:.0} <small>of {:.0} points</small></div>",
        score.total, score.max_points
    );
    h.push_str("<h2>Score</h2>\n<table id=\"parts\"><tr><th>part</th><th>points</th><th>of</th><th>detail</th></tr>\n");
    for p in &score.parts {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.0}</td><td>{}</td></tr>",
            esc(&p.name),
            p.points,
            p.max_points,
            esc(&p.detail)
        );
    }
    h.push_str("</table>\n");
    h.push_str(&bars_svg(outcome));

    h.push_str("<h2>Your site and the best site</h2>\n");
    h.push_str(&comparison_table(outcome.site.as_ref(), &outcome.best, session.analysis()));
    h.push_str("<h3 id=\"why\">Why</h3>\n<ul id=\"reasons\">\n");
    if score.site_reasons.is_empty() {
        h.push_str("<li>Your site is as good as the best one this patient offers.</li>\n");
    }
    for r in &score.site_reasons {
        let _ = writeln!(h, "<li>{}</li>", esc(r));
    }
    h.push_str("</ul>\n");
    let _ =
        writeln!(h, "<p>The best site: {}. {}</p>", esc(&outcome.best.name()), esc(&outcome.best.reasons.join("; ")));

    h.push_str("<h2>Where the good sites were</h2>\n");
    h.push_str(&map_svg(session, outcome));
    h.push_str("<h2>Site value along the veins</h2>\n");
    h.push_str(&along_svg(session, outcome));
    h.push_str("<h2>Timeline</h2>\n");
    h.push_str(&timeline_svg(session));

    h.push_str("<h2>Learning goals</h2>\n<ul>\n");
    for g in &scenario.goals.learning {
        let _ = writeln!(h, "<li>{}</li>", esc(g));
    }
    h.push_str("</ul>\n<h2>Log</h2>\n<table id=\"log\"><tr><th>t (s)</th><th></th><th>event</th></tr>\n");
    for f in session.log() {
        let class = match f.level {
            Level::Info => "info",
            Level::Warning => "warn",
            Level::Error => "error",
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td class=\"num\">{:.1}</td><td>{class}</td><td>{}</td></tr>",
            f.t_s,
            esc(&f.text)
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}\
.notice{background:#fff3cd;border:1px solid #e0c36c;padding:.5em}\
.total{font-size:3em;font-weight:bold}.total small{font-size:.4em;font-weight:normal}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
.num{text-align:right}.warn{background:#fff8e0}.error{background:#fde2e2}svg{background:#fafafa;border:1px solid #ddd}";

/// A row of the comparison: its name and how to show a site in it.
type Row = (&'static str, Box<dyn Fn(&SiteEval) -> String>);

fn comparison_table(site: Option<&SiteEval>, best: &SiteEval, analysis: &Analysis) -> String {
    let (pulse_width_ms, pns_screen_volts) = (analysis.pulse_width_ms, analysis.pns_screen_volts);
    let cell = |s: Option<&SiteEval>, f: &dyn Fn(&SiteEval) -> String| s.map_or("-".to_owned(), f);
    let rows: Vec<Row> = vec![
        ("position", Box::new(|s: &SiteEval| s.name())),
        ("segment", Box::new(|s: &SiteEval| format!("{:?} {:?}", s.long_axis, s.wall).to_lowercase())),
        ("best vector", Box::new(|s: &SiteEval| s.vector.clone().unwrap_or_else(|| "-".into()))),
        (
            "QLV",
            Box::new(|s: &SiteEval| {
                s.qlv_ms.map_or("-".into(), |q| format!("{q:.0} ms ({:.2} QRS)", s.qlv_ratio().unwrap_or(0.0)))
            }),
        ),
        (
            "capture threshold",
            Box::new(move |s: &SiteEval| {
                s.threshold_volts.map_or("none".into(), |t| format!("{t:.2} V at {pulse_width_ms:.1} ms"))
            }),
        ),
        (
            "phrenic stimulation",
            Box::new(move |s: &SiteEval| match (s.pns_volts, s.pns_margin()) {
                (Some(p), Some(m)) => format!("{p:.1} V ({m:.1}x threshold)"),
                _ => format!("none at {pns_screen_volts:.0} V"),
            }),
        ),
        ("impedance", Box::new(|s: &SiteEval| s.impedance_ohm.map_or("-".into(), |z| format!("{z:.0} ohm")))),
        ("scar under the lead", Box::new(|s: &SiteEval| format!("{:.2}", s.scar))),
        ("apical", Box::new(|s: &SiteEval| if s.apical { "yes".into() } else { "no".into() })),
        ("acceptable", Box::new(|s: &SiteEval| if s.eligible { "yes".into() } else { "no".into() })),
        ("value", Box::new(|s: &SiteEval| s.value.map_or("-".into(), |v| format!("{v:.2}")))),
    ];
    let mut h = String::from("<table id=\"comparison\"><tr><th></th><th>your site</th><th>best site</th></tr>\n");
    for (name, f) in &rows {
        let _ = writeln!(
            h,
            "<tr><td>{name}</td><td>{}</td><td>{}</td></tr>",
            esc(&cell(site, f.as_ref())),
            esc(&cell(Some(best), f.as_ref()))
        );
    }
    h.push_str("</table>\n");
    h
}

fn bars_svg(outcome: &Outcome) -> String {
    let parts = &outcome.score.parts;
    let (w, row) = (560.0, 26.0);
    let mut h = format!(
        "<svg id=\"plot-score\" width=\"{w}\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\n",
        row * parts.len() as f64 + 10.0
    );
    for (k, p) in parts.iter().enumerate() {
        let y = 5.0 + row * k as f64;
        let full = 380.0 * p.max_points / 70.0;
        let got = full * (p.points / p.max_points.max(1e-9));
        let _ = writeln!(
            h,
            "<text x=\"5\" y=\"{}\" font-size=\"13\">{}</text><rect x=\"110\" y=\"{y}\" width=\"{full:.1}\" height=\"18\" fill=\"#ddd\"/><rect x=\"110\" y=\"{y}\" width=\"{got:.1}\" height=\"18\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{:.1} / {:.0}</text>",
            y + 14.0,
            esc(&p.name),
            value_colour(p.points / p.max_points.max(1e-9)),
            115.0 + full,
            y + 14.0,
            p.points,
            p.max_points
        );
    }
    h.push_str("</svg>\n");
    h
}

fn map_svg(session: &TrainingSession, outcome: &Outcome) -> String {
    let patient = session.patient();
    let view = ViewAngles { primary_deg: 35.0, secondary_deg: 0.0 };
    let Ok(projection) = RenderSettings::typical(view, 512, 12, 1).projection() else {
        return "<p>(no projection)</p>".into();
    };
    let project = |p: &Point3<f64>| projection.project(p).map(|q| (q.x, q.y));
    let all: Vec<(f64, f64)> =
        patient.tree.branches.iter().flat_map(|b| b.centerline_in_patient.iter().filter_map(project)).collect();
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in &all {
        x0 = x0.min(*x);
        y0 = y0.min(*y);
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    let pad = 20.0;
    let (x0, y0) = (x0 - pad, y0 - pad);
    let (w, hgt) = ((x1 + pad - x0).max(50.0), (y1 + pad - y0).max(50.0));
    let scale = 560.0 / w.max(hgt);
    let to = |(x, y): (f64, f64)| ((x - x0) * scale, (y - y0) * scale);
    let mut h = format!(
        "<svg id=\"plot-map\" width=\"{:.0}\" height=\"{:.0}\" xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"5\" y=\"14\" font-size=\"12\">LAO 35: every position a lead can be left at, coloured by its value (grey: not acceptable)</text>\n",
        w * scale,
        hgt * scale + 20.0
    );
    // Scar patches and the phrenic nerve.
    for scar in &patient.physiology.scars {
        if let Some(c) = project(&patient.lv.point(scar.center, 0.0)) {
            let (cx, cy) = to(c);
            let r = scar.radius_mm * projection.distance_source_to_detector_mm / 780.0 / (250.0 / 512.0) * scale;
            let _ = writeln!(
                h,
                "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r:.1}\" fill=\"rgba(200,0,0,{:.2})\"><title>scar</title></circle>",
                0.08 + 0.15 * scar.transmurality
            );
        }
    }
    // SVG `points` of a polyline in patient space.
    let svg_points = |points: &[Point3<f64>]| -> String {
        points
            .iter()
            .filter_map(project)
            .map(|p| {
                let (x, y) = to(p);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        h,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#c0a000\" stroke-width=\"2\" stroke-dasharray=\"6,4\"><title>phrenic nerve</title></polyline>",
        svg_points(&patient.physiology.phrenic_nerve.path_in_patient)
    );
    for b in &patient.tree.branches {
        let pts = svg_points(&b.centerline_in_patient);
        let width = (2.0 * b.radius_mm.first().copied().unwrap_or(1.0) * scale * 1.4).clamp(1.0, 12.0);
        let _ = writeln!(
            h,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-opacity=\"0.5\" stroke-width=\"{width:.1}\"><title>{}</title></polyline>",
            pts,
            rgb(b.label.rgb()),
            b.label.abbreviation()
        );
    }
    let best_value = outcome.best.value.unwrap_or(1.0);
    let floor = session.score_config().value_floor;
    let first_lead = session.scenario().leads[0];
    for c in session.candidates().iter().filter(|c| c.lead == first_lead || c.eval.lead == outcome.best.lead) {
        let Some(p) = project(&Point3::from(c.eval.tip_in_patient_mm)) else { continue };
        let (x, y) = to(p);
        let fill = match (c.usable(), c.eval.value.filter(|_| c.eval.eligible)) {
            (true, Some(v)) => value_colour((v - floor) / (best_value - floor).max(1e-9)),
            _ => "#bbb".into(),
        };
        let _ = writeln!(h, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{fill}\"/>");
    }
    let mark = |h: &mut String, s: &SiteEval, colour: &str, label: &str, id: &str| {
        if let Some(p) = project(&Point3::from(s.tip_in_patient_mm)) {
            let (x, y) = to(p);
            let _ = writeln!(
                h,
                "<circle id=\"{id}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"9\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" fill=\"{colour}\">{label}</text>",
                x + 11.0,
                y + 4.0
            );
        }
    };
    mark(&mut h, &outcome.best, "#108040", "best", "mark-best");
    if let Some(site) = &outcome.site {
        mark(&mut h, site, "#d020d0", "you", "mark-you");
    }
    h.push_str("</svg>\n");
    h
}

fn along_svg(session: &TrainingSession, outcome: &Outcome) -> String {
    let (w, hgt, left, bottom) = (560.0, 220.0, 40.0, 30.0);
    let mut h = format!(
        "<svg id=\"plot-along\" width=\"{w}\" height=\"{hgt}\" xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"{left}\" y=\"14\" font-size=\"12\">site value against the fraction along the vein (dots: acceptable; crosses: fails a gate, or the lead cannot reach or hold there)</text>\n"
    );
    let mut veins: Vec<(u32, String, &str)> = vec![(outcome.best.branch, outcome.best.lead.clone(), "#108040")];
    if let Some(s) = &outcome.site
        && (s.branch, &s.lead) != (outcome.best.branch, &outcome.best.lead)
    {
        veins.push((s.branch, s.lead.clone(), "#d020d0"));
    }
    let values: Vec<f64> = session.candidates().iter().filter_map(|c| c.eval.value).collect();
    let (vmin, vmax) = values.iter().fold((0.0f64, 1.0f64), |(a, b), v| (a.min(*v), b.max(*v)));
    let x = |f: f64| left + f * (w - left - 10.0);
    let y = |v: f64| hgt - bottom - (v - vmin) / (vmax - vmin).max(1e-9) * (hgt - bottom - 24.0);
    let _ = writeln!(
        h,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#888\"/><text x=\"{left}\" y=\"{2}\" font-size=\"11\">takeoff</text><text x=\"{3}\" y=\"{2}\" font-size=\"11\">distal end</text><text x=\"2\" y=\"{4:.0}\" font-size=\"11\">{vmax:.1}</text><text x=\"2\" y=\"{5:.0}\" font-size=\"11\">{vmin:.1}</text>",
        hgt - bottom,
        w - 10.0,
        hgt - 10.0,
        w - 70.0,
        y(vmax) + 4.0,
        y(vmin)
    );
    for (k, (branch, lead, colour)) in veins.iter().enumerate() {
        let label = session
            .patient()
            .tree
            .get(simulator::venous_tree::BranchId(*branch))
            .map_or(VeinLabel::Branch, |b| b.label);
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"{colour}\">{} ({})</text>",
            w - 230.0,
            30.0 + 14.0 * k as f64,
            label.abbreviation(),
            esc(lead)
        );
        for c in session.candidates().iter().filter(|c| c.eval.branch == *branch && &c.eval.lead == lead) {
            let v = c.eval.value.unwrap_or(vmin);
            let (px, py) = (x(c.eval.fraction), y(v));
            if c.eval.eligible && c.usable() {
                let _ = writeln!(h, "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\" fill=\"{colour}\"/>");
            } else {
                let _ = writeln!(
                    h,
                    "<path d=\"M{:.1},{:.1}l6,6m0,-6l-6,6\" stroke=\"{colour}\" stroke-opacity=\"0.6\"/>",
                    px - 3.0,
                    py - 3.0
                );
            }
        }
    }
    for (s, colour) in [(Some(&outcome.best), "#108040"), (outcome.site.as_ref(), "#d020d0")] {
        if let Some(s) = s {
            let px = x(s.fraction);
            let _ = writeln!(
                h,
                "<line x1=\"{px:.1}\" y1=\"20\" x2=\"{px:.1}\" y2=\"{}\" stroke=\"{colour}\" stroke-dasharray=\"3,3\"/>",
                hgt - bottom
            );
        }
    }
    h.push_str("</svg>\n");
    h
}

fn timeline_svg(session: &TrainingSession) -> String {
    let end = session.now_s().max(1.0);
    let (w, left) = (560.0, 80.0);
    let x = |t: f64| left + t / end * (w - left - 10.0);
    let mut h = format!(
        "<svg id=\"plot-timeline\" width=\"{w}\" height=\"120\" xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"5\" y=\"25\" font-size=\"12\">fluoroscopy</text><text x=\"5\" y=\"55\" font-size=\"12\">contrast</text><text x=\"5\" y=\"85\" font-size=\"12\">tests, events</text><text x=\"{left}\" y=\"112\" font-size=\"11\">0 s</text><text x=\"{:.0}\" y=\"112\" font-size=\"11\">{end:.0} s</text>\n",
        w - 50.0
    );
    for (a, b) in session.fluoro_intervals() {
        let _ = writeln!(
            h,
            "<rect x=\"{:.1}\" y=\"12\" width=\"{:.1}\" height=\"18\" fill=\"#4070c0\"/>",
            x(*a),
            (x(*b) - x(*a)).max(1.0)
        );
    }
    for t in session.injections() {
        let _ = writeln!(
            h,
            "<line x1=\"{0:.1}\" y1=\"40\" x2=\"{0:.1}\" y2=\"62\" stroke=\"#202020\" stroke-width=\"2\"/>",
            x(*t)
        );
    }
    for test in session.tests() {
        let colour = if test.site.eligible { "#108040" } else { "#c03030" };
        let _ = writeln!(
            h,
            "<circle cx=\"{:.1}\" cy=\"80\" r=\"5\" fill=\"{colour}\"><title>{}</title></circle>",
            x(test.t_s),
            esc(&test.site.name())
        );
    }
    for f in session.log().iter().filter(|f| f.level == Level::Error) {
        let _ = writeln!(
            h,
            "<path d=\"M{:.1},75l8,8m0,-8l-8,8\" stroke=\"#c03030\" stroke-width=\"2\"><title>{}</title></path>",
            x(f.t_s) - 4.0,
            esc(&f.text)
        );
    }
    h.push_str("</svg>\n");
    h
}
