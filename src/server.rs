//! The accept loop: connection limit, hyper's HTTP/1 connection over [`ZeroCopyStream`], and
//! graceful shutdown.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::{Config, Mode};
use crate::service::{ConnService, ServerState};
use crate::stats::ServerStats;
use crate::zero_copy::{ConnShared, StreamOptions, ZeroCopyStream, SENDFILE_AVAILABLE};

/// Largest request head hyper accepts (bytes); beyond it the client gets 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most header fields in one request; beyond it the client gets 431.
const MAX_HEADERS: usize = 64;

/// Why the server could not start. Printed for a person: what failed, where, what to do.
#[derive(Debug)]
pub enum StartupError {
    /// The root directory is missing or unreadable.
    Root(PathBuf, io::Error),
    /// The root is not a directory.
    RootNotDirectory(PathBuf),
    /// The address could not be bound.
    Bind(SocketAddr, io::Error),
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Root(path, error) => write!(
                f,
                "cannot serve {}: {error} (pass an existing directory with --root)",
                path.display()
            ),
            StartupError::RootNotDirectory(path) => write!(
                f,
                "cannot serve {}: not a directory (pass a directory with --root)",
                path.display()
            ),
            StartupError::Bind(addr, error) => write!(
                f,
                "cannot listen on {addr}: {error} (is another server using it? try --addr 127.0.0.1:0)"
            ),
        }
    }
}

impl std::error::Error for StartupError {}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: Arc<ServerState>,
}

impl Server {
    /// Checks the root and binds the listening socket.
    pub async fn bind(config: Config) -> Result<Server, StartupError> {
        let root = config
            .root
            .canonicalize()
            .map_err(|e| StartupError::Root(config.root.clone(), e))?;
        if !root.is_dir() {
            return Err(StartupError::RootNotDirectory(config.root.clone()));
        }
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|e| StartupError::Bind(config.addr, e))?;
        let mode = config.mode();
        if mode == Mode::Sendfile && !SENDFILE_AVAILABLE {
            tracing::warn!(
                "sendfile is not available on this platform; mapped chunks are written with writev"
            );
        }
        Ok(Server {
            listener,
            state: Arc::new(ServerState {
                mode,
                root,
                stats: Arc::new(ServerStats::default()),
                config,
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The served root, canonical.
    pub fn root(&self) -> &std::path::Path {
        &self.state.root
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        self.state.mode
    }

    /// Serves until `shutdown` completes, then stops accepting at once and gives in-flight
    /// responses up to `--shutdown-timeout` to finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let Server { listener, state } = self;
        let config = &state.config;
        let graceful = GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(config.max_connections as usize));
        let options = StreamOptions {
            use_sendfile: state.mode == Mode::Sendfile,
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            send_timeout: config.send_timeout,
        };
        let mut builder = http1::Builder::new();
        builder
            // Queue body chunks instead of copying them: the zero-copy path depends on it.
            .writev(true)
            .keep_alive(true)
            .timer(TokioTimer::new())
            .max_buf_size(MAX_HEAD_BYTES.max(8192))
            .max_headers(MAX_HEADERS);
        tokio::pin!(shutdown);

        loop {
            // At the connection limit, stop accepting: new clients wait in the listen backlog.
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Segments are coalesced explicitly (MSG_MORE), so Nagle would only add delay.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set");
            }
            let shared = Arc::new(ConnShared::default());
            let stats = Arc::clone(&state.stats);
            ServerStats::add(&stats.connections_accepted, 1);
            ServerStats::add(&stats.open_connections, 1);
            // Released when the task ends, however it ends (even by a panic, which tokio
            // confines to this task: only this connection dies).
            let slot = ConnectionSlot {
                stats: Arc::clone(&stats),
                _permit: permit,
            };
            let io = ZeroCopyStream::new(tcp, Arc::clone(&shared), stats, options);
            let service = ConnService::new(Arc::clone(&state), shared);
            let connection = graceful.watch(builder.serve_connection(io, service));
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(error) = connection.await {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            });
        }

        drop(listener);
        tracing::info!(
            "shutting down: no new connections; waiting up to {:?} for responses in flight",
            config.shutdown_timeout
        );
        match tokio::time::timeout(config.shutdown_timeout, graceful.shutdown()).await {
            Ok(()) => tracing::info!("all connections finished"),
            Err(_) => tracing::warn!("shutdown timeout: closing the remaining connections"),
        }
    }
}

/// One connection's share of the limits: holds a `--max-connections` permit and keeps the
/// `open_connections` counter right.
struct ConnectionSlot {
    stats: Arc<ServerStats>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.stats
            .open_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
