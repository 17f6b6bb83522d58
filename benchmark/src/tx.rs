//! The benchmark's transaction format.
//!
//! Byte 0 is 1 for a sample transaction and 0 otherwise; bytes 1..9 carry the client's
//! send time (Unix microseconds, big-endian) for samples; bytes 9..17 the client id and
//! 17..25 a sequence number, so every transaction is unique; the rest is padding.

/// Smallest transaction the format allows.
pub const MIN_SIZE: usize = 25;

/// Microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Build a transaction.
pub fn make(size: usize, client: u64, seq: u64, sample: bool) -> Vec<u8> {
    let mut tx = vec![0u8; size.max(MIN_SIZE)];
    if sample {
        tx[0] = 1;
        tx[1..9].copy_from_slice(&now_micros().to_be_bytes());
    }
    tx[9..17].copy_from_slice(&client.to_be_bytes());
    tx[17..25].copy_from_slice(&seq.to_be_bytes());
    tx
}

/// The send time of a sample transaction.
pub fn sample_time(tx: &[u8]) -> Option<u64> {
    if tx.len() >= MIN_SIZE && tx[0] == 1 {
        let mut t = [0u8; 8];
        t.copy_from_slice(&tx[1..9]);
        Some(u64::from_be_bytes(t))
    } else {
        None
    }
}
