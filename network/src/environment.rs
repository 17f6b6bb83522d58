//! Where a node runs: real UDP sockets or turmoil's simulated network.

use crate::turmoil_socket::TurmoilUdpSocket;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The receive and send buffer every real UDP socket asks the kernel for. The kernel's
/// default (about 208 KiB) holds a few milliseconds of batch traffic: at loopback rates
/// it overflowed, and QUIC took the dropped datagrams for congestion and slowed down.
/// 4 MiB is what the measurements in docs/benchmarks.md ran with. Linux caps the request
/// at `net.core.rmem_max` / `wmem_max` (`sysctl -w net.core.rmem_max=4194304
/// net.core.wmem_max=4194304`; deploy/ansible/prepare.yml sets them on cluster hosts)
/// and reports twice what it grants; a socket that gets less is used anyway, with one
/// warning per process.
pub const UDP_SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// The largest `network.max_udp_payload` a real UDP socket takes: quinn hands the
/// kernel up to 10 datagrams of one connection in one segmentation-offload (GSO)
/// `sendmsg`, and Linux refuses a send of more than 65,507 bytes of IPv4 UDP payload
/// in all. A larger fixed size (8,952, say) made every full batch of datagrams fail
/// (`EMSGSIZE`, not retried), which QUIC took for loss: `bftlab local` fell from about
/// 140,000 to 21,000 tx/s. Simulated sockets (turmoil) have no such limit. Close to
/// it, sends just over 64 KiB cost receive-buffer drops on loopback (see
/// `bftlab local`'s choice of 6,000).
pub const MAX_REAL_UDP_PAYLOAD: u16 = 6_550;

static SMALL_BUFFER_WARNED: AtomicBool = AtomicBool::new(false);

/// Fix QUIC's datagram size at `size` bytes (path MTU discovery off); 0 leaves QUIC's
/// own behaviour. The size is checked with [`Environment::check_udp_payload`].
pub(crate) fn fix_udp_payload(transport: &mut quinn::TransportConfig, size: u16) {
    if size != 0 {
        transport
            .initial_mtu(size)
            .min_mtu(size)
            .mtu_discovery_config(None);
    }
}

/// A UDP socket bound to `addr` with [`UDP_SOCKET_BUFFER_BYTES`] of buffers (or what the
/// kernel grants).
fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // A refused size leaves the kernel's default: slower, not wrong.
    let _ = socket.set_recv_buffer_size(UDP_SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_SOCKET_BUFFER_BYTES);
    let granted = |size: io::Result<usize>| size.unwrap_or(0);
    let (recv, send) = (
        granted(socket.recv_buffer_size()),
        granted(socket.send_buffer_size()),
    );
    // Linux reports twice what it granted (the rest is its bookkeeping): a full grant
    // reads as twice the request.
    let wanted = 2 * UDP_SOCKET_BUFFER_BYTES;
    if (recv < wanted || send < wanted) && !SMALL_BUFFER_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            recv,
            send,
            wanted,
            "UDP socket buffers are smaller than wanted (sizes as Linux reports them, twice \
             the grant): datagrams may be dropped at high rates; raise net.core.rmem_max and \
             net.core.wmem_max to at least 4194304"
        );
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

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
    /// Check a fixed datagram size (`network.max_udp_payload`, or a client's; 0 is
    /// QUIC's own) against what this environment's sockets take: 1,200 up to
    /// [`MAX_REAL_UDP_PAYLOAD`] on a real socket, up to 65,527 on a simulated one.
    pub(crate) fn check_udp_payload(self, size: u16) -> Result<(), String> {
        let limit = match self {
            Environment::Udp => MAX_REAL_UDP_PAYLOAD,
            Environment::Turmoil => 65_527,
        };
        if size == 0 || (1_200..=limit).contains(&size) {
            return Ok(());
        }
        let why = match self {
            Environment::Udp => {
                ": on a real UDP socket QUIC sends up to 10 datagrams in one system call, \
                 and the kernel takes at most 64 KiB in one"
            }
            Environment::Turmoil => "",
        };
        Err(format!(
            "max_udp_payload {size} is outside 1200..={limit}{why}"
        ))
    }

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
                let socket = bind_udp(addr)?;
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
