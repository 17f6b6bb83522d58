//! The Byzantine hooks of the DAG-native cores: they have no messages to lie with (no
//! proposals, no votes of their own), so the shared wrapper's consensus-level
//! behaviours have nothing to act on; they are attacked through the DAG instead (the
//! mempool's faults: equivocating headers, withheld batches, withheld anchors, double
//! votes on headers).

use super::core::{Bullshark, Tusk};
use super::messages::Message;
use crate::byzantine::{Adversarial, MessageKind};

impl Adversarial for Bullshark {
    fn kind(message: &Message) -> MessageKind {
        match *message {}
    }

    fn with_bad_signature(&self, message: &Message) -> Message {
        match *message {}
    }
}

impl Adversarial for Tusk {
    fn kind(message: &Message) -> MessageKind {
        match *message {}
    }

    fn with_bad_signature(&self, message: &Message) -> Message {
        match *message {}
    }
}
