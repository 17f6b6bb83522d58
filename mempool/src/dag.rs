//! The local DAG of certificates, as delivered (every certificate here has all its
//! parents here too, or they are below the garbage-collection horizon).

use crate::messages::Certificate;
use primitives::{Committee, Digest, NodeId, Round};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Certificates by round and author, with an index by digest.
///
/// Invariant: a certificate is inserted only after all its parents (strong and weak)
/// are present or below [`Dag::gc_round`]; so walking parents from any certificate
/// stays inside the DAG until the horizon.
#[derive(Debug)]
pub struct Dag {
    rounds: BTreeMap<Round, BTreeMap<NodeId, Certificate>>,
    index: HashMap<Digest, (Round, NodeId)>,
    gc_round: Round,
    /// Certificates above round 0 that no certificate held links to (strongly or
    /// weakly): the candidates for this node's next weak links.
    sinks: BTreeSet<(Round, Digest)>,
    /// Every batch a certificate held carries, with how many carry it.
    carried: CarriedBatches,
}

/// The batches the certificates of a DAG carry (payload digests, each with how many
/// certificates name it). Kept up to date as certificates come and go, so that garbage
/// collection, which must spare them, takes a copy instead of walking every
/// certificate of every round held.
#[derive(Clone, Debug, Default)]
pub struct CarriedBatches(HashMap<Digest, u32>);

impl FromIterator<Digest> for CarriedBatches {
    fn from_iter<I: IntoIterator<Item = Digest>>(batches: I) -> Self {
        let mut carried = CarriedBatches::default();
        for batch in batches {
            carried.add(batch);
        }
        carried
    }
}

impl CarriedBatches {
    /// Whether some certificate carries the batch (or it was [`added`](Self::add)).
    pub fn contains(&self, batch: &Digest) -> bool {
        self.0.contains_key(batch)
    }

    /// Count one more mention of `batch`.
    pub fn add(&mut self, batch: Digest) {
        *self.0.entry(batch).or_default() += 1;
    }

