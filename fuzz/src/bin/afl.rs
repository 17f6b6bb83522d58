//! AFL++ entry point (feature `afl`): `afl TARGET` reads inputs from AFL and runs the
//! named target on each. See README.md for the build and run commands.

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
    // Build the fixtures before AFL's fork server starts, so each child starts warm.
    let _ = (target.seeds)();
    primitives::crypto::remember_verified(false);
    afl::fuzz!(|data: &[u8]| {
        (target.run)(data);
    });
}
