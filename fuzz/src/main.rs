//! The fuzz runner: `fuzz TARGET|all|list [--inputs N] [--seed S] [--start I]
//! [--max-seconds T] [--hex INPUT] [--dir DIR] [--write-seeds DIR] [--write-inputs DIR]`.
//!
//! Runs inputs `I .. I+N` of seed `S` through each named target, with a counting
//! allocator installed, and prints per target the inputs, inputs per second, panics,
//! oracle violations and inputs over the allocation limit, with the hex of the first
//! failing inputs and the command that replays each. Exits 1 if anything failed.
//!
//! `--dir DIR` runs every file of DIR (an AFL++ queue or crash folder, say) through the
//! same checks instead; `--write-seeds DIR` writes the target's seeds there, one file
//! each, as the starting corpus of a coverage-guided fuzzer (see README.md);
//! `--write-inputs DIR` writes the seeds and the inputs a sweep would run (to measure
//! their coverage with AFL++'s `afl-showmap`).

use fuzz::runner::{self, Kind, Options, Report};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Counting = fuzz::alloc::Counting;

const USAGE: &str = "usage: fuzz TARGET|all|list [--inputs N] [--seed S] [--start I] \
[--max-seconds T] [--hex INPUT] [--dir DIR] [--write-seeds DIR] [--write-inputs DIR]";

struct Args {
    targets: Vec<String>,
    options: Options,
    hex: Option<String>,
    dir: Option<PathBuf>,
    write_seeds: Option<PathBuf>,
    write_inputs: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut targets = Vec::new();
    let mut options = Options {
        inputs: 10_000,
        ..Options::default()
    };
    let mut hex = None;
    let mut dir = None;
    let mut write_seeds = None;
    let mut write_inputs = None;
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
            "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
            "--write-seeds" => write_seeds = Some(PathBuf::from(value("--write-seeds")?)),
            "--write-inputs" => write_inputs = Some(PathBuf::from(value("--write-inputs")?)),
            "-h" | "--help" => return Err(USAGE.into()),
            t if !t.starts_with('-') => targets.push(t.to_string()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if targets.is_empty() {
        return Err(USAGE.into());
    }
    let modes = [
        hex.is_some(),
        dir.is_some(),
        write_seeds.is_some(),
        write_inputs.is_some(),
    ];
    if modes.iter().filter(|m| **m).count() > 1 {
        return Err("--hex, --dir, --write-seeds and --write-inputs exclude each other".into());
    }
    Ok(Args {
        targets,
        options,
        hex,
        dir,
        write_seeds,
        write_inputs,
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

/// Run each named input once through each target, as a sweep would (signature memory
/// on); print each failure and a count. Exit 1 if any failed.
fn replay(targets: &[fuzz::Target], inputs: &[(String, Vec<u8>)]) -> ExitCode {
    let mut failed = 0usize;
    for t in targets {
        primitives::crypto::remember_verified(true); // as in a sweep (`runner::run`)
        let mut passed = 0usize;
        for (name, input) in inputs {
            match runner::run_one(t, input) {
                None => passed += 1,
                Some((kind, message)) => {
                    failed += 1;
                    let message: String = message.replace('\n', " ").chars().take(600).collect();
                    println!("{} {name}: {kind:?}: {message}", t.name);
                    println!("    input: {}", hex::encode(input));
                }
            }
        }
        println!("{}: {passed} of {} inputs pass", t.name, inputs.len());
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Every regular file of `dir` (not its subfolders, dot files or AFL++'s README.txt), by
/// name, with its bytes; files over the codec's hard limit are refused rather than read.
fn read_dir_inputs(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut inputs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // AFL++ leaves a README.txt in its crash folder; dot files are bookkeeping.
        if !meta.is_file() || name == "README.txt" || name.starts_with('.') {
            continue;
        }
        if meta.len() > primitives::codec::HARD_LIMIT as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is over {} bytes",
                    entry.path().display(),
                    primitives::codec::HARD_LIMIT
                ),
            ));
        }
        inputs.push((name, std::fs::read(entry.path())?));
    }
    inputs.sort();
    Ok(inputs)
}

/// Write each target's seeds into `dir` (created if missing), one file per seed named
/// `TARGET-NNNNN`, and with `inputs` also the generator's inputs `start..start + N` of
/// the options' seed (what a sweep runs), named `TARGET-iNNNNNNNNN`. AFL++ takes no
/// empty file and none over 1 MiB: such seeds and inputs are skipped, and a target left
/// with no seed gets one file of one zero byte. Prints the counts.
fn write_corpus(
    targets: &[fuzz::Target],
    dir: &Path,
    inputs: Option<&Options>,
) -> std::io::Result<()> {
    const AFL_MAX_INPUT: usize = 1 << 20;
    std::fs::create_dir_all(dir)?;
    for t in targets {
        let seeds = (t.seeds)();
        let mut written = 0usize;
        for (i, seed) in seeds.iter().enumerate() {
            if seed.is_empty() || seed.len() > AFL_MAX_INPUT {
                continue;
            }
            std::fs::write(dir.join(format!("{}-{i:05}", t.name)), seed)?;
            written += 1;
        }
        if written == 0 {
            // AFL++ refuses an empty start: give it one zero byte.
            std::fs::write(dir.join(format!("{}-zero", t.name)), [0u8])?;
        }
        let total = seeds.len();
        let mut generated = 0usize;
        if let Some(o) = inputs {
            let generator = fuzz::mutate::Generator::new(seeds, o.seed);
            for index in o.start..o.start.saturating_add(o.inputs) {
                let input = generator.input(index);
                if !input.is_empty() && input.len() <= AFL_MAX_INPUT {
                    std::fs::write(dir.join(format!("{}-i{index:09}", t.name)), input)?;
                    generated += 1;
                }
            }
        }
        println!(
            "{}: wrote {written} of {total} seeds and {generated} generated inputs to {}",
            t.name,
            dir.display()
        );
    }
    Ok(())
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
        let canary = fuzz::canary();
        println!("{:<16} {} (not in `all`)", canary.name, canary.about);
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
    if let Some(dir) = args.write_seeds.as_ref().or(args.write_inputs.as_ref()) {
        let inputs = args.write_inputs.is_some().then_some(&args.options);
        return match write_corpus(&chosen, dir, inputs) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writing to {}: {e}", dir.display());
                ExitCode::from(2)
            }
        };
    }
    runner::quiet_panics();
    if let Some(h) = &args.hex {
        let Ok(input) = hex::decode(h) else {
            eprintln!("--hex: not hex");
            return ExitCode::from(2);
        };
        return replay(&chosen, &[(h.clone(), input)]);
    }
    if let Some(dir) = &args.dir {
        return match read_dir_inputs(dir) {
            Ok(inputs) => {
                println!("{}: {} files", dir.display(), inputs.len());
                replay(&chosen, &inputs)
            }
            Err(e) => {
                eprintln!("--dir {}: {e}", dir.display());
                ExitCode::from(2)
            }
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
