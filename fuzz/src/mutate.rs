//! Inputs that get past the first tag: valid encodings of real messages, mutated.
//!
//! Input `index` of a run with seed `seed` is a pure function of `(seed, index)` (a
//! ChaCha8 stream per index), so any one input replays without the ones before it.
//! Most inputs start from one of the target's seeds (valid encodings) and apply one to
//! four mutations; a few are raw random bytes, a few a seed unchanged.

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bytes that mean something to bincode 2's varints (251, 252, 253 announce 2, 4 and 8
/// byte integers; 254 and 255 are invalid markers) and to tags and booleans.
const INTERESTING_BYTES: &[u8] = &[0, 1, 2, 3, 0x7f, 0x80, 250, 251, 252, 253, 254, 255];

/// Integers worth writing where a length, a count, a view or a round was.
const INTERESTING_U64: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    31,
    32,
    33,
    250,
    251,
    255,
    256,
    1 << 16,
    (1 << 16) - 1,
    1 << 20,
    8 << 20,
    (8 << 20) + 1,
    64 << 20,
    (64 << 20) + 1,
    1 << 32,
    u32::MAX as u64,
    i64::MAX as u64,
    u64::MAX - 1,
    u64::MAX,
];

/// Writes `v` the way bincode 2's standard configuration writes an unsigned integer.
pub fn varint(v: u64) -> Vec<u8> {
    if v < 251 {
        vec![v as u8]
    } else if v <= u16::MAX as u64 {
        let mut out = vec![251];
        out.extend_from_slice(&(v as u16).to_le_bytes());
        out
    } else if v <= u32::MAX as u64 {
        let mut out = vec![252];
        out.extend_from_slice(&(v as u32).to_le_bytes());
        out
    } else {
        let mut out = vec![253];
        out.extend_from_slice(&v.to_le_bytes());
        out
    }
}

/// The inputs of one target: its seeds and how to mutate them.
#[derive(Debug, Clone)]
pub struct Generator {
    seeds: Vec<Vec<u8>>,
    seed: u64,
}

impl Generator {
    /// A generator over `seeds` (valid encodings; may be empty) for run seed `seed`.
    pub fn new(seeds: Vec<Vec<u8>>, seed: u64) -> Self {
        Generator { seeds, seed }
    }

