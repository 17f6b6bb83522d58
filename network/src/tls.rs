//! TLS identities from committee ed25519 keys, and certificate verifiers that accept
//! exactly the committee.
//!
//! Each node presents a self-signed X.509 certificate over its ed25519 key. The
//! certificate's contents other than the key carry no meaning; what authenticates the
//! peer is that it signs the TLS 1.3 handshake with the key inside, which rustls checks
//! in `verify_tls13_signature`. Verifiers accept a certificate when its key belongs to
//! a committee member (the server side, which takes any member) or to the one member
//! being dialled (the client side). TLS 1.2 is not offered.

use crate::metrics::{DropReason, Metrics};
use primitives::crypto::ed25519;
use primitives::{Committee, NodeId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;

/// The ALPN protocol id of bftlab's committee transport.
pub const ALPN: &[u8] = b"bftlab/1";
/// The ALPN protocol id of the client-facing transaction endpoint.
pub const CLIENT_ALPN: &[u8] = b"bftlab-tx/1";

/// The DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE {
/// OID 1.3.101.112 }, BIT STRING (0 unused bits) } followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A certificate and private key for a node's TLS identity.
pub struct Identity {
    /// The self-signed certificate.
    pub certificate: CertificateDer<'static>,
    /// The private key (PKCS#8).
    pub private_key: PrivateKeyDer<'static>,
}

/// Make the TLS identity for an ed25519 signing key. Deterministic: the same key always
/// yields the same certificate bytes (fixed serial number and validity, ed25519's
/// deterministic signatures), which keeps simulations reproducible.
pub fn identity(key: &ed25519_dalek::SigningKey) -> Result<Identity, String> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let pkcs8 = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    let pkcs8 = PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
        .map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec!["bftlab".to_string()]).map_err(|e| e.to_string())?;
    let public = key.verifying_key().to_bytes();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&public[..16]));
    let cert = params.self_signed(&key_pair).map_err(|e| e.to_string())?;
    Ok(Identity {
        certificate: cert.der().clone(),
        private_key: PrivateKeyDer::Pkcs8(pkcs8),
    })
}

/// Read one DER element (tag, header length, content length) at the start of `der`.
fn der_element(der: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *der.first()?;
    let first = *der.get(1)? as usize;
    let (header, len) = if first < 0x80 {
        (2, first)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *der.get(2 + i)? as usize;
        }
        (2 + n, len)
    };
    if header.checked_add(len)? > der.len() {
        return None;
    }
    Some((tag, header, len))
}

/// The ed25519 public key inside an X.509 certificate, if its subject key is ed25519.
/// Walks Certificate -> TBSCertificate -> subjectPublicKeyInfo; never panics on any input.
pub fn ed25519_key_of(certificate: &[u8]) -> Option<ed25519::PublicKey> {
    let (tag, h, _) = der_element(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let cert_body = certificate.get(h..)?;
    let (tag, h, len) = der_element(cert_body)?;
    if tag != 0x30 {
        return None;
    }
    let mut tbs = cert_body.get(h..h + len)?;
    // Optional [0] version, then serial, signature, issuer, validity, subject, spki.
    if tbs.first() == Some(&0xa0) {
        let (_, h, len) = der_element(tbs)?;
        tbs = tbs.get(h + len..)?;
    }
    for _ in 0..5 {
        let (_, h, len) = der_element(tbs)?;
        tbs = tbs.get(h + len..)?;
    }
    let (_, h, len) = der_element(tbs)?;
    let spki = tbs.get(..h + len)?;
    if spki.len() != 44 || spki[..12] != ED25519_SPKI_PREFIX {
        return None;
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&spki[12..]);
    Some(ed25519::PublicKey(key))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn reject() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
}

/// Shared part of both verifiers: the handshake-signature check.
#[derive(Debug)]
struct SignatureCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl SignatureCheck {
    fn new() -> Self {
        SignatureCheck {
            algorithms: provider().signature_verification_algorithms,
        }
    }
    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoSignatureSchemesInCommon,
            ));
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// The handshake-signature part of both verifiers: TLS 1.3 only, ed25519 only,
/// checked by [`SignatureCheck`] (field `check`).
macro_rules! handshake_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::Tls13RequiredForQuic,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.check.tls13(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

/// Server-side verifier of client certificates: accepts any committee member.
#[derive(Debug)]
pub struct CommitteeClientVerifier {
    committee: Arc<Committee>,
    metrics: Arc<Metrics>,
    check: SignatureCheck,
}

impl ClientCertVerifier for CommitteeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match ed25519_key_of(end_entity).and_then(|k| self.committee.id_by_key(&k)) {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => {
                self.metrics.record_drop(DropReason::UnknownPeer, 1);
                Err(reject())
            }
        }
    }

    handshake_signature_checks!();
}

