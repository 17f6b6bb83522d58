//! Findings of the fuzz targets in production code, kept as regression tests (each
//! failed when found and passes since its fix).

use fuzz::runner::{run_one, Kind};

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Counting = fuzz::alloc::Counting;

fn passes(target: &str, hex_input: &str) {
    let t = fuzz::find(target).unwrap_or_else(|| panic!("no target {target}"));
    let input = hex::decode(hex_input).unwrap_or_default();
    if let Some((kind, message)) = run_one(&t, &input) {
        panic!("{target}: {kind:?}: {message}");
    }
}

/// network/src/frame.rs: a stream that ends right after a 4-byte length prefix (5
/// bytes announced, none sent) was reported as a clean end, not `FrameError::Truncated`
/// (tokio-util consumed the prefix, `decode_eof` then saw an empty buffer). Fixed: the
/// codec is our own and consumes nothing until a whole frame is there.
/// Input: limit selector 1 (16 bytes), chunking 3, stream `00000005`.
#[test]
fn frame_cut_after_length_prefix_is_truncated() {
    passes("frames", "010300000005");
}

/// primitives/src/codec.rs via mempool/src/messages.rs: a 9-byte batch whose second
/// transaction claims 16 MiB makes `codec::decode::<Batch>` allocate the claimed 16 MiB
/// before finding the input too short (bincode reserves a byte buffer's claimed length,
/// up to the 64 MiB `HARD_LIMIT`, not the input's remaining length).
#[test]
fn a_short_batch_does_not_allocate_its_claimed_length() {
    passes("mempool-batch", "02fc00010001000101");
}

/// The same through the mempool's message decoder: a 7-byte Batch message whose batch
/// claims 16 MiB is not the fast path's shape, falls back to `codec::decode`, and
/// allocates the 16 MiB.
#[test]
fn a_short_mempool_message_does_not_allocate_its_claimed_length() {
    let t = fuzz::find("mempool-message").unwrap_or_else(|| panic!("no target"));
    let bytes = hex::decode("0000fc00000001").unwrap_or_default();
    let outcome = run_one(&t, &bytes);
    assert!(
        !matches!(outcome, Some((Kind::Allocation, _))),
        "{outcome:?}"
    );
}
