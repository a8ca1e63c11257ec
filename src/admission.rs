//! Who gets a connection slot, after accept and before any byte is read: the per-client limit
//! (`--max-connections-per-ip`, answered `429` on plain HTTP), then `--max-connections`, where a
//! connection that waits for a request it has not started is closed, oldest first, to make room
//! (nginx's reusable connections). A connection holds its [`ConnectionSlot`] until its task
//! ends, however it ends.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::client_limit::ClientGuard;
use crate::error::TOO_MANY_CONNECTIONS;
use crate::state::ServerState;
use crate::stats::ServerStats;
use crate::zero_copy::ConnShared;

/// The server's admission, run by its one accept loop: the slots, the table of connections
/// (on every event loop, so room is made wherever an idle connection is) and the 429 answers
/// in flight.
pub struct Admission {
    state: Arc<ServerState>,
    slots: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    connections: ConnectionTable,
    tls: bool,
}

/// What became of an accepted connection.
pub enum Admitted {
    /// Serve it: it holds `slot` until its task ends; `shared` is its state for the IO and the
    /// service.
    Connection {
        /// The accepted socket.
        tcp: TcpStream,
        /// Its share of the limits.
        slot: ConnectionSlot,
        /// What its IO and its service share.
        shared: Arc<ConnShared>,
    },
    /// Over its client's limit: answered (or just closed) already.
    Refused,
    /// The server is stopping while the connection waited for a slot.
    Stopping,
}

impl Admission {
    /// Admission taking `--max-connections` slots from `slots`.
    pub fn new(state: Arc<ServerState>, slots: Arc<Semaphore>, tls: bool) -> Admission {
        Admission {
            state,
            slots,
            refusing: Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT)),
            connections: ConnectionTable::default(),
            tls,
        }
    }

    /// Decides about `tcp`, just accepted from `peer`; waits for a slot if need be, until `stop`.
    pub async fn admit<S: Future<Output = ()>>(
        &mut self,
        tcp: TcpStream,
        peer: SocketAddr,
        stop: &mut Pin<&mut S>,
    ) -> Admitted {
        let state = &self.state;
        // Over the per-client limit: answer 429 and close, before taking a slot from anyone.
        let client_guard = match &state.client_limit {
            None => None,
            Some(limiter) => match limiter.try_acquire(peer.ip()) {
                Some(guard) => Some(guard),
                None => {
                    state.metrics.refused(429, "too_many_connections");
                    tracing::debug!(%peer, "429: too many connections from this client");
                    refuse_connection(tcp, self.tls, &self.refusing);
                    return Admitted::Refused;
                }
            },
        };
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // At --max-connections: make room by closing connections that wait for a
                // request they have not started, oldest first, as nginx closes keep-alive
                // connections when it runs out of worker_connections. Until a slot frees, the new
                // client waits (and nobody else is accepted), as it would in the listen backlog.
                let acquired = loop {
                    if self.connections.evict_oldest_idle() {
                        ServerStats::add(&state.stats.idle_connections_evicted, 1);
                    }
                    tokio::select! {
                        permit = Arc::clone(&self.slots).acquire_owned() => break permit.ok(),
                        () = tokio::time::sleep(EVICTION_RETRY) => continue,
                        () = stop.as_mut() => break None,
                    }
                };
                match acquired {
                    Some(permit) => permit,
                    None => return Admitted::Stopping,
                }
            }
        };
        let shared = Arc::new(ConnShared::default());
        self.connections
            .track(&shared, state.config.max_connections as usize);
        ServerStats::add(&state.stats.connections_accepted, 1);
        ServerStats::add(&state.stats.open_connections, 1);
        Admitted::Connection {
            tcp,
            slot: ConnectionSlot {
                stats: Arc::clone(&state.stats),
                _permit: permit,
                _client: client_guard,
            },
            shared,
        }
    }
}

/// How often a new client waiting for a slot looks again for an idle connection to close.
const EVICTION_RETRY: Duration = Duration::from_millis(100);

/// The server's connections, oldest first, for closing idle ones under slot pressure (a
/// connection on another `--per-core` loop is closed through its [`ConnShared`], which is
/// thread-safe).
#[derive(Default)]
struct ConnectionTable {
    connections: std::collections::VecDeque<std::sync::Weak<ConnShared>>,
}

impl ConnectionTable {
    /// Adds a new connection; forgets closed ones now and then (at most twice the live count
    /// is kept).
    fn track(&mut self, connection: &Arc<ConnShared>, limit: usize) {
        self.connections.push_back(Arc::downgrade(connection));
        if self.connections.len() > 2 * limit + 64 {
            self.connections.retain(|c| c.strong_count() > 0);
        }
    }

    /// Closes the oldest connection that waits for a request it has not started. Whether one
    /// was found.
    fn evict_oldest_idle(&mut self) -> bool {
        self.connections.retain(|c| c.strong_count() > 0);
        self.connections
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .any(|connection| connection.evict_if_idle())
    }
}

/// One connection's share of the limits (released when dropped, even by a panic, which tokio
/// confines to the connection's task): holds a `--max-connections` permit and keeps the
/// `open_connections` counter right.
pub struct ConnectionSlot {
    stats: Arc<ServerStats>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    /// The connection's place in its client's `--max-connections-per-ip` count.
    _client: Option<ClientGuard>,
}

/// 429 answers being written at once. Beyond it a refused connection is just
/// closed: a flood of refused connections costs at most this many small tasks.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// How long a refused connection may take to receive its 429 and close.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers a connection over its client's limit with [`TOO_MANY_CONNECTIONS`] and closes it,
/// holding no `--max-connections` slot. Over TLS there is no handshake to answer in (that would
/// cost the CPU the limit protects), so the connection is only closed.
fn refuse_connection(tcp: tokio::net::TcpStream, tls: bool, refusing: &Arc<Semaphore>) {
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    if tls {
        return;
    }
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer_429(tcp)).await;
    });
}

/// Writes the 429, then reads what the client sent until it closes: closing a socket with
/// unread bytes sends a reset, which can make the client lose the response it was sent.
async fn answer_429(mut tcp: tokio::net::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(TOO_MANY_CONNECTIONS).await?;
    tcp.shutdown().await?;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match tcp.read(&mut sink).await? {
            0 => break,
            n => drained += n,
        }
    }
    Ok(())
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.stats.open_connections.sub(1);
    }
}
