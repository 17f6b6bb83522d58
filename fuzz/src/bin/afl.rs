//! AFL++ entry point (feature `afl`): `afl TARGET` reads inputs from AFL++ and runs the
//! named target on each with the runner's checks: a production panic, an oracle
//! violation or a peak live allocation over the target's limit aborts the process, which
//! AFL++ records as a crash. See README.md for the build and run commands.

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Counting = fuzz::alloc::Counting;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = fuzz::find(&name) else {
        eprintln!(
            "usage: afl TARGET (one of: {})",
            fuzz::targets()
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::process::exit(2);
    };
    // Build the fixtures (and reserve the signature memory's table) before AFL++'s fork
    // server starts, so each child starts warm and no child pays for them.
    let _ = (target.seeds)();
    primitives::crypto::remember_verified(true);
    primitives::crypto::reserve_verified_memory();
    fuzz::runner::quiet_panics();
    // Without afl's panic hook: `run_one` catches a panic itself, classifies it
    // (production or oracle) and prints it before aborting.
    afl::fuzz_nohook!(|data: &[u8]| {
        if let Some((kind, message)) = fuzz::runner::run_one(&target, data) {
            eprintln!("{}: {kind:?}: {message}", target.name);
            std::process::abort();
        }
    });
}