/// Client-side verifier of a server certificate: accepts only the member being dialled.
#[derive(Debug)]
pub struct PeerServerVerifier {
    expected: ed25519::PublicKey,
    metrics: Arc<Metrics>,
    check: SignatureCheck,
}

impl ServerCertVerifier for PeerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if ed25519_key_of(end_entity) == Some(self.expected) {
            Ok(ServerCertVerified::assertion())
        } else {
            self.metrics.record_drop(DropReason::UnknownPeer, 1);
            Err(reject())
        }
    }

    handshake_signature_checks!();
}

/// No session resumption anywhere: every handshake is a full one, the same size in
/// every run, which keeps simulations replayable (resumption decisions read the wall
/// clock).
fn server(
    identity: &Identity,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let builder = match client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(
            vec![identity.certificate.clone()],
            identity.private_key.clone_key(),
        )
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![alpn.to_vec()];
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// A client configuration accepting only the server key `expected`, presenting
/// `identity` if given (see [`server`] about resumption).
fn client(
    identity: Option<&Identity>,
    expected: ed25519::PublicKey,
    metrics: Arc<Metrics>,
    alpn: &[u8],
) -> Result<rustls::ClientConfig, String> {
    let verifier = Arc::new(PeerServerVerifier {
        expected,
        metrics,
        check: SignatureCheck::new(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(
                vec![identity.certificate.clone()],
                identity.private_key.clone_key(),
            )
            .map_err(|e| e.to_string())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The rustls server configuration of a node: its identity, client certificates
/// required and checked against the committee.
pub fn server_config(
    identity: &Identity,
    committee: Arc<Committee>,
    metrics: Arc<Metrics>,
) -> Result<rustls::ServerConfig, String> {
    let verifier = Arc::new(CommitteeClientVerifier {
        committee,
        metrics,
        check: SignatureCheck::new(),
    });
    server(identity, Some(verifier), ALPN)
}

/// The rustls client configuration for dialling the member whose key is `expected`.
pub fn client_config(
    identity: &Identity,
    expected: ed25519::PublicKey,
    metrics: Arc<Metrics>,
) -> Result<rustls::ClientConfig, String> {
    client(Some(identity), expected, metrics, ALPN)
}

/// The rustls server configuration of a client-facing endpoint: the node's identity,
/// no client certificate asked for (clients are not committee members).
pub fn open_server_config(identity: &Identity) -> Result<rustls::ServerConfig, String> {
    server(identity, None, CLIENT_ALPN)
}

/// The rustls configuration of a transaction client dialling the node whose key is
/// `expected` (the client presents no certificate).
pub fn anonymous_client_config(
    expected: ed25519::PublicKey,
    metrics: Arc<Metrics>,
) -> Result<rustls::ClientConfig, String> {
    client(None, expected, metrics, CLIENT_ALPN)
}

/// The committee member a connection's peer proved to be, from its certificate.
pub fn peer_id(connection: &quinn::Connection, committee: &Committee) -> Option<NodeId> {
    let identity = connection.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let key = ed25519_key_of(certs.first()?)?;
    committee.id_by_key(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::crypto::KeyPair;

    #[test]
    fn certificate_carries_the_key_and_is_deterministic() {
        let k = KeyPair::from_seed(&[7; 32]);
        let a = identity(&k.ed25519).unwrap();
        let b = identity(&k.ed25519).unwrap();
        assert_eq!(a.certificate, b.certificate);
        assert_eq!(ed25519_key_of(&a.certificate), Some(k.public_key()));
    }

    #[test]
    fn key_extraction_never_panics_on_garbage() {
        let k = KeyPair::from_seed(&[8; 32]);
        let cert = identity(&k.ed25519).unwrap().certificate.to_vec();
        for cut in 0..cert.len() {
            let _ = ed25519_key_of(&cert[..cut]);
        }
        for i in 0..cert.len() {
            let mut bad = cert.clone();
            bad[i] ^= 0xff;
            let _ = ed25519_key_of(&bad);
        }
        assert_eq!(ed25519_key_of(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
