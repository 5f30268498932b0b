//! The bundled scenario library: every scenario loads, validates and is solvable (the best
//! site is reached along the tree by a scripted trainee playing the real steering model);
//! the optimal trainee scores near the maximum; parking at the apex or in scar scores low,
//! with the reasons listed; each scenario teaches what it says.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;

use training::session::TrainingSession;
use training::trainee::{Goal, drive};
use training::{Scenario, ScenarioError};
use venogram::VeinLabel;

fn library() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn session(name: &str) -> TrainingSession {
    let path = library().into_iter().find(|p| p.file_stem().unwrap().to_string_lossy() == name).unwrap();
    TrainingSession::new(Scenario::read(&path).unwrap()).unwrap()
}

#[test]
fn every_bundled_scenario_loads_is_solvable_and_the_optimal_trainee_scores_near_the_maximum() {
    let files = library();
    assert!(files.len() >= 8, "the library has {} scenarios", files.len());
    for file in files {
        let scenario = Scenario::read(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scenario.id(), file.file_stem().unwrap().to_string_lossy(), "id is the file stem");
        let mut s = TrainingSession::new(scenario).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let best = s.best_site().eval.clone();
        let goal = Goal::best(&s);
        let script = drive(&mut s, goal);
        let outcome = s.outcome().unwrap().clone();
        let site = outcome.site.clone().unwrap_or_else(|| panic!("{}: no site; log {:#?}", file.display(), s.log()));
        eprintln!(
            "{}: best {} value {:.3} ({}); trainee at {} value {:?}, score {:.1}, {} steps, fluoro {:.0} s",
            file.display(),
            best.name(),
            best.value.unwrap(),
            best.reasons.join("; "),
            site.name(),
            site.value,
            outcome.score.total,
            script.len(),
            outcome.conduct.exposure.fluoro_s
        );
        // Solvable: the trainee reached the best site along the tree and left the lead there.
        assert_eq!((site.branch, site.vein), (best.branch, best.vein), "{}", file.display());
        assert!((site.fraction - best.fraction).abs() < 0.06, "{}: {} vs {}", file.display(), site.name(), best.name());
        assert!(site.eligible, "{}", file.display());
        assert!(outcome.score.total >= 95.0, "{}: {:#?}", file.display(), outcome.score);
        assert_eq!(outcome.conduct.dislodgements + outcome.conduct.vein_traumas, 0, "{}", file.display());
    }
}

#[test]
fn parking_at_the_apex_scores_low_with_the_reason() {
    let mut s = session("06-apical-trap");
    let best = s.best_site().eval.clone();
    assert!(!best.apical, "{best:?}");
    let goal = Goal::apex(&s).expect("an apical site the lead holds at");
    drive(&mut s, goal);
    let outcome = s.outcome().unwrap();
    let site = outcome.site.as_ref().unwrap();
    assert!(site.apical, "{site:?}");
    assert!(outcome.score.total < 75.0, "{:#?}", outcome.score);
    let site_part = &outcome.score.parts[0];
    assert!(site_part.points < 0.5 * site_part.max_points, "{site_part:?}");
    assert!(
        outcome.score.site_reasons.iter().any(|r| r.starts_with("apical position")),
        "{:?}",
        outcome.score.site_reasons
    );
}

#[test]
fn parking_in_scar_scores_low_with_the_reason() {
    let mut s = session("04-scar-lateral");
    let best = s.best_site().eval.clone();
    assert!(best.scar < 0.2, "the best site avoids the scar: {best:?}");
    let goal = Goal::scar(&s).expect("a scarred site the lead holds at");
    drive(&mut s, goal);
    let outcome = s.outcome().unwrap();
    let site = outcome.site.as_ref().unwrap();
    assert!(site.scar > 0.3, "{site:?}");
    assert!(outcome.score.total < 70.0, "{:#?}", outcome.score);
    assert!(
        outcome.score.site_reasons.iter().any(|r| r.starts_with("scar under the lead")),
        "{:?}",
        outcome.score.site_reasons
    );
}

#[test]
fn the_scenarios_teach_what_they_say() {
    // A thin lead is needed for the small vein, and the loaded one cannot get in.
    let s = session("07-small-calibre");
    let best = &s.best_site().eval;
    assert!(best.lead.starts_with("Quartet") && best.vein == VeinLabel::PosterolateralVein, "{best:?}");
    assert!(
        !s.candidates()
            .iter()
            .any(|c| c.usable() && c.eval.lead.starts_with("Attain") && c.eval.vein == VeinLabel::PosterolateralVein)
    );
    // The tortuous takeoff is the way to the best site.
    let s = session("03-tortuous-posterolateral");
    assert_eq!(s.best_site().eval.vein, VeinLabel::PosterolateralVein);
    // Where the nerve crosses the latest-activated vein, the distal electrode to the RV coil
    // stimulates it within the margin; the best site needs another vector or place.
    let s = session("05-pns-at-best-site");
    let lead = device_link::lead::LeadModel::AttainPerforma;
    let electrodes =
        device_link::heart::electrodes_in_vein(s.patient(), VeinLabel::LateralMarginalVein, 0.35, lead).unwrap();
    let site = device_link::heart::LeadSite::new(
        s.patient(),
        lead,
        electrodes,
        device_link::heart::HeartModelParams::default(),
    );
    let extended = device_link::lead::Vector { cathode: 0, anode: device_link::lead::Pole::RvCoil };
    let (capture, pns) = (site.capture_threshold_volts(extended, 0.5), site.phrenic_threshold_volts(extended, 0.5));
    assert!(pns < 2.0 * capture, "LV1-RV coil: PNS {pns:.1} V, capture {capture:.1} V");
    let best_vector = s.best_site().eval.vector.clone().unwrap();
    assert!(!best_vector.contains("RV coil"), "{best_vector}");
}

#[test]
fn a_bad_scenario_file_names_the_field_and_the_line() {
    let good = std::fs::read_to_string(&library()[0]).unwrap();
    let bad = good.replace("latest_activation_fraction = 0.86", "latest_activation_fraction = 1.4");
    let e: ScenarioError = Scenario::parse(&bad, "bad.toml").unwrap_err();
    let line = bad.lines().position(|l| l.starts_with("latest_activation_fraction")).unwrap() + 1;
    assert_eq!((e.field.as_str(), e.line), ("physiology.latest_activation_fraction", line), "{e}");
    assert!(e.to_string().contains("1.4 is outside 0.5-0.98"), "{e}");
}
