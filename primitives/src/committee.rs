//! The committee: who the members are, their keys, weights and addresses, and the
//! quorum arithmetic over their weights.

use crate::crypto::{bls, ed25519, KeyPair};
use crate::error::{Error, Result};
use crate::ids::{NodeId, Weight};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Addresses of one worker of a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerAddresses {
    /// Where clients submit transactions (`host:port`).
    pub transactions: String,
    /// Where the workers of other members reach this worker (`host:port`).
    pub worker: String,
}

/// One committee member, with its keys already checked.
#[derive(Clone, Debug)]
pub struct Authority {
    /// Its id.
    pub id: NodeId,
    /// Its voting weight (at least 1).
    pub weight: Weight,
    /// Its ed25519 identity key (TLS identity and message signatures).
    pub public_key: ed25519::PublicKey,
    verifying_key: VerifyingKey,
    /// Its BLS key, whose proof of possession has been verified.
    pub bls_public_key: bls::PublicKey,
    /// The proof of possession of `bls_public_key`.
    pub bls_proof_of_possession: bls::Signature,
    /// Where its primary (the node's committee endpoint) listens (`host:port`).
    pub primary: String,
    /// Its workers, by worker index.
    pub workers: Vec<WorkerAddresses>,
}

impl Authority {
    /// The decoded ed25519 verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying_key
    }
}

/// A checked committee.
///
/// Construction ([`Committee::new`], [`Committee::load`], [`Committee::from_toml`])
/// guarantees: at least one member; unique ids; unique ed25519 and BLS keys; every
/// weight at least 1; every ed25519 key decodes and is not weak; every BLS key decodes
/// and carries a valid proof of possession (the rogue-key defence that makes BLS
/// aggregation of this committee's keys sound).
#[derive(Clone, Debug)]
pub struct Committee {
    members: Vec<Authority>,
    index: HashMap<NodeId, usize>,
    by_key: HashMap<ed25519::PublicKey, NodeId>,
    total_weight: Weight,
}

/// A member as written in the committee file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberFile {
    /// The member's id.
    pub id: NodeId,
    /// Its voting weight.
    pub weight: u64,
    /// ed25519 public key, hex.
    pub ed25519: String,
    /// BLS public key (compressed G1), hex.
    pub bls: String,
    /// BLS proof of possession (compressed G2), hex.
    pub bls_pop: String,
    /// Primary address, `host:port`.
    pub primary: String,
    /// Worker addresses.
    #[serde(default)]
    pub workers: Vec<WorkerAddresses>,
}

/// The committee file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitteeFile {
    /// The members.
    pub member: Vec<MemberFile>,
}

impl Committee {
    /// Check and build a committee from its file form.
    pub fn new(file: CommitteeFile) -> Result<Self> {
        if file.member.is_empty() {
            return Err(Error::InvalidCommittee("no members".into()));
        }
        if file.member.len() > u16::MAX as usize {
            return Err(Error::InvalidCommittee("too many members".into()));
        }
        let mut sorted: BTreeMap<NodeId, Authority> = BTreeMap::new();
        let mut by_key = HashMap::new();
        let mut bls_keys = Vec::new();
        let mut total = Weight(0);
        for m in file.member {
            let bad = |what: String| Error::InvalidCommittee(format!("member {}: {what}", m.id));
            if m.weight == 0 {
                return Err(bad("weight must be at least 1".into()));
            }
            let public_key =
                ed25519::PublicKey::from_hex(&m.ed25519).map_err(|e| bad(e.to_string()))?;
            let verifying_key = public_key.verifying_key().map_err(|e| bad(e.to_string()))?;
            let bls_public_key =
                bls::PublicKey::from_hex(&m.bls).map_err(|e| bad(e.to_string()))?;
            let pop = bls::Signature::from_hex(&m.bls_pop).map_err(|e| bad(e.to_string()))?;
            bls_public_key
                .verify_proof_of_possession(&pop)
                .map_err(|_| bad("BLS proof of possession does not verify (rogue key?)".into()))?;
            if by_key.insert(public_key, m.id).is_some() {
                return Err(bad("ed25519 key used by another member".into()));
            }
            if bls_keys.contains(&bls_public_key) {
                return Err(bad("BLS key used by another member".into()));
            }
            bls_keys.push(bls_public_key);
            total += Weight(m.weight);
            let authority = Authority {
                id: m.id,
                weight: Weight(m.weight),
                public_key,
                verifying_key,
                bls_public_key,
                bls_proof_of_possession: pop,
                primary: m.primary,
                workers: m.workers,
            };
            if sorted.insert(m.id, authority).is_some() {
                return Err(Error::InvalidCommittee(format!(
                    "duplicate member id {}",
                    m.id
                )));
            }
        }
        let members: Vec<Authority> = sorted.into_values().collect();
        let index = members.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
        Ok(Committee {
            members,
            index,
            by_key,
            total_weight: total,
        })
    }

