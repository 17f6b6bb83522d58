//! WAN latency from a measured matrix: the matrix type lives in the network crate, which
//! also emulates it on real sockets ([`network::wan_emulation`]); scenarios name a file
//! of that format in `latency_matrix`.

pub use network::latency_matrix::{LatencyMatrix, MatrixError};
