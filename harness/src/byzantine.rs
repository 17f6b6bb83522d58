//! What a Byzantine member does, from the named behaviours of a scenario (or of
//! `bftlab node --byzantine`): the consensus and mempool misbehaviours its node runs
//! with, and the floods beside it. The same code serves simulated and real nodes.

use crate::floods;
use crate::scenario::Misbehaviour;
use consensus::byzantine::{Adversary, Behaviour, ForkBook};
use consensus::Node;
use mempool::MempoolFaults;
use primitives::NodeId;
use tokio::task::JoinHandle;

/// What node `node` with `misbehaviours` is told to do, split by layer; `None` for an
/// honest node. `colluders` are every Byzantine member (this one included): they get
/// both sides of an equivocation. Colluders share `book` (which side each conflicting
/// block went to) only when they run in one process; on separate hosts each has its own.
pub fn adversary(
    misbehaviours: &[Misbehaviour],
    node: usize,
    colluders: &[usize],
    book: &ForkBook,
) -> Option<Adversary> {
    if misbehaviours.is_empty() {
        return None;
    }
    let behaviours = misbehaviours
        .iter()
        .filter_map(|m| match m {
            Misbehaviour::Equivocate => Some(Behaviour::Equivocate),
            Misbehaviour::DoubleVote => Some(Behaviour::DoubleVote),
            Misbehaviour::WithholdVotes => Some(Behaviour::WithholdVotes),
            Misbehaviour::InvalidSignatures => Some(Behaviour::InvalidSignatures),
            Misbehaviour::Replay => Some(Behaviour::Replay),
            Misbehaviour::FutureFlood => Some(Behaviour::FutureFlood),
            _ => None,
        })
        .collect();
    let id = |n: &usize| NodeId(*n as u16);
    Some(Adversary {
        behaviours,
        colluders: colluders.iter().chain([&node]).map(id).collect(),
        book: book.clone(),
        mempool: MempoolFaults {
            equivocate_headers: misbehaviours.contains(&Misbehaviour::EquivocateHeaders),
            double_vote_headers: misbehaviours.contains(&Misbehaviour::DoubleVoteHeaders),
            withhold_batches: misbehaviours.contains(&Misbehaviour::WithholdBatches),
            withhold_anchors: misbehaviours.contains(&Misbehaviour::WithholdAnchors),
            colluders: colluders.iter().filter(|n| **n != node).map(id).collect(),
        },
    })
}

/// Start the floods among `misbehaviours` beside a running node (tasks of the current
/// runtime; abort them to stop). `seed` makes their content reproducible.
pub fn spawn_floods(node: &Node, misbehaviours: &[Misbehaviour], seed: u64) -> Vec<JoinHandle<()>> {
    let mut flood = Vec::new();
    for m in misbehaviours {
        match m {
            Misbehaviour::Garbage => {
                flood.push(tokio::spawn(floods::garbage(node.sender(), seed)));
            }
            Misbehaviour::BatchRequestFlood => {
                let task = floods::batch_requests(node.sender(), node.mempool.clone(), seed);
                flood.push(tokio::spawn(task));
            }
            Misbehaviour::SyncSpam => {
                flood.push(tokio::spawn(floods::sync_spam(node.sender(), seed)));
            }
            Misbehaviour::BatchFlood => {
                flood.push(tokio::spawn(floods::batches(node.sender(), seed)));
            }
            _ => {}
        }
    }
    flood
}

/// Parse behaviour names as written in scenarios (`equivocate,double-vote`).
pub fn parse_behaviours(names: &[String]) -> Result<Vec<Misbehaviour>, String> {
    names
        .iter()
        .map(|name| {
            toml::Value::String(name.trim().into())
                .try_into::<Misbehaviour>()
                .map_err(|_| format!("unknown Byzantine behaviour `{name}`"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_parse_by_their_scenario_names() {
        let names = ["equivocate".to_string(), "sync-spam".to_string()];
        assert_eq!(
            parse_behaviours(&names).unwrap(),
            vec![Misbehaviour::Equivocate, Misbehaviour::SyncSpam]
        );
        assert!(parse_behaviours(&["lie".to_string()])
            .unwrap_err()
            .contains("lie"));
    }

    #[test]
    fn an_honest_node_has_no_adversary_and_colluders_include_itself() {
        let book = ForkBook::default();
        assert!(adversary(&[], 0, &[], &book).is_none());
        let a = adversary(&[Misbehaviour::Equivocate], 3, &[2], &book).unwrap();
        assert_eq!(a.colluders.len(), 2);
        assert_eq!(a.mempool.colluders.len(), 1);
    }
}