    /// The file form of this committee.
    pub fn to_file(&self) -> CommitteeFile {
        CommitteeFile {
            member: self
                .members
                .iter()
                .map(|a| MemberFile {
                    id: a.id,
                    weight: a.weight.0,
                    ed25519: a.public_key.to_hex(),
                    bls: a.bls_public_key.to_hex(),
                    bls_pop: a.bls_proof_of_possession.to_hex(),
                    primary: a.primary.clone(),
                    workers: a.workers.clone(),
                })
                .collect(),
        }
    }

    /// Parse and check a committee from TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: CommitteeFile = toml::from_str(text).map_err(|e| Error::Parse {
            path: "committee".into(),
            message: e.message().to_string(),
        })?;
        Self::new(file)
    }

    /// This committee as TOML text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(&self.to_file()).map_err(|e| Error::Parse {
            path: "committee".into(),
            message: e.to_string(),
        })
    }

    /// Load and check a committee file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_file(path)?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Parse { message, .. } => Error::Parse {
                path: path.into(),
                message,
            },
            other => other,
        })
    }

    /// Write the committee file.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_file(path, &self.to_toml()?)
    }

    /// A fresh committee of `n` members with weight 1 each, `workers` workers per
    /// member, placed round-robin on `hosts` with consecutive ports from `base_port`
    /// (each member uses `1 + 2 * workers` ports). With `seed`, the keys are derived
    /// from it deterministically; otherwise they come from the OS RNG.
    pub fn generate(
        n: usize,
        workers: usize,
        hosts: &[String],
        base_port: u16,
        seed: Option<u64>,
    ) -> Result<(Committee, Vec<KeyPair>)> {
        if n == 0 || hosts.is_empty() {
            return Err(Error::InvalidCommittee(
                "need at least one node and one host".into(),
            ));
        }
        let stride = 1 + 2 * workers;
        let last_port = base_port as usize + stride * n;
        if last_port > u16::MAX as usize {
            return Err(Error::InvalidCommittee(format!(
                "ports {base_port}..{last_port} do not fit below 65536"
            )));
        }
        let mut keys = Vec::with_capacity(n);
        let mut members = Vec::with_capacity(n);
        let mut os_rng = rand::rngs::OsRng;
        for i in 0..n {
            let key = match seed {
                Some(s) => {
                    let mut material = [0u8; 32];
                    material[..8].copy_from_slice(&s.to_le_bytes());
                    material[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                    KeyPair::from_seed(&material)
                }
                None => KeyPair::generate(&mut os_rng),
            };
            let host = &hosts[i % hosts.len()];
            let port = |offset: usize| base_port as usize + stride * i + offset;
            members.push(MemberFile {
                id: NodeId(i as u16),
                weight: 1,
                ed25519: key.public_key().to_hex(),
                bls: key.bls_public_key().to_hex(),
                bls_pop: key.bls.proof_of_possession().to_hex(),
                primary: format!("{host}:{}", port(0)),
                workers: (0..workers)
                    .map(|w| WorkerAddresses {
                        transactions: format!("{host}:{}", port(1 + 2 * w)),
                        worker: format!("{host}:{}", port(2 + 2 * w)),
                    })
                    .collect(),
            });
            keys.push(key);
        }
        Ok((Committee::new(CommitteeFile { member: members })?, keys))
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Members in increasing id order.
    pub fn members(&self) -> &[Authority] {
        &self.members
    }

    /// Member ids in increasing order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().map(|a| a.id)
    }

    /// A member by id.
    pub fn member(&self, id: NodeId) -> Option<&Authority> {
        self.index.get(&id).map(|i| &self.members[*i])
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: NodeId) -> bool {
        self.index.contains_key(&id)
    }

    /// The position of `id` in the sorted member list (used by signer bitmaps).
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// The member at position `i` of the sorted member list.
    pub fn id_at(&self, i: usize) -> Option<NodeId> {
        self.members.get(i).map(|a| a.id)
    }

    /// The member whose ed25519 identity key is `key`.
    pub fn id_by_key(&self, key: &ed25519::PublicKey) -> Option<NodeId> {
        self.by_key.get(key).copied()
    }

    /// A member's weight, zero for non-members.
    pub fn weight(&self, id: NodeId) -> Weight {
        self.member(id).map(|a| a.weight).unwrap_or_default()
    }

    /// The sum of all weights, W.
    pub fn total_weight(&self) -> Weight {
        self.total_weight
    }

    /// The largest faulty weight f the committee tolerates: the largest f with W >= 3f + 1.
    pub fn max_faulty_weight(&self) -> Weight {
        Weight(self.total_weight.0.saturating_sub(1) / 3)
    }

    /// The quorum threshold, W - f ("2f + 1" when W = 3f + 1). Any two sets of this
    /// weight intersect in more than f weight, hence in an honest member.
    pub fn quorum_threshold(&self) -> Weight {
        Weight(self.total_weight.0 - self.max_faulty_weight().0)
    }

    /// The validity threshold, f + 1: any set of this weight holds an honest member.
    pub fn validity_threshold(&self) -> Weight {
        Weight(self.max_faulty_weight().0 + 1)
    }

    /// The summed weight of `ids`, each counted once, non-members counting zero.
    pub fn weight_of<'a>(&self, ids: impl IntoIterator<Item = &'a NodeId>) -> Weight {
        let mut seen = std::collections::BTreeSet::new();
        ids.into_iter()
            .filter(|id| seen.insert(**id))
            .map(|id| self.weight(*id))
            .sum()
    }
}