    /// Count one mention fewer; the batch leaves with its last one.
    fn remove(&mut self, batch: &Digest) {
        if let Some(n) = self.0.get_mut(batch) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(batch);
            }
        }
    }

    /// How many distinct batches.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Dag {
    /// A DAG holding the genesis certificates.
    pub fn new(committee: &Committee) -> Self {
        let mut dag = Dag {
            rounds: BTreeMap::new(),
            index: HashMap::new(),
            gc_round: Round(0),
            sinks: BTreeSet::new(),
            carried: CarriedBatches::default(),
        };
        for c in Certificate::genesis(committee) {
            dag.insert(c);
        }
        dag
    }

    /// Rounds at or below this have been garbage collected (round 0 is kept until the
    /// first collection).
    pub fn gc_round(&self) -> Round {
        self.gc_round
    }

    /// Whether the certificate is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.index.contains_key(digest)
    }

    /// A certificate by digest.
    pub fn get(&self, digest: &Digest) -> Option<&Certificate> {
        let (round, author) = self.index.get(digest)?;
        self.rounds.get(round)?.get(author)
    }

    /// The certificates of one round, by author.
    pub fn round(&self, round: Round) -> Option<&BTreeMap<NodeId, Certificate>> {
        self.rounds.get(&round)
    }

    /// The batches the certificates held carry.
    pub fn carried_batches(&self) -> &CarriedBatches {
        &self.carried
    }

    /// The highest round with any certificate.
    pub fn highest_round(&self) -> Round {
        self.rounds.keys().next_back().copied().unwrap_or_default()
    }

    /// Number of certificates held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the DAG holds nothing (never true: genesis is inserted at creation).
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Number of rounds held.
    pub fn rounds_held(&self) -> usize {
        self.rounds.len()
    }

    /// Whether certificates of `round` are gone (collected, at or below the horizon;
    /// round 0, genesis, is known to everyone and never counts as gone).
    pub fn below_horizon(&self, round: Round) -> bool {
        round <= self.gc_round && round != Round(0)
    }

    /// Digests of `certificate`'s parents (strong and weak) that are neither present
    /// nor below the horizon.
    pub fn missing_parents(&self, certificate: &Certificate) -> BTreeSet<Digest> {
        certificate
            .header
            .all_parents()
            .filter(|(round, _)| !self.below_horizon(*round))
            .filter(|(_, p)| !self.index.contains_key(*p))
            .map(|(_, p)| *p)
            .collect()
    }

    /// Up to `limit` weak links for a header of `round`: the certificates of rounds 1 to
    /// `round - 2` that no certificate held links to, oldest first (those nearest the
    /// horizon, past which they could no longer be ordered). By induction every
    /// certificate held is then reachable from the header, from a certificate of
    /// `round - 1` (all of which an honest header takes as strong parents), or from one
    /// of a higher round.
    pub fn weak_links(&self, round: Round, limit: usize) -> Vec<(Round, Digest)> {
        self.sinks
            .iter()
            .take_while(|(r, _)| r.0.saturating_add(2) <= round.0)
            .take(limit)
            .copied()
            .collect()
    }

    pub(crate) fn insert(&mut self, certificate: Certificate) {
        let digest = certificate.digest();
        let (round, author) = (certificate.round(), certificate.author());
        for (r, parent) in certificate.header.all_parents() {
            self.sinks.remove(&(r, *parent));
        }
        if round > Round(0) {
            self.sinks.insert((round, digest));
        }
        self.index.insert(digest, (round, author));
        for (batch, _) in &certificate.header.payload {
            self.carried.add(*batch);
        }
        if let Some(old) = self
            .rounds
            .entry(round)
            .or_default()
            .insert(author, certificate)
        {
            // Two certificates from one author in one round would need two quorums of
            // votes, impossible with at most f faulty; keep the index consistent anyway.
            for (batch, _) in &old.header.payload {
                self.carried.remove(batch);
            }
            if old.digest() != digest {
                self.index.remove(&old.digest());
                self.sinks.remove(&(round, old.digest()));
            }
        }
    }

    /// Drop every round at or below `gc_round`; returns what was dropped.
    pub(crate) fn collect_garbage(&mut self, gc_round: Round) -> Vec<Certificate> {
        if gc_round <= self.gc_round {
            return vec![];
        }
        self.gc_round = gc_round;
        self.sinks = self.sinks.split_off(&(gc_round.next(), Digest::default()));
        let keep = self.rounds.split_off(&gc_round.next());
        let dropped = std::mem::replace(&mut self.rounds, keep);
        let mut out = Vec::new();
        for (_, certs) in dropped {
            for (_, c) in certs {
                self.index.remove(&c.digest());
                for (batch, _) in &c.header.payload {
                    self.carried.remove(batch);
                }
                out.push(c);
            }
        }
        out
    }

    /// The causal history of `root` (itself included, through strong and weak links)
    /// that is still in the DAG, except
    /// certificates for which `skip` is true and their ancestors reached only through
    /// them, in a deterministic order: by round, then by author.
    pub fn causal_history(
        &self,
        root: &Digest,
        skip: impl Fn(&Digest) -> bool,
    ) -> Vec<Certificate> {
        let mut seen = BTreeSet::new();
        // Each link with the round its certificate claims for it: a link is followed only
        // to a certificate of that round. (A Byzantine weak link may claim a round below
        // the horizon for a recent certificate: voters then did not check it, and nodes
        // that hold that certificate and nodes that do not must still walk the same
        // history. Honest links always claim the right round.)
        let mut stack: Vec<(Option<Round>, Digest)> = vec![(None, *root)];
        let mut out = Vec::new();
        while let Some((claimed, digest)) = stack.pop() {
            if seen.contains(&digest) {
                continue;
            }
            let Some(c) = self.get(&digest) else {
                continue;
            };
            if claimed.is_some_and(|r| r != c.round()) {
                continue;
            }
            seen.insert(digest);
            if skip(&digest) || c.round() == Round(0) {
                continue;
            }
            stack.extend(c.header.all_parents().map(|(r, d)| (Some(r), *d)));
            out.push(c.clone());
        }
        out.sort_by_key(|c| (c.round(), c.author()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Header;
    use primitives::crypto::QuorumCertificate;

    fn committee() -> Committee {
        let hosts: Vec<String> = (0..4).map(|i| format!("node{i}")).collect();
        Committee::generate(4, 1, &hosts, 7000, Some(1)).unwrap().0
    }

    /// An unsigned certificate (the DAG checks no signatures).
    fn cert(round: u64, author: u16, parents: &[Digest], weak: &[&Certificate]) -> Certificate {
        Certificate {
            header: Header::unsigned(
                NodeId(author),
                Round(round),
                vec![],
                parents.to_vec(),
                weak.iter().map(|c| (c.round(), c.digest())).collect(),
            ),
            votes: QuorumCertificate::Ed25519(vec![]),
        }
    }

    fn genesis(committee: &Committee) -> Vec<Digest> {
        Certificate::genesis(committee)
            .iter()
            .map(|c| c.digest())
            .collect()
    }

    /// A DAG with a full round 1 (all four members).
    fn round_one() -> (Dag, Vec<Certificate>) {
        let committee = committee();
        let mut dag = Dag::new(&committee);
        let genesis = genesis(&committee);
        let ones: Vec<Certificate> = (0..4).map(|a| cert(1, a, &genesis, &[])).collect();
        for c in &ones {
            dag.insert(c.clone());
        }
        (dag, ones)
    }

    #[test]
    fn a_certificate_nobody_links_to_is_offered_as_a_weak_link_until_one_does() {
        let (mut dag, ones) = round_one();
        // Round 2 refers to the first three; the fourth came too late.
        let late = &ones[3];
        let strong: Vec<Digest> = ones[..3].iter().map(|c| c.digest()).collect();
        let twos: Vec<Certificate> = (0..3).map(|a| cert(2, a, &strong, &[])).collect();
        for c in &twos {
            dag.insert(c.clone());
        }
        // Nothing is offered to a header of round 2 (round 1 would be a strong parent).
        assert!(dag.weak_links(Round(2), 4).is_empty());
        assert_eq!(dag.weak_links(Round(3), 4), vec![(Round(1), late.digest())]);
        assert!(dag.weak_links(Round(3), 0).is_empty());

        // A round-3 certificate links to it weakly: it is in that certificate's causal
        // history, and no longer offered.
        let twos_digests: Vec<Digest> = twos.iter().map(|c| c.digest()).collect();
        let three = cert(3, 0, &twos_digests, &[late]);
        assert!(dag.missing_parents(&three).is_empty());
        dag.insert(three.clone());
        let history: Vec<Digest> = dag
            .causal_history(&three.digest(), |_| false)
            .iter()
            .map(|c| c.digest())
            .collect();
        assert!(history.contains(&late.digest()));
        assert_eq!(history.len(), 4 + 3 + 1);
        // Every round-2 certificate has a child now: nothing for round 4; for round 5,
        // the round-3 certificate nobody refers to yet.
        assert_eq!(dag.weak_links(Round(4), 4), vec![]);
        assert_eq!(
            dag.weak_links(Round(5), 1),
            vec![(Round(3), three.digest())]
        );
    }

    #[test]
    fn a_weak_link_is_followed_only_to_a_certificate_of_the_round_it_claims() {
        let (mut dag, ones) = round_one();
        let strong: Vec<Digest> = ones.iter().map(|c| c.digest()).collect();
        let twos: Vec<Certificate> = (0..4).map(|a| cert(2, a, &strong, &[])).collect();
        for c in &twos {
            dag.insert(c.clone());
        }
        let strong: Vec<Digest> = twos.iter().map(|c| c.digest()).collect();
        let other = cert(3, 1, &strong, &[]);
        dag.insert(other.clone());
        // A round-4 certificate whose (Byzantine) weak link names `other` (round 3) as
        // of round 1, and another whose honest strong links reach it the right way.
        let mut liar = cert(4, 0, &[twos[0].digest()], &[]);
        liar.header.weak_parents = vec![(Round(1), other.digest())];
        liar.header.forget_digest();
        dag.insert(liar.clone());
        let history = |dag: &Dag, root: &Certificate| -> Vec<Digest> {
            dag.causal_history(&root.digest(), |_| false)
                .iter()
                .map(|c| c.digest())
                .collect()
        };
        assert!(!history(&dag, &liar).contains(&other.digest()));
        let honest = cert(4, 2, &[other.digest()], &[&liar]);
        dag.insert(honest.clone());
        let h = history(&dag, &honest);
        assert!(h.contains(&other.digest()) && h.contains(&liar.digest()));
    }

    #[test]
    fn weak_parents_are_waited_for_above_the_horizon_only() {
        let committee = committee();
        let mut dag = Dag::new(&committee);
        let genesis = genesis(&committee);
        let absent = cert(2, 3, &[], &[]);
        let parent = cert(1, 0, &genesis, &[]);
        dag.insert(parent.clone());
        let child = cert(4, 1, &[Digest::of(b"round 3")], &[&absent, &parent]);
        assert_eq!(
            dag.missing_parents(&child),
            [Digest::of(b"round 3"), absent.digest()].into()
        );
        dag.collect_garbage(Round(2));
        assert_eq!(dag.missing_parents(&child), [Digest::of(b"round 3")].into());
        // Collected sinks are never offered again.
        assert!(dag.weak_links(Round(9), 4).is_empty());
    }

    #[test]
    fn carried_batches_follow_the_certificates_held() {
        let committee = committee();
        let mut dag = Dag::new(&committee);
        let genesis = genesis(&committee);
        let (a, b) = (Digest::of(b"batch a"), Digest::of(b"batch b"));
        let with = |round: u64, author: u16, payload: &[Digest]| Certificate {
            header: Header::unsigned(
                NodeId(author),
                Round(round),
                payload
                    .iter()
                    .map(|d| (*d, primitives::WorkerId(0)))
                    .collect(),
                genesis.clone(),
                vec![],
            ),
            votes: QuorumCertificate::Ed25519(vec![]),
        };
        // `a` is carried twice (an orphan's batch re-proposed by a later header).
        dag.insert(with(1, 0, &[a]));
        dag.insert(with(1, 1, &[b]));
        dag.insert(with(3, 0, &[a]));
        assert!(dag.carried_batches().contains(&a) && dag.carried_batches().contains(&b));
        assert_eq!(dag.carried_batches().len(), 2);
        // A second certificate of the same author and round replaces the first, and the
        // batches with it.
        dag.insert(with(1, 1, &[]));
        assert!(!dag.carried_batches().contains(&b));
        // `a` stays while the certificate of round 3 carries it.
        dag.collect_garbage(Round(2));
        assert!(dag.carried_batches().contains(&a));
        dag.collect_garbage(Round(3));
        assert!(dag.carried_batches().is_empty());
    }
}
