//! Rendering speed of synthetic venograms: a 24-frame 512x512 run and a 1024x1024 run,
//! printed as a table of time per frame (target: under 50 ms per 512x512 frame in release on
//! 2 cores). Run by hand: `cargo bench -p simulator --bench render`.

#![allow(clippy::print_stdout, clippy::unwrap_used, reason = "a bench binary reports on stdout")]

use std::time::Instant;

use simulator::SyntheticPatient;
use simulator::render::{RenderSettings, render};

fn main() {
    let patient = SyntheticPatient::generate(7);
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!("\nSynthetic venogram rendering, best of 3, {threads} threads\n");
    println!("| case | frames | total ms | ms/frame |");
    println!("|---|---:|---:|---:|");
    for (size, frames) in [(512u32, 24u32), (1024, 24)] {
        let settings = RenderSettings::typical("LAO30".parse().unwrap(), size, 12, frames);
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let started = Instant::now();
            let run = render(&patient, &settings).unwrap();
            assert_eq!(run.cine.frame_count(), frames);
            best = best.min(started.elapsed().as_secs_f64() * 1000.0);
        }
        println!("| LAO30 {size}x{size} 12-bit | {frames} | {best:.0} | {:.1} |", best / f64::from(frames));
    }
}
