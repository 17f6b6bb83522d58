//! Structured fuzzing of bftlab's decoders and consensus cores on stable Rust: mutated valid encodings, a replayable runner with panic and allocation checks.
//!
//! Every target is a function of one byte string ([`Target::run`]) that must never
//! panic: the bounded codec, frames, the mempool's messages and batches, state-transfer
//! messages, each core's wire messages through its `verify`, and each core driven by a
//! program of events. Inputs come from [`mutate::Generator`]: valid encodings of real
//! messages ([`Target::seeds`]) mutated, plus raw bytes, all a pure function of (seed,
//! index). [`runner::run`] runs a target over a range of inputs, catches panics, and
//! (with [`alloc::Counting`] installed as the global allocator) fails inputs whose peak
//! live allocation passes the target's limit.
//!
//! Panics raised by this crate's own oracles start with `oracle:` and are counted apart
//! from panics of production code. `cargo run --release -p fuzz -- --help` lists the
//! commands; README.md has the figures.

pub mod alloc;
pub mod cluster;
pub mod cores;
pub mod decoders;
pub mod fixture;
pub mod mutate;
pub mod runner;
pub mod wire;

use consensus::bullshark::{Bullshark, Tusk};
use consensus::hotstuff::HotStuff;
use consensus::snowman::Snowman;
use consensus::tendermint::Tendermint;

/// One fuzz target.
#[derive(Clone, Copy)]
pub struct Target {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it exercises.
    pub about: &'static str,
    /// Run one input; panics on a bug (production) or a broken oracle (`oracle:`).
    pub run: fn(&[u8]),
    /// Valid inputs to start mutations from (building them may take a second).
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Most bytes one input may have live at once above what was live before it.
    pub alloc_limit: fn() -> usize,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.name).finish()
    }
}

/// Decoders may hold at most the message (= frame) limit plus 1 MiB of slack: the
/// production decoders promise not to allocate for a length they were not given.
fn decoder_limit() -> usize {
    fixture::max_message() + (1 << 20)
}

/// A core driven by one input may hold at most the codec's hard limit (64 MiB).
fn core_limit() -> usize {
    primitives::codec::HARD_LIMIT
}

macro_rules! core_targets {
    ($wire:literal, $core:literal, $p:ty, $fixture:path) => {
        [
            Target {
                name: $wire,
                about: concat!(
                    "a consensus frame of ",
                    stringify!($p),
                    " decoded as the driver does, then verify"
                ),
                run: |d| wire::wire::<$p>($fixture(), d),
                seeds: || wire::seeds::<$p>($fixture()),
                alloc_limit: decoder_limit,
            },
            Target {
                name: $core,
                about: concat!(
                    "a fresh ",
                    stringify!($p),
                    " core driven by a program of events"
                ),
                run: |d| cores::drive::<$p>($fixture(), d),
                seeds: || cores::seeds::<$p>($fixture()),
                alloc_limit: core_limit,
            },
        ]
    };
}

/// Every target.
pub fn targets() -> Vec<Target> {
    let mut all = vec![
        Target {
            name: "codec",
            about: "primitives::codec::decode of the wire types of primitives",
            run: decoders::codec,
            seeds: decoders::codec_seeds,
            alloc_limit: decoder_limit,
        },
        Target {
            name: "frames",
            about: "network::FrameCodec over a chunked stream, against an independent reading",
            run: decoders::frames,
            seeds: decoders::frame_seeds,
            alloc_limit: decoder_limit,
        },
        Target {
            name: "mempool-message",
            about: "mempool::MempoolMessage::decode, against codec::decode, then the checks",
            run: decoders::mempool_message,
            seeds: decoders::mempool_message_seeds,
            alloc_limit: decoder_limit,
        },
        Target {
            name: "mempool-batch",
            about: "mempool::decode_batch, against codec::decode",
            run: decoders::mempool_batch,
            seeds: decoders::mempool_batch_seeds,
            alloc_limit: decoder_limit,
        },
        Target {
            name: "transfer",
            about: "a state-transfer frame decoded as the driver does",
            run: decoders::transfer,
            seeds: decoders::transfer_seeds,
            alloc_limit: decoder_limit,
        },
    ];
    all.extend(core_targets!(
        "wire-hotstuff",
        "core-hotstuff",
        HotStuff,
        cores::hotstuff_fixture
    ));
    all.extend(core_targets!(
        "wire-tendermint",
        "core-tendermint",
        Tendermint,
        cores::tendermint_fixture
    ));
    all.extend(core_targets!(
        "wire-snowman",
        "core-snowman",
        Snowman,
        cores::snowman_fixture
    ));
    all.extend(core_targets!(
        "wire-bullshark",
        "core-bullshark",
        Bullshark,
        cores::bullshark_fixture
    ));
    all.push(Target {
        name: "core-tusk",
        about: "a fresh Tusk core driven by a program of events (its wire type is Bullshark's)",
        run: |d| cores::drive::<Tusk>(cores::tusk_fixture(), d),
        seeds: || cores::seeds::<Tusk>(cores::tusk_fixture()),
        alloc_limit: core_limit,
    });
    all
}

/// The target called `name`: one of [`targets`], or [`canary`].
pub fn find(name: &str) -> Option<Target> {
    if name == CANARY_NAME {
        return Some(canary());
    }
    targets().into_iter().find(|t| t.name == name)
}

const CANARY_NAME: &str = "canary";

/// A target with a planted bug, kept out of [`targets`] (and so out of `all`): it panics
/// on inputs that begin with the seven bytes `bftlab!`, tested one byte at a time so
/// that each matched byte is a new branch. A coverage-guided fuzzer finds it in seconds;
/// the structured generator, which does not know the bytes, would need about 2^56
/// inputs. Running it shows that a fuzzing setup can report a crash at all.
pub fn canary() -> Target {
    Target {
        name: CANARY_NAME,
        about: "a planted panic behind a 7-byte magic prefix (shows a fuzzer can fail)",
        run: canary_run,
        seeds: || vec![b"bft".to_vec(), b"hello".to_vec()],
        alloc_limit: decoder_limit,
    }
}

fn canary_run(data: &[u8]) {
    let magic = b"bftlab!";
    let mut matched = 0;
    for (i, want) in magic.iter().enumerate() {
        // One branch per byte, so a coverage-guided fuzzer is rewarded for each.
        if data.get(i) != Some(want) {
            break;
        }
        matched += 1;
        std::hint::black_box(matched);
    }
    if matched == magic.len() {
        panic!("canary: the planted bug was reached");
    }
}
