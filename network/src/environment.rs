//! Where a node runs: real UDP sockets or turmoil's simulated network.

use crate::turmoil_socket::TurmoilUdpSocket;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// The environment a [`crate::Network`] runs in. Everything above the UDP socket and
/// address resolution (QUIC, TLS, framing, queues) is the same code in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Environment {
    /// Real UDP sockets and DNS (local or remote clusters), through the process's WAN
    /// emulation if one is installed ([`crate::wan_emulation::install`]).
    #[default]
    Udp,
    /// turmoil's simulated UDP and host names. Must run inside a turmoil host.
    Turmoil,
}

impl Environment {
    /// Create a quinn endpoint bound to `addr`.
    pub(crate) async fn endpoint(
        self,
        addr: SocketAddr,
        config: quinn::EndpointConfig,
        server: Option<quinn::ServerConfig>,
    ) -> io::Result<quinn::Endpoint> {
        let runtime = Arc::new(quinn::TokioRuntime);
        match self {
            Environment::Udp => {
                let socket = std::net::UdpSocket::bind(addr)?;
                match crate::wan_emulation::installed() {
                    None => quinn::Endpoint::new(config, server, socket, runtime),
                    Some(emulation) => {
                        let socket =
                            crate::wan_emulation::EmulatedUdpSocket::new(socket, emulation)?;
                        quinn::Endpoint::new_with_abstract_socket(config, server, socket, runtime)
                    }
                }
            }
            Environment::Turmoil => {
                let socket = Arc::new(TurmoilUdpSocket::bind(addr).await?);
                quinn::Endpoint::new_with_abstract_socket(config, server, socket, runtime)
            }
        }
    }

    /// Resolve a `host:port` address.
    pub async fn resolve(self, address: &str) -> io::Result<SocketAddr> {
        if let Ok(addr) = address.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let invalid = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad address {address:?}"),
            )
        };
        let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
        let port: u16 = port.parse().map_err(|_| invalid())?;
        match self {
            Environment::Udp => tokio::net::lookup_host((host, port))
                .await?
                .next()
                .ok_or_else(invalid),
            Environment::Turmoil => Ok(SocketAddr::new(turmoil::lookup(host), port)),
        }
    }
}
