//! `csnav`: the guidance workstation for CRT left-ventricular lead implantation.
//! This binary parses the command line, sets up logging and wires the domain crates; it owns
//! no domain logic. Research software, not a cleared medical device.

mod app;
mod bench_frames;
mod case_runs;
mod cli;
mod device;
mod export;
mod inbox;
mod info;
mod listen;
mod live;
mod modes;
mod nav_case;
mod pacs;
mod procedure;
mod reconstruct;
mod replay;
mod replay_app;
mod review;
mod segment;
mod send_tips;
mod session_record;
mod sim_session;
mod simulate;
mod test_pattern;
mod track;
mod train;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    // Frame-sized buffers are reused from frame to frame rather than faulted in again.
    if !venogram::segment::memory::retain_freed_buffers() {
        tracing::debug!("allocator tuning unavailable; frame buffers are returned to the kernel");
    }
    let result = match cli.command {
        cli::Command::Demo(args) => modes::run_demo(&args, false),
        cli::Command::Sim(args) => modes::run_demo(&args, true),
        cli::Command::Train(args) => train::run(&args),
        cli::Command::Scenarios(args) => train::scenarios(&args),
        cli::Command::Info(args) => info::run(&args),
        cli::Command::TestPattern(args) => test_pattern::run(&args),
        cli::Command::Simulate(args) => simulate::run(&args),
        cli::Command::Segment(args) => segment::run(&args),
        cli::Command::Track(args) => track::run(&args),
        cli::Command::SendTips(args) => send_tips::run(&args),
        cli::Command::DeviceModel(args) => device::run_model(&args),
        cli::Command::Device(args) => device::run_test(&args),
        cli::Command::DeviceRank(args) => device::run_rank(&args),
        cli::Command::SimSession(args) => sim_session::run(&args),
        cli::Command::Live(args) => live::run(&args),
        cli::Command::Review(args) => review::run(&args),
        cli::Command::Reconstruct(args) => reconstruct::run(&args),
        cli::Command::Listen(args) => listen::run(&args),
        cli::Command::Pacs(args) => pacs::run(&args),
        cli::Command::Export(args) => export::run(&args),
        cli::Command::BenchFrames(args) => bench_frames::run(&args),
        cli::Command::Replay(args) => {
            if args.headless {
                replay_app::run(&args, true)
            } else if args.screenshot {
                replay_app::run(&args, false)
            } else if args.text || args.json || args.step {
                replay::run(&args)
            } else if app::display_available() {
                replay_app::run(&args, false)
            } else {
                eprintln!("no display (DISPLAY is not set): replaying as text (--headless renders the app offscreen)");
                replay::run(&args)
            }
        }
        cli::Command::RecordInfo(args) => replay::info(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("csnav: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level chosen by `-v`.
fn init_logging(verbosity: u8) {
    let default = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
