//! Wire targets of the consensus cores: a consensus frame decoded exactly as the driver
//! decodes one (`consensus/src/driver.rs`, `on_message`: the channel byte, then
//! `codec::decode::<P::Message>` within the message limit) and passed through the
//! core's `verify`, the way every peer message reaches a core.

use crate::cores::{Fixture, Fuzzed};
use crate::fixture::{max_message, MEMBERS};
use consensus::driver::CHANNEL_CONSENSUS;
use primitives::{codec, NodeId};

/// The input's first byte picks the authenticated sender (a member: the transport
/// authenticates it); the rest is the frame payload. The verifying core is member 0
/// at the end of the honest run.
pub fn wire<P: Fuzzed>(fixture: &Fixture<P>, data: &[u8]) {
    let Some((&sender, payload)) = data.split_first() else {
        return;
    };
    let from = NodeId((sender as usize % MEMBERS) as u16);
    let Some((&CHANNEL_CONSENSUS, body)) = payload.split_first() else {
        return;
    };
    let Ok(message) = codec::decode::<P::Message>(body, max_message()) else {
        return;
    };
    if let Err(e) = codec::encode(&message) {
        panic!(
            "oracle: {}: a decoded message does not encode: {e}",
            P::NAME
        );
    }
    fixture.with_core(0, |core| {
        let _ = core.verify(from, &message);
    });
}

/// Every message of the honest run, framed as the driver frames it.
pub fn seeds<P: Fuzzed>(fixture: &Fixture<P>) -> Vec<Vec<u8>> {
    fixture.messages(|from, bytes| {
        let mut out = vec![from.0 as u8, CHANNEL_CONSENSUS];
        out.extend_from_slice(bytes);
        out
    })
}