    /// The seeds.
    pub fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    /// Input number `index` of this run.
    pub fn input(&self, index: u64) -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        let choice = rng.gen_range(0..100);
        if self.seeds.is_empty() || choice < 5 {
            let len = rng.gen_range(0..300);
            let mut out = vec![0u8; len];
            rng.fill_bytes(&mut out);
            return out;
        }
        let mut out = self.pick(&mut rng).to_vec();
        if choice < 10 {
            return out;
        }
        let count = 1 + rng.gen_range(0..4usize).min(rng.gen_range(0..4));
        for _ in 0..count {
            self.mutate(&mut rng, &mut out);
        }
        out
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> &[u8] {
        self.seeds.choose(rng).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Apply one random mutation to `data`.
    pub fn mutate(&self, rng: &mut ChaCha8Rng, data: &mut Vec<u8>) {
        let other = self.pick(rng).to_vec();
        mutate_with(rng, data, &other);
    }
}

/// A position biased towards the start, where tags, counts and lengths live.
fn position(rng: &mut impl Rng, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    if rng.gen_bool(0.5) {
        rng.gen_range(0..len.min(16))
    } else {
        rng.gen_range(0..len)
    }
}

/// One mutation of `data`; `other` is another valid encoding to splice from.
pub fn mutate_with(rng: &mut impl Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    match rng.gen_range(0..12) {
        // Flip one bit.
        0 if len > 0 => {
            let at = position(rng, len);
            data[at] ^= 1 << rng.gen_range(0..8);
        }
        // Set one byte to an interesting or random value.
        1 if len > 0 => {
            let at = position(rng, len);
            data[at] = if rng.gen_bool(0.7) {
                INTERESTING_BYTES[rng.gen_range(0..INTERESTING_BYTES.len())]
            } else {
                rng.gen()
            };
        }
        // Add or subtract a little.
        2 if len > 0 => {
            let at = position(rng, len);
            let delta = rng.gen_range(1..=35u8);
            data[at] = if rng.gen() {
                data[at].wrapping_add(delta)
            } else {
                data[at].wrapping_sub(delta)
            };
        }
        // Truncate.
        3 if len > 0 => data.truncate(rng.gen_range(0..len)),
        // Extend with random bytes.
        4 => {
            let extra = rng.gen_range(1..=16);
            data.extend((0..extra).map(|_| rng.gen::<u8>()));
        }
        // Insert random bytes.
        5 => {
            let at = position(rng, len + 1).min(len);
            let extra: Vec<u8> = (0..rng.gen_range(1..=8)).map(|_| rng.gen()).collect();
            data.splice(at..at, extra);
        }
        // Delete a range.
        6 if len > 0 => {
            let at = position(rng, len);
            let end = (at + rng.gen_range(1..=16)).min(len);
            data.drain(at..end);
        }
        // Duplicate a range.
        7 if len > 0 => {
            let at = rng.gen_range(0..len);
            let end = (at + rng.gen_range(1..=64)).min(len);
            let chunk = data[at..end].to_vec();
            let to = rng.gen_range(0..=len);
            data.splice(to..to, chunk);
        }
        // Splice: our prefix, the other's suffix.
        8 if !other.is_empty() => {
            let cut = rng.gen_range(0..=len);
            let from = rng.gen_range(0..other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        // A length, count or number edit: replace one byte with a varint.
        9 if len > 0 => {
            let at = position(rng, len);
            let v = if rng.gen_bool(0.8) {
                INTERESTING_U64[rng.gen_range(0..INTERESTING_U64.len())]
            } else {
                rng.gen::<u64>() >> rng.gen_range(0..64)
            };
            let replace = if rng.gen() { 1 } else { varint_len(data, at) };
            let end = (at + replace).min(len);
            data.splice(at..end, varint(v));
        }
        // A 4-byte big-endian length (frames) overwritten.
        10 if len >= 4 => {
            let at = rng.gen_range(0..=len - 4);
            let v = match rng.gen_range(0..4) {
                0 => rng.gen::<u32>(),
                1 => rng.gen_range(0..64),
                2 => (len - at) as u32,
                _ => INTERESTING_U64[rng.gen_range(0..INTERESTING_U64.len())] as u32,
            };
            data[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        // Swap two bytes.
        _ if len > 1 => {
            let a = rng.gen_range(0..len);
            let b = rng.gen_range(0..len);
            data.swap(a, b);
        }
        _ => data.push(rng.gen()),
    }
}

/// The length of the varint starting at `at` (1 when it is not a valid marker).
fn varint_len(data: &[u8], at: usize) -> usize {
    match data.get(at) {
        Some(251) => 3,
        Some(252) => 5,
        Some(253) => 9,
        _ => 1,
    }
}

/// Reads structured choices out of fuzz bytes; past the end every read is zero and
/// [`Reader::is_empty`] is true, so any byte string is a valid program.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, at: 0 }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }

    /// One byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at = self.at.saturating_add(1);
        b
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        if n <= 256 {
            self.u8() as usize % n
        } else {
            self.u32() as usize % n
        }
    }

    /// The rest of the bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.data.get(self.at..).unwrap_or(&[]);
        self.at = self.data.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_replay_from_seed_and_index() {
        let g = Generator::new(vec![vec![1, 2, 3, 4, 5, 6], vec![0, 9, 9]], 7);
        for i in [0u64, 1, 99, 12345] {
            assert_eq!(g.input(i), g.input(i));
        }
        let distinct: std::collections::BTreeSet<Vec<u8>> = (0..200).map(|i| g.input(i)).collect();
        assert!(distinct.len() > 100);
    }

    #[test]
    fn varints_match_bincode() {
        for v in INTERESTING_U64 {
            let ours = varint(*v);
            let theirs = primitives::codec::encode(v).unwrap_or_default();
            assert_eq!(ours, theirs, "{v}");
        }
    }
}
