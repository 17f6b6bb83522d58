//! Run a target over a range of inputs: catch panics, measure allocation, keep the
//! failing inputs with what replays them.

use crate::mutate::Generator;
use crate::{alloc, Target};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The run's seed.
    pub seed: u64,
    /// The first input index.
    pub start: u64,
    /// How many inputs.
    pub inputs: u64,
    /// Stop early after this long (`None`: run every input).
    pub max_time: Option<Duration>,
    /// Failures kept in full (all are counted).
    pub keep: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            start: 0,
            inputs: 1_000,
            max_time: None,
            keep: 8,
        }
    }
}

/// Why an input failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Production code panicked.
    Panic,
    /// An oracle of this crate found a wrong result.
    Oracle,
    /// The peak live allocation passed the target's limit.
    Allocation,
}

/// One failing input.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Its index in the run (`None`: one of the seeds, run before the inputs).
    pub index: Option<u64>,
    /// The input.
    pub input: Vec<u8>,
    /// Why.
    pub kind: Kind,
    /// The panic message and location, or the allocation figure.
    pub message: String,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The target.
    pub target: &'static str,
    /// Inputs run (not counting the seeds).
    pub inputs: u64,
    /// Seeds run first.
    pub seeds: usize,
    /// Wall time of the inputs.
    pub elapsed: Duration,
    /// Production panics.
    pub panics: u64,
    /// Oracle violations.
    pub oracle: u64,
    /// Inputs over the allocation limit.
    pub over_allocation: u64,
    /// The limit.
    pub alloc_limit: usize,
    /// Largest peak live allocation of one input.
    pub max_peak: usize,
    /// The first failures.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Inputs per second.
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// No production panic, no oracle violation, no over-allocation.
    pub fn clean(&self) -> bool {
        self.panics == 0 && self.oracle == 0 && self.over_allocation == 0
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replace the panic hook with one that records the message and location for the
/// runner instead of printing it (for the binary; tests keep the default hook).
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(text));
    }));
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}

/// Run `input` once: `None` if it passed.
pub fn run_one(target: &Target, input: &[u8]) -> Option<(Kind, String)> {
    let _ = LAST_PANIC.try_with(|p| p.borrow_mut().take());
    // The signature memory's table is not the input's allocation.
    primitives::crypto::reserve_verified_memory();
    alloc::reset();
    let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let peak = alloc::peak_since_reset();
    match outcome {
        Err(payload) => {
            let text = payload_text(payload.as_ref());
            let full = LAST_PANIC
                .try_with(|p| p.borrow_mut().take())
                .ok()
                .flatten()
                .unwrap_or_else(|| text.clone());
            let kind = if text.starts_with("oracle:") {
                Kind::Oracle
            } else {
                Kind::Panic
            };
            Some((kind, full))
        }
        Ok(()) if peak > (target.alloc_limit)() => Some((
            Kind::Allocation,
            format!(
                "peak live allocation {peak} bytes over the limit of {} bytes",
                (target.alloc_limit)()
            ),
        )),
        Ok(()) => None,
    }
}

/// Run `target` over inputs `start..start + inputs` of seed `seed` (after its seeds,
/// unmodified), calling `progress` about every ten seconds.
pub fn run(target: &Target, options: &Options, mut progress: impl FnMut(&Report)) -> Report {
    // The process-wide memory of verified signatures is on, as in a node: an input that
    // repeats a signature an earlier input had checked skips the curve arithmetic (most
    // of the core targets' time, ed25519). Results are the same whatever ran before: only
    // successes are remembered, and a success is what the check would compute again. Its
    // table is reserved here, before any input is measured, and never grows, so it
    // allocates nothing during an input.
    primitives::crypto::remember_verified(true);
    let seeds = (target.seeds)();
    let generator = Generator::new(seeds, options.seed);
    let mut report = Report {
        target: target.name,
        alloc_limit: (target.alloc_limit)(),
        seeds: generator.seeds().len(),
        ..Report::default()
    };
    let record = |report: &mut Report, index: Option<u64>, input: &[u8], kind, message| {
        match kind {
            Kind::Panic => report.panics += 1,
            Kind::Oracle => report.oracle += 1,
            Kind::Allocation => report.over_allocation += 1,
        }
        if report.failures.len() < options.keep {
            report.failures.push(Failure {
                index,
                input: input.to_vec(),
                kind,
                message,
            });
        }
    };
    for seed in generator.seeds() {
        if let Some((kind, message)) = run_one(target, seed) {
            record(&mut report, None, seed, kind, message);
        }
    }
    let started = Instant::now();
    let mut last_progress = started;
    for index in options.start..options.start.saturating_add(options.inputs) {
        let input = generator.input(index);
        if let Some((kind, message)) = run_one(target, &input) {
            record(&mut report, Some(index), &input, kind, message);
        }
        report.max_peak = report.max_peak.max(alloc::peak_since_reset());
        report.inputs += 1;
        if report.inputs % 256 == 0 {
            let now = Instant::now();
            if now.duration_since(last_progress) >= Duration::from_secs(10) {
                last_progress = now;
                report.elapsed = now.duration_since(started);
                progress(&report);
            }
            if options
                .max_time
                .is_some_and(|t| now.duration_since(started) >= t)
            {
                break;
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}
