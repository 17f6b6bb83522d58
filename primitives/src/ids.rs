//! Newtypes for the numbers that cross APIs: node ids, worker ids, rounds, views, weights.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! number_newtype {
    ($(#[$doc:meta])* $name:ident, $inner:ty, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                $name(value)
            }
        }
    };
}

number_newtype!(
    /// A committee member's identifier: its index in the committee file.
    NodeId, u16, "n"
);
number_newtype!(
    /// A worker's index within its node (worker `i` of every node forms one shard).
    WorkerId, u16, "w"
);
number_newtype!(
    /// A DAG round of the mempool.
    Round, u64, "r"
);
number_newtype!(
    /// A consensus view (HotStuff) or height/round pair index of a protocol.
    View, u64, "v"
);
number_newtype!(
    /// Voting weight of a committee member, and sums of weights.
    Weight, u64, "wt"
);

impl Round {
    /// The next round.
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }
    /// The previous round, or round 0.
    pub fn prev(self) -> Round {
        Round(self.0.saturating_sub(1))
    }
}

impl View {
    /// The next view.
    pub fn next(self) -> View {
        View(self.0.saturating_add(1))
    }
}

impl std::ops::Add for Weight {
    type Output = Weight;
    fn add(self, rhs: Weight) -> Weight {
        Weight(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::AddAssign for Weight {
    fn add_assign(&mut self, rhs: Weight) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl std::iter::Sum for Weight {
    fn sum<I: Iterator<Item = Weight>>(iter: I) -> Weight {
        iter.fold(Weight(0), |a, b| a + b)
    }
}