/// The port of a `host:port` address, if it has a valid one.
pub fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

pub(crate) fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committee_with_weights(weights: &[u64]) -> Committee {
        let (c, _) =
            Committee::generate(weights.len(), 1, &["127.0.0.1".into()], 5000, Some(1)).unwrap();
        let mut file = c.to_file();
        for (m, w) in file.member.iter_mut().zip(weights) {
            m.weight = *w;
        }
        Committee::new(file).unwrap()
    }

    #[test]
    fn quorum_arithmetic_for_any_n() {
        // (n, f, quorum, validity) for unit weights.
        for (n, f, q, v) in [
            (1, 0, 1, 1),
            (2, 0, 2, 1),
            (3, 0, 3, 1),
            (4, 1, 3, 2),
            (5, 1, 4, 2),
            (6, 1, 5, 2),
            (7, 2, 5, 3),
            (10, 3, 7, 4),
            (100, 33, 67, 34),
        ] {
            let c = committee_with_weights(&vec![1; n]);
            assert_eq!(c.max_faulty_weight(), Weight(f), "n={n}");
            assert_eq!(c.quorum_threshold(), Weight(q), "n={n}");
            assert_eq!(c.validity_threshold(), Weight(v), "n={n}");
            // Two quorums intersect in more than f.
            assert!(2 * q - n as u64 > f);
        }
    }

    #[test]
    fn quorum_by_weight() {
        let c = committee_with_weights(&[5, 1, 1, 2]); // W = 9, f = 2, quorum 7
        assert_eq!(c.quorum_threshold(), Weight(7));
        assert_eq!(c.validity_threshold(), Weight(3));
        assert_eq!(c.weight_of(&[NodeId(0), NodeId(3)]), Weight(7));
        assert_eq!(c.weight_of(&[NodeId(0), NodeId(0)]), Weight(5));
        assert_eq!(c.weight_of(&[NodeId(9)]), Weight(0));
    }

    #[test]
    fn toml_round_trip_and_file_errors() {
        let (c, keys) = Committee::generate(4, 2, &["a".into(), "b".into()], 7000, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("committee.toml");
        c.save(&path).unwrap();
        let back = Committee::load(&path).unwrap();
        assert_eq!(back.to_toml().unwrap(), c.to_toml().unwrap());
        assert_eq!(back.member(NodeId(3)).unwrap().workers[1].worker, "b:7019");
        let key_path = dir.path().join("key-1.toml");
        keys[1].save(NodeId(1), &key_path).unwrap();
        let (id, k) = KeyPair::load(&key_path).unwrap();
        assert_eq!(id, NodeId(1));
        assert_eq!(k.public_key(), keys[1].public_key());
        assert!(matches!(
            Committee::load(&dir.path().join("missing.toml")),
            Err(Error::Io { .. })
        ));
        std::fs::write(&path, "member = 3").unwrap();
        assert!(matches!(Committee::load(&path), Err(Error::Parse { .. })));
    }

    #[test]
    fn rogue_key_committee_is_rejected() {
        // A rogue key: member 1 claims pk' = pk_evil - pk_0, which it cannot have a
        // proof of possession for. It reuses some valid-looking proof instead.
        let (c, keys) = Committee::generate(4, 1, &["h".into()], 5000, Some(3)).unwrap();
        let mut file = c.to_file();
        let evil = KeyPair::from_seed(&[9; 32]);
        // Rogue key = evil_pk - pk_0, computed through the public API of the curve.
        use bls12_381::{G1Affine, G1Projective};
        let mut pk0 = [0u8; 48];
        hex::decode_to_slice(&file.member[0].bls, &mut pk0).unwrap();
        let pk0 = G1Affine::from_compressed(&pk0).unwrap();
        let evil_pk = G1Affine::from_compressed(&evil.bls_public_key().to_bytes()).unwrap();
        let rogue = G1Affine::from(G1Projective::from(evil_pk) - G1Projective::from(pk0));
        file.member[1].bls = hex::encode(rogue.to_compressed());
        // The attacker can only offer a proof made with a key it holds.
        file.member[1].bls_pop = evil.bls.proof_of_possession().to_hex();
        let err = Committee::new(file).unwrap_err();
        assert!(err.to_string().contains("proof of possession"), "{err}");
        drop(keys);
    }

    #[test]
    fn duplicate_members_and_zero_weight_are_rejected() {
        let (c, _) = Committee::generate(3, 1, &["h".into()], 5000, Some(4)).unwrap();
        let mut file = c.to_file();
        file.member[2].id = NodeId(0);
        file.member[2].ed25519 = file.member[0].ed25519.clone();
        assert!(Committee::new(file).is_err());
        let mut file = c.to_file();
        file.member[0].weight = 0;
        assert!(Committee::new(file).is_err());
        assert!(Committee::new(CommitteeFile { member: vec![] }).is_err());
    }
}
