//! The app's modes as commands: `csnav demo` and `csnav sim` start the scripted procedure
//! as the app's source on its own thread, then run the app (windowed, or offscreen with
//! screenshots) on the main thread.

use std::process::ExitCode;

use anyhow::Context as _;
use recording::SessionMode;

use crate::app::{self, AppOptions, Mode};
use crate::cli::DemoArgs;
use crate::procedure::{self, ProcedureConfig};
use crate::session_record::{self, RecordArgs};

/// Runs `csnav demo` (`interactive` false) or `csnav sim` (true).
pub fn run_demo(args: &DemoArgs, interactive: bool) -> anyhow::Result<ExitCode> {
    if args.speed_mm_s <= 0.0 || args.speed_mm_s > 200.0 || !(0.0..=5.0).contains(&args.noise_mm) {
        anyhow::bail!("--speed-mm-s must be in (0, 200] and --noise-mm in [0, 5]");
    }
    let headless = args.headless || !app::display_available();
    if headless && !args.headless {
        eprintln!("no display (DISPLAY is not set): rendering offscreen into {}", args.out.display());
    }
    let mode = if interactive { Mode::Simulator } else { Mode::Demo };
    let command = if interactive { "sim" } else { "demo" };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    // The demo's recording goes with its screenshots unless asked otherwise.
    let record = RecordArgs {
        record: args.record.record.clone().or_else(|| (!interactive).then(|| args.out.join("session.rrd"))),
        ..args.record.clone()
    };
    let config = ProcedureConfig {
        case: args.case.clone(),
        speed_mm_s: args.speed_mm_s,
        noise_mm: args.noise_mm,
        seed: args.seed,
        device_tests: !args.no_device,
        interactive,
    };
    let settings = serde_json::json!({
        "speed_mm_s": args.speed_mm_s, "noise_mm": args.noise_mm, "seed": args.seed,
        "device_tests": !args.no_device, "headless": headless,
    });
    let recorder = session_record::open(&record, command, &args.case, SessionMode::Simulator, settings)?;
    let rec = recorder.as_ref().map(recording::Recorder::sender);
    eprintln!(
        "csnav {command} on {} (synthetic patient; research software, not a medical device)",
        args.case.display()
    );

    let options = AppOptions {
        mode,
        case_name: app::shown_name(&args.case),
        offscreen: headless,
        screenshots: (headless || args.screenshot).then(|| args.out.clone()),
        size_px: args.size,
        bench: None,
    };
    let outcome = app::run_with_source(options, "procedure", move |feed, commands| {
        procedure::run(&config, feed.clone(), commands, rec)
    });
    // What was recorded stays recorded, whatever happened to the procedure.
    session_record::finish(recorder)?;
    let (exit, summary) = outcome?;
    println!("{} tip samples, {} runs, sites tested: {}", summary.tip_samples, summary.runs, summary.sites.join(", "));
    for r in &summary.ranking {
        println!("{}. {}: {}", r.rank, r.site, crate::replay::describe_rank(r));
    }
    Ok(app::exit_code(&exit))
}
