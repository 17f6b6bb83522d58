//! A per-peer limit on requests a core answers with bulk replies (HotStuff's block
//! chains, Snowman's ancestors and accepted blocks): one member asking without pause
//! must not make a node read and send without bound. The limit itself is
//! [`primitives::rate::PerMemberRate`] on the core's clock.

use crate::core::Time;
use std::time::Duration;

/// Requests answered per peer per second; the others are refused and counted.
pub type ServeRate = primitives::rate::PerMemberRate<Time>;

impl primitives::rate::Moment for Time {
    fn since(self, earlier: Time) -> Duration {
        Time::since(self, earlier)
    }
}
