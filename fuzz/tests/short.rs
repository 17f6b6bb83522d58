//! The short form of every fuzz target, in the default test suite: a few hundred to a
//! few thousand inputs each (after the target's seeds), with the counting allocator
//! installed so the allocation limits are checked too.
//!
//! Targets with known findings in production code assert only what is clean; the
//! findings themselves are the `#[ignore]`d regression tests in `regressions.rs`.

use fuzz::runner::{run, Options, Report};

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Counting = fuzz::alloc::Counting;

fn short(name: &str, inputs: u64) -> Report {
    let target = fuzz::find(name).unwrap_or_else(|| panic!("no target {name}"));
    let options = Options {
        seed: 11,
        inputs,
        ..Options::default()
    };
    let report = run(&target, &options, |_| {});
    assert_eq!(report.inputs, inputs);
    report
}

fn clean(name: &str, inputs: u64) {
    let r = short(name, inputs);
    assert!(r.clean(), "{name}: {:?}", r.failures);
}

#[test]
fn codec() {
    clean("codec", 3_000);
}

#[test]
fn frames_never_panic_nor_over_allocate() {
    // The oracle finds the truncation after a bare length prefix (regressions.rs).
    let r = short("frames", 5_000);
    assert_eq!(r.panics + r.over_allocation, 0, "{:?}", r.failures);
}

#[test]
fn mempool_message_never_panics() {
    // Over-allocation by the codec's fallback is a finding (regressions.rs).
    let r = short("mempool-message", 2_000);
    assert_eq!(r.panics + r.oracle, 0, "{:?}", r.failures);
}

#[test]
fn mempool_batch_never_panics() {
    let r = short("mempool-batch", 5_000);
    assert_eq!(r.panics + r.oracle, 0, "{:?}", r.failures);
}

#[test]
fn transfer() {
    clean("transfer", 3_000);
}

#[test]
fn wire_hotstuff() {
    clean("wire-hotstuff", 2_000);
}

#[test]
fn wire_tendermint() {
    clean("wire-tendermint", 2_000);
}

#[test]
fn wire_snowman() {
    clean("wire-snowman", 2_000);
}

#[test]
fn wire_bullshark() {
    clean("wire-bullshark", 2_000);
}

#[test]
fn core_hotstuff() {
    clean("core-hotstuff", 60);
}

#[test]
fn core_tendermint() {
    clean("core-tendermint", 60);
}

#[test]
fn core_snowman() {
    clean("core-snowman", 200);
}

#[test]
fn core_bullshark() {
    clean("core-bullshark", 60);
}

#[test]
fn core_tusk() {
    clean("core-tusk", 60);
}

/// The canary's planted bug is reported as a production panic with its input, the
/// generator's inputs pass it, and it stays out of `all`.
#[test]
fn the_canary_fails_only_on_its_magic_prefix_and_is_not_in_all() {
    assert!(fuzz::targets().iter().all(|t| t.name != "canary"));
    let canary = fuzz::find("canary").expect("canary is found by name");
    assert_eq!(fuzz::runner::run_one(&canary, b"bftlab"), None);
    assert_eq!(fuzz::runner::run_one(&canary, b"xbftlab!"), None);
    let (kind, message) =
        fuzz::runner::run_one(&canary, b"bftlab!?").expect("the magic prefix panics");
    assert_eq!(kind, fuzz::runner::Kind::Panic);
    assert!(message.contains("planted bug"), "{message}");
    clean("canary", 2_000);
}
