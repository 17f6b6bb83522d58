//! A Narwhal-style DAG mempool for bftlab: workers disseminate batches, primaries certify a round-based DAG of headers.
//!
//! This follows Danezis, Kokoris-Kogias, Sonnino and Spiegelman, "Narwhal and Tusk"
//! (EuroSys 2022), separating data dissemination (workers) from the DAG of metadata
//! (primaries) that consensus later orders.
//!
//! - **Workers** take client transactions, seal them into batches (`batch_size` bytes or
//!   `max_batch_delay`), send each batch to the worker of the same index at every other
//!   node, and hand the batch digest to their primary once a quorum (by weight, counting
//!   themselves) has stored it.
//! - **Primaries** propose one header per round carrying batch digests and the digests
//!   of a quorum of certificates of the previous round (its parents), vote on others'
//!   headers under the paper's rules, and turn a quorum of votes into a certificate. A
//!   primary moves to round r+1 once it holds a quorum of round-r certificates.
//! - Certificates are handed to consensus in causal order (never before their parents),
//!   missing ancestors are fetched from peers, and everything more than `gc_depth`
//!   rounds below the last committed round is dropped from memory and storage.
//!
//! Safety-relevant state (the node's own last header, its last vote per author) is
//! persisted before the message that depends on it leaves the node, so a node restarted
//! from its store never signs two different headers or votes for one round.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod dag;
mod error;
mod mempool;
mod messages;
pub mod metrics;
mod primary;
pub mod store;
mod transport;
mod worker;

pub use dag::Dag;
pub use error::{MempoolError, Rejection};
pub use mempool::{Mempool, MempoolConfig, MempoolFaults, MempoolHandle};
pub use messages::{
    check_batch, decode_batch, encode_batch, Batch, BatchCheck, Certificate, Header,
    MempoolMessage, Vote,
};
pub use metrics::{MempoolMetrics, MetricsSnapshot};
pub use primary::Equivocation;
pub use store::{DiskStore, MemoryStore, Store, StoreError};
pub use transport::CHANNEL_MEMPOOL;
