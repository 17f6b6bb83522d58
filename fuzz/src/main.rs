//! The fuzz runner: `fuzz TARGET|all|list [--inputs N] [--seed S] [--start I]
//! [--max-seconds T] [--hex INPUT]`.
//!
//! Runs inputs `I .. I+N` of seed `S` through each named target, with a counting
//! allocator installed, and prints per target the inputs, inputs per second, panics,
//! oracle violations and inputs over the allocation limit, with the hex of the first
//! failing inputs and the command that replays each. Exits 1 if anything failed.

use fuzz::runner::{self, Kind, Options, Report};
use std::process::ExitCode;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Counting = fuzz::alloc::Counting;

const USAGE: &str = "usage: fuzz TARGET|all|list [--inputs N] [--seed S] [--start I] \
[--max-seconds T] [--hex INPUT]";

struct Args {
    targets: Vec<String>,
    options: Options,
    hex: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut targets = Vec::new();
    let mut options = Options {
        inputs: 10_000,
        ..Options::default()
    };
    let mut hex = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |s: String| s.replace('_', "").parse::<u64>().map_err(|e| e.to_string());
        match a.as_str() {
            "--inputs" => options.inputs = number(value("--inputs")?)?,
            "--seed" => options.seed = number(value("--seed")?)?,
            "--start" => options.start = number(value("--start")?)?,
            "--max-seconds" => {
                options.max_time = Some(Duration::from_secs(number(value("--max-seconds")?)?))
            }
            "--hex" => hex = Some(value("--hex")?),
            "-h" | "--help" => return Err(USAGE.into()),
            t if !t.starts_with('-') => targets.push(t.to_string()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if targets.is_empty() {
        return Err(USAGE.into());
    }
    Ok(Args {
        targets,
        options,
        hex,
    })
}

fn print_report(r: &Report, seed: u64) {
    println!(
        "{:<16} inputs {:>10} in {:>8.1} s = {:>9.0} inputs/s  panics {}  oracle {}  over-allocation {}  peak {} B (limit {} B)  seeds {}",
        r.target,
        r.inputs,
        r.elapsed.as_secs_f64(),
        r.rate(),
        r.panics,
        r.oracle,
        r.over_allocation,
        r.max_peak,
        r.alloc_limit,
        r.seeds,
    );
    for f in &r.failures {
        let kind = match f.kind {
            Kind::Panic => "PANIC",
            Kind::Oracle => "ORACLE",
            Kind::Allocation => "ALLOCATION",
        };
        let message: String = f.message.replace('\n', " ").chars().take(600).collect();
        println!("  {kind}: {message}");
        println!("    input: {}", hex::encode(&f.input));
        match f.index {
            Some(i) => println!(
                "    replay: cargo run --release -p fuzz -- {} --seed {seed} --start {i} --inputs 1",
                r.target
            ),
            None => println!("    (a seed input) replay: cargo run --release -p fuzz -- {} --hex {}", r.target, hex::encode(&f.input)),
        }
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let all = fuzz::targets();
    if args.targets.iter().any(|t| t == "list") {
        for t in &all {
            println!("{:<16} {}", t.name, t.about);
        }
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<fuzz::Target> = if args.targets.iter().any(|t| t == "all") {
        all
    } else {
        let mut chosen = Vec::new();
        for name in &args.targets {
            match fuzz::find(name) {
                Some(t) => chosen.push(t),
                None => {
                    eprintln!("unknown target {name} (try `list`)");
                    return ExitCode::from(2);
                }
            }
        }
        chosen
    };
    runner::quiet_panics();
    if let Some(h) = &args.hex {
        let Ok(input) = hex::decode(h) else {
            eprintln!("--hex: not hex");
            return ExitCode::from(2);
        };
        let mut failed = false;
        for t in &chosen {
            primitives::crypto::remember_verified(true); // as in a sweep (`runner::run`)
            match runner::run_one(t, &input) {
                None => println!("{}: passes", t.name),
                Some((kind, message)) => {
                    failed = true;
                    println!("{}: {kind:?}: {message}", t.name);
                }
            }
        }
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let mut clean = true;
    let mut total = 0u64;
    for t in &chosen {
        let report = runner::run(t, &args.options, |r| {
            eprintln!(
                "  {}: {} inputs, {:.0}/s, {} failures so far",
                r.target,
                r.inputs,
                r.rate(),
                r.panics + r.oracle + r.over_allocation
            )
        });
        print_report(&report, args.options.seed);
        total += report.inputs;
        clean &= report.clean();
    }
    let nc = fuzz::decoders::NON_CANONICAL.load(std::sync::atomic::Ordering::Relaxed);
    if nc > 0 {
        let example = fuzz::decoders::NON_CANONICAL_EXAMPLE
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .map(hex::encode)
            .unwrap_or_default();
        println!("note: {nc} accepted inputs re-encode differently (a second encoding of one value), e.g. codec input {example}");
    }
    println!(
        "{} target(s), {total} inputs: {}",
        chosen.len(),
        if clean {
            "zero panics, zero oracle violations, zero over-allocation"
        } else {
            "FAILURES (see above)"
        }
    );
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
