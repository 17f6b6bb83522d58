//! quinn's UDP socket abstraction over turmoil's simulated UDP.
//!
//! What turmoil's sockets can do, and so what this adapter reports to quinn: one
//! datagram per transmit and per receive (no GSO/GRO), no ECN, no fragmentation, and
//! no send-side back-pressure (the socket is always writable). A send that turmoil
//! refuses for any reason other than `WouldBlock` (for example while a partition holds)
//! is treated as a datagram lost on the wire, which is what a real network would do;
//! QUIC's loss recovery takes it from there. quinn's own tokio runtime is used as is:
//! its clock is tokio's, which turmoil drives, so QUIC timers run in simulated time.
//! Packet faults installed on the thread ([`crate::packet_faults`]) act on each
//! datagram sent: dropped, or sent later (and maybe twice) from a task of the host.

use crate::packet_faults::{Fate, SocketFaults};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

type ReadableFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A turmoil UDP socket usable as a quinn endpoint's socket.
pub struct TurmoilUdpSocket {
    socket: Arc<turmoil::net::UdpSocket>,
    readable: Mutex<Option<ReadableFuture>>,
    faults: Option<Mutex<SocketFaults>>,
}

impl TurmoilUdpSocket {
    /// Bind a simulated UDP socket. Must be called inside a turmoil host.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = turmoil::net::UdpSocket::bind(addr).await?;
        Ok(TurmoilUdpSocket {
            socket: Arc::new(socket),
            readable: Mutex::new(None),
            faults: SocketFaults::for_new_socket().map(Mutex::new),
        })
    }
}

impl fmt::Debug for TurmoilUdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurmoilUdpSocket")
            .field("local_addr", &self.socket.local_addr().ok())
            .finish()
    }
}

#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for TurmoilUdpSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if let Some(faults) = &self.faults {
            let fate = match faults.lock() {
                Ok(mut f) => f.fate(
                    transmit.destination,
                    transmit.contents.len(),
                    tokio::time::Instant::now(),
                ),
                Err(_) => Fate::Send,
            };
            match fate {
                Fate::Send => {}
                Fate::Drop => return Ok(()),
                Fate::Later { delay, copies } => {
                    let socket = self.socket.clone();
                    let (contents, to) = (transmit.contents.to_vec(), transmit.destination);
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        for _ in 0..copies {
                            // Refused (a partition, a full buffer): lost on the wire.
                            let _ = socket.try_send_to(&contents, to);
                        }
                    });
                    return Ok(());
                }
            }
        }
        match self
            .socket
            .try_send_to(transmit.contents, transmit.destination)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            Err(_) => Ok(()),
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let Ok(mut readable) = self.readable.lock() else {
            return Poll::Ready(Err(io::Error::other("socket state poisoned")));
        };
        loop {
            match self.socket.try_recv_from(buf) {
                Ok((len, addr)) => {
                    *readable = None;
                    *slot = RecvMeta {
                        addr,
                        len,
                        stride: len,
                        ecn: None,
                        dst_ip: None,
                    };
                    return Poll::Ready(Ok(1));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let socket = self.socket.clone();
            let future =
                readable.get_or_insert_with(|| Box::pin(async move { socket.readable().await }));
            match future.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    *readable = None;
                    result?;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        1
    }

    fn max_receive_segments(&self) -> usize {
        1
    }

    fn may_fragment(&self) -> bool {
        false
    }
}
