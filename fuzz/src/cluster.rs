//! A small honest cluster run once per protocol to collect real, validly signed
//! messages of every kind (the seeds the core and wire targets mutate), and the peers'
//! cores afterwards (which sign far-ahead and conflicting messages on demand).
//!
//! Four members on 10 ms links; a DAG certificate per member every 100 ms, each with
//! the previous round's as parents; member 3 is cut off from 1 s to 2 s so timeouts,
//! timeout certificates and catch-up happen too. Written here rather than reusing
//! `consensus::testing` (test-only, not exported).

use crate::fixture::{committee, MEMBERS};
use consensus::byzantine::Adversarial;
use consensus::{Action, CertificateInfo, Context, Event, Protocol, Time, TimerId};
use primitives::crypto::SignatureScheme;
use primitives::{codec, Digest, Hasher, NodeId, Round};
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Most messages kept from a run.
const MAX_CORPUS: usize = 1_500;
/// Length of the run.
const RUN: Duration = Duration::from_millis(3_000);
/// Interval between DAG rounds.
const ROUND_EVERY: Duration = Duration::from_millis(100);
/// One-way latency.
const LATENCY: Duration = Duration::from_millis(10);

/// The context of member `index` (signature scheme ed25519, RNG seeded by the index).
pub fn context(index: usize) -> Context {
    let (committee, keys) = committee();
    Context {
        id: NodeId(index as u16),
        committee: committee.clone(),
        keys: keys[index % keys.len()].clone(),
        scheme: SignatureScheme::Ed25519,
        rng: rand_chacha::ChaCha20Rng::seed_from_u64(index as u64),
        persisted: None,
        now: Time::default(),
    }
}

/// The certificate of `author` in `round` of the run's DAG.
pub fn certificate(round: u64, author: usize, parents: Vec<Digest>) -> CertificateInfo {
    let (committee, _) = committee();
    let id = NodeId(author as u16);
    CertificateInfo {
        digest: Hasher::new()
            .update(b"fuzz.certificate")
            .update_u64(round)
            .update_u64(author as u64)
            .update_u64(parents.len() as u64)
            .finalize(),
        round: Round(round),
        author: id,
        weight: committee.weight(id),
        parents,
    }
}

/// What a run leaves.
pub struct Run<P: Protocol> {
    /// Every distinct message sent, with its sender, in the order sent.
    pub messages: Vec<(NodeId, P::Message)>,
    /// Their encodings.
    pub encoded: Vec<Vec<u8>>,
    /// The members' cores at the end.
    pub peers: Vec<P>,
    /// The DAG certificates delivered, in order.
    pub certificates: Vec<CertificateInfo>,
}

/// Actions of a member at a time, still to perform.
type Pending<M> = (usize, Time, Vec<Action<M>>);

enum Item<M> {
    Deliver {
        from: usize,
        to: usize,
        message: M,
    },
    Timer {
        node: usize,
        id: TimerId,
        generation: u64,
    },
    Round(u64),
}

/// Run the cluster of `P` with its default configuration. `None` if a core cannot be
/// built from it.
pub fn run<P: Adversarial>() -> Option<Run<P>> {
    let mut peers: Vec<P> = (0..MEMBERS)
        .map(|i| P::new(context(i), P::Config::default()).ok())
        .collect::<Option<_>>()?;
    let mut queue: BTreeMap<(Time, u64), Item<P::Message>> = BTreeMap::new();
    let mut seq = 0u64;
    let mut timers: Vec<BTreeMap<TimerId, u64>> = vec![BTreeMap::new(); MEMBERS];
    let mut run = Run {
        messages: Vec::new(),
        encoded: Vec::new(),
        peers: Vec::new(),
        certificates: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    let mut previous: Vec<Digest> = Vec::new();
    let cut = |t: Time, node: usize| {
        node == 3 && t.0 >= Duration::from_millis(1_000) && t.0 < Duration::from_millis(2_000)
    };
    let mut push = |queue: &mut BTreeMap<_, _>, at: Time, item| {
        seq += 1;
        queue.insert((at, seq), item);
    };
    push(&mut queue, Time(ROUND_EVERY), Item::Round(1));
    let mut pending: Vec<Pending<P::Message>> = Vec::new();
    for (i, p) in peers.iter_mut().enumerate() {
        pending.push((i, Time::default(), p.handle(Time::default(), Event::Start)));
    }
    loop {
        for (node, now, actions) in pending.drain(..) {
            for action in actions {
                let targets: Vec<(usize, P::Message)> = match action {
                    Action::Send { to, message, .. } => vec![(to.0 as usize, message)],
                    Action::Broadcast { message, .. } => (0..MEMBERS)
                        .filter(|j| *j != node)
                        .map(|j| (j, message.clone()))
                        .collect(),
                    Action::SetTimer { id, after } => {
                        let generation = timers[node].get(&id).map_or(0, |g| g + 1);
                        timers[node].insert(id, generation);
                        push(
                            &mut queue,
                            now.after(after),
                            Item::Timer {
                                node,
                                id,
                                generation,
                            },
                        );
                        vec![]
                    }
                    Action::CancelTimer { id } => {
                        if let Some(g) = timers[node].get_mut(&id) {
                            *g += 1;
                        }
                        vec![]
                    }
                    _ => vec![],
                };
                for (to, message) in targets {
                    if let Ok(bytes) = codec::encode(&message) {
                        if run.messages.len() < MAX_CORPUS && seen.insert(bytes.clone()) {
                            run.messages.push((NodeId(node as u16), message.clone()));
                            run.encoded.push(bytes);
                        }
                    }
                    if to >= MEMBERS || cut(now, node) || cut(now, to) {
                        continue;
                    }
                    let at = if to == node { now } else { now.after(LATENCY) };
                    push(
                        &mut queue,
                        at,
                        Item::Deliver {
                            from: node,
                            to,
                            message,
                        },
                    );
                }
            }
        }
        let Some(((now, _), item)) = queue.pop_first() else {
            break;
        };
        if now.0 > RUN {
            break;
        }
        match item {
            Item::Deliver { from, to, message } => {
                let from = NodeId(from as u16);
                if peers[to].verify(from, &message).is_ok() {
                    let out = peers[to].handle(now, Event::Message { from, message });
                    pending.push((to, now, out));
                }
            }
            Item::Timer {
                node,
                id,
                generation,
            } => {
                if timers[node].get(&id) == Some(&generation) {
                    timers[node].insert(id, generation + 1);
                    let out = peers[node].handle(now, Event::Timer(id));
                    pending.push((node, now, out));
                }
            }
            Item::Round(round) => {
                let certs: Vec<CertificateInfo> = (0..MEMBERS)
                    .map(|a| certificate(round, a, previous.clone()))
                    .collect();
                previous = certs.iter().map(|c| c.digest).collect();
                for c in certs {
                    run.certificates.push(c.clone());
                    for (i, p) in peers.iter_mut().enumerate() {
                        let out = p.handle(now, Event::Certificate(c.clone()));
                        pending.push((i, now, out));
                    }
                }
                push(&mut queue, now.after(ROUND_EVERY), Item::Round(round + 1));
            }
        }
    }
    run.peers = peers;
    Some(run)
}
