//! The accept loop: connection limit, hyper's HTTP/1 connection over [`ZeroCopyStream`], and
//! graceful shutdown. With `--tls-cert`/`--tls-key` every connection is TLS instead: the
//! handshake runs over the same [`ZeroCopyStream`] (so the head, idle and send timeouts hold
//! for HTTPS too, at the TCP level), and ALPN picks HTTP/2 or HTTP/1.1.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::admission::{Admission, Admitted, ConnectionSlot};
use crate::body::{FileStrategy, ServerBudget, Transport, TLS_CHUNK_SIZE};
use crate::client_limit::ClientLimiter;
use crate::config::{Config, Mode, SchedulerKind};
use crate::cors::CorsPolicy;
use crate::http1_connection::{Http1Connection, TlsHttp1Stream};
use crate::library::MovieIndex;
use crate::metrics::{self, Metrics};
use crate::service::ConnService;
use crate::signed_link::SigningKeys;
use crate::state::ServerState;
use crate::stats::ServerStats;
use crate::tls::{self, TlsError};
use crate::watchdog::WatchdogExecutor;
use crate::zero_copy::{ConnShared, Timeouts, ZeroCopyStream, SENDFILE_AVAILABLE};

/// Largest request head hyper accepts (bytes); beyond it the client gets 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// HTTP/2 streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). A player
/// needs a handful (the video, a poster, subtitles, the movie list); 32 leaves room for a page
/// load while bounding one connection to 32 open files. Their buffers are bounded separately, by
/// the connection's share of the buffer budget (`body::budget`), however many streams there are.
const H2_MAX_CONCURRENT_STREAMS: u32 = 32;

/// HTTP/2 receive windows (per stream and per connection). They bound only what a client may
/// send us, and GET/HEAD have no body: larger windows would only let a client park more unread
/// data here. How fast bodies go out is set by the client's windows (curl, h2load and browsers
/// open theirs wide) and by [`H2_MAX_SEND_BUFFER`].
const H2_RECEIVE_WINDOW: u32 = 1024 * 1024;

/// Bytes of one stream's body that h2 may hold before hyper asks the body for more: one
/// [`TLS_CHUNK_SIZE`] chunk. hyper asks for the next chunk as soon as some of the buffer has gone,
/// so the next `pread` still overlaps the sending; a larger buffer only holds more memory per
/// stream (with two chunks, 64 connections went over the README's peak-RSS target of 32 MiB).
const H2_MAX_SEND_BUFFER: usize = TLS_CHUNK_SIZE;

/// Streams a client may reset before the server has accepted them, at any one time, before the
/// connection is closed with ENHANCE_YOUR_CALM: the defence against "rapid reset" floods
/// (CVE-2023-44487), in which opening and cancelling streams costs the client nothing and the
/// server a request each. Streams the server has accepted cost what their request would have,
/// and at most [`H2_MAX_CONCURRENT_STREAMS`] are accepted at once.
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;

/// Streams this server may reset because a client misbehaved (malformed headers, frames on a
/// closed stream) before it gives up on the connection with a GOAWAY.
const H2_MAX_LOCAL_ERROR_RESETS: usize = 128;

/// Threads of the blocking pool (file reads not in the page cache, listings, movie scans and
/// probes) for the whole server: tokio's default for one runtime. Per-core loops share it out,
/// so the bound does not grow with the number of cores.
const BLOCKING_THREADS: usize = 512;

/// Why the server could not start. Printed for a person: what failed, where, what to do.
#[derive(Debug)]
pub enum StartupError {
    /// The root directory is missing or unreadable.
    Root(PathBuf, io::Error),
    /// The root is not a directory.
    RootNotDirectory(PathBuf),
    /// The root directory cannot be listed (`read_dir` failed): no file under it could be
    /// served either.
    RootUnreadable(PathBuf, io::Error),
    /// The address could not be bound.
    Bind(SocketAddr, io::Error),
    /// The TLS certificate or key could not be used.
    Tls(TlsError),
    /// The signing key file could not be used.
    SigningKeys(crate::signed_link::KeyFileError),
    /// A `--cors-origin` is not an origin.
    Cors(String),
    /// The metrics address could not be bound.
    MetricsBind(SocketAddr, io::Error),
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
            StartupError::RootUnreadable(path, error) => write!(
                f,
                "cannot read the directory {}: {error} (give the server's user read and search \
                 permission on it, e.g. chmod a+rX, or pass another --root)",
                path.display()
            ),
            StartupError::Bind(addr, error) => write!(
                f,
                "cannot listen on {addr}: {error} (is another server using it? try --addr 127.0.0.1:0)"
            ),
            StartupError::Tls(error) => write!(f, "{error}"),
            StartupError::SigningKeys(error) => write!(f, "{error}"),
            StartupError::Cors(message) => f.write_str(message),
            StartupError::MetricsBind(addr, error) => write!(
                f,
                "cannot serve metrics on {addr}: {error} (pick a free port with --metrics-addr)"
            ),
        }
    }
}

impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartupError::Root(_, error)
            | StartupError::RootUnreadable(_, error)
            | StartupError::Bind(_, error)
            | StartupError::MetricsBind(_, error) => Some(error),
            StartupError::Tls(error) => Some(error),
            StartupError::SigningKeys(error) => Some(error),
            StartupError::RootNotDirectory(_) | StartupError::Cors(_) => None,
        }
    }
}

/// A bound, not yet running server.
pub struct Server {
    listener: std::net::TcpListener,
    state: Arc<ServerState>,
    tls: Option<TlsAcceptor>,
    scheduler: Scheduler,
    metrics_listener: Option<std::net::TcpListener>,
}

/// How connections are spread over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheduler {
    /// `--scheduler work-stealing`: one tokio multi-thread runtime; idle threads steal ready
    /// tasks, so a few busy connections still use every core.
    WorkStealing(usize),
    /// `--scheduler per-core` (the default on Unix): one single-threaded event loop per thread,
    /// as nginx runs one worker per core: once placed, a connection lives on one thread, with no
    /// cross-thread wake-ups (its hand-off from the accepting loop is one). The first loop
    /// accepts and hands each connection to the loop serving the fewest (the actix and ntex
    /// model), so four downloads on two loops are two and two, which a kernel hash
    /// (SO_REUSEPORT) does not promise; a loop still cannot hand work to an idle one later.
    PerCore(usize),
}

/// The start-up line saying how connections are spread.
impl std::fmt::Display for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scheduler::WorkStealing(threads) => {
                write!(f, "scheduler: work-stealing, one pool of {threads} workers")
            }
            Scheduler::PerCore(threads) => write!(
                f,
                "scheduler: per-core, {threads} event loops, each connection on the one serving the fewest"
            ),
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("state", &self.state)
            .field("tls", &self.tls.is_some())
            .field("scheduler", &self.scheduler)
            .finish()
    }
}

impl Server {
    /// Checks the root, loads the TLS files, and binds the listening sockets.
    pub fn bind(config: Config) -> Result<Server, StartupError> {
        let root = config
            .root
            .canonicalize()
            .map_err(|e| StartupError::Root(config.root.clone(), e))?;
        if !root.is_dir() {
            return Err(StartupError::RootNotDirectory(config.root.clone()));
        }
        check_root_readable(&root)
            .map_err(|e| StartupError::RootUnreadable(config.root.clone(), e))?;
        crate::body::read_all::BUDGET.set_limit(config.read_all_budget);
        let root_dir = crate::resolve::Root::open(&root)
            .map_err(|e| StartupError::Root(config.root.clone(), e))?;
        let tls = match config.tls_files() {
            Some((cert, key)) => Some(TlsAcceptor::from(
                tls::server_config(cert, key).map_err(StartupError::Tls)?,
            )),
            None => None,
        };
        let threads = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let scheduler = if config.scheduler() == SchedulerKind::PerCore && cfg!(unix) {
            Scheduler::PerCore(threads)
        } else {
            Scheduler::WorkStealing(threads)
        };
        let listener = bind_listener(config.addr, config.tcp_notsent_lowat)
            .map_err(|e| StartupError::Bind(config.addr, e))?;
        let signing = load_signing_keys(&config)?;
        let cors = CorsPolicy::new(&config.cors_origins).map_err(StartupError::Cors)?;
        let metrics_listener = bind_metrics(&config)?;
        let mode = config.mode();
        if mode == Mode::Sendfile && !SENDFILE_AVAILABLE {
            tracing::warn!(
                "sendfile is not available on this platform; mapped chunks are written with writev"
            );
        }
        tracing::info!(
            "{}",
            body_strategies(mode, config.chunk_size as usize, tls.is_some())
        );
        tracing::info!("{scheduler}");
        let stats = Arc::new(ServerStats::default());
        Ok(Server {
            listener,
            scheduler,
            metrics_listener,
            state: Arc::new(ServerState {
                metrics: Arc::new(Metrics::new(
                    Arc::clone(&stats),
                    config.metrics_addr.is_some(),
                )),
                signing,
                cors,
                client_limit: ClientLimiter::new(config.max_connections_per_ip),
                cache: crate::plan::CachePolicy::max_age(config.cache_max_age),
                open_files: config
                    .open_file_cache
                    .map(crate::open_file_cache::OpenFileCache::new),
                buffer_budget: ServerBudget::new(FileStrategy::largest_buffer(
                    mode,
                    config.chunk_size as usize,
                )),
                mode,
                movies: MovieIndex::new(&root, mode.name()),
                root,
                root_dir,
                stats,
                config,
            }),
            tls,
        })
    }

    /// The metrics address actually bound, with `--metrics-addr`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Whether the server speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
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
    /// responses up to `--shutdown-timeout` to finish. Blocks the calling thread, which runs
    /// `shutdown` (signal handling) on a small runtime of its own; connections are served on the
    /// event-loop threads.
    ///
    /// # Errors
    /// A runtime or thread that cannot be started.
    pub fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            listener,
            state,
            tls,
            scheduler,
            metrics_listener,
        } = self;
        let config = &state.config;
        let builders = Arc::new(ProtocolBuilders::new(WatchdogExecutor::new(
            config.send_timeout,
            Arc::clone(&state.stats),
        )));
        let transport = if tls.is_some() {
            Transport::Tls
        } else {
            Transport::Plain
        };
        let (loops, runtimes) = Loops::start(scheduler)?;
        let context = Arc::new(LoopContext {
            loops,
            timeouts: Timeouts {
                header: config.header_timeout,
                idle: config.idle_timeout,
                send: config.send_timeout,
            },
            // Under TLS the stream carries ciphertext: there is nothing to sendfile.
            strategy: FileStrategy::for_connection(
                state.mode,
                config.chunk_size as usize,
                transport,
            ),
            tls: tls.map(|acceptor| {
                Arc::new(TlsServing {
                    acceptor,
                    builders: Arc::clone(&builders),
                    handshake_timeout: config.header_timeout,
                })
            }),
            builders,
            // One pool of --max-connections slots for every loop, taken after accept.
            connection_slots: Arc::new(Semaphore::new(config.max_connections as usize)),
            state: Arc::clone(&state),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let control = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        spawn_control_tasks(&control, &state, metrics_listener);
        match scheduler {
            Scheduler::PerCore(_) => {
                let (threads, mut accepting_ended) =
                    start_loop_threads(runtimes, listener, context, stopped)?;
                control.block_on(async move {
                    tokio::select! {
                        () = shutdown => {}
                        // The accepting loop ended on its own (it could not use its listener,
                        // or it panicked): nothing is served any more, so the process ends
                        // too, with the loop's error, instead of waiting for a signal.
                        _ = accepting_ended.wait_for(|ended| *ended) => {}
                    }
                    let _ = stop.send(true);
                    // Join off the control runtime: a second signal must still be heard.
                    let joined = tokio::task::spawn_blocking(move || {
                        threads.into_iter().try_for_each(|thread| {
                            thread
                                .join()
                                .map_err(|_| io::Error::other("an event loop panicked"))?
                        })
                    })
                    .await;
                    joined.map_err(io::Error::other)?
                })
            }
            Scheduler::WorkStealing(threads) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .max_blocking_threads(BLOCKING_THREADS)
                    .enable_all()
                    .build()?;
                let mut serving =
                    runtime.spawn(accept_loop(listener, context, stop_signal(stopped)));
                control.block_on(async move {
                    tokio::select! {
                        () = shutdown => {}
                        // The accept loop ended on its own: end the process with its error.
                        ended = &mut serving => return ended.map_err(io::Error::other)?,
                    }
                    let _ = stop.send(true);
                    serving.await.map_err(io::Error::other)?
                })
            }
        }
    }
}

/// The threads of the `--per-core` loops, and what says that the accepting one has ended.
type LoopThreads = (
    Vec<std::thread::JoinHandle<io::Result<()>>>,
    tokio::sync::watch::Receiver<bool>,
);

/// Runs each `--per-core` loop on a thread of its own: the first accepts (and serves) until
/// `stopped`; the others serve until it is done.
fn start_loop_threads(
    runtimes: Vec<tokio::runtime::Runtime>,
    listener: std::net::TcpListener,
    context: Arc<LoopContext>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> io::Result<LoopThreads> {
    let (finished, finishing) = tokio::sync::watch::channel(false);
    let mut accepting = Some((listener, finished));
    let mut threads = Vec::with_capacity(runtimes.len());
    for (index, runtime) in runtimes.into_iter().enumerate() {
        let work: Pin<Box<dyn Future<Output = io::Result<()>> + Send>> = match accepting.take() {
            Some((listener, finished)) => {
                let (context, stopped) = (Arc::clone(&context), stopped.clone());
                Box::pin(async move {
                    let result = accept_loop(listener, context, stop_signal(stopped)).await;
                    let _ = finished.send(true);
                    result
                })
            }
            None => {
                let mut finishing = finishing.clone();
                Box::pin(async move {
                    // Also over if the accepting loop is gone (a panic).
                    let _ = finishing.wait_for(|done| *done).await;
                    Ok(())
                })
            }
        };
        let thread = std::thread::Builder::new()
            .name(format!("reelserve-loop-{index}"))
            .spawn(move || runtime.block_on(work))?;
        threads.push(thread);
    }
    Ok((threads, finishing))
}

/// The signing keys of `--signing-key-file`, if given.
fn load_signing_keys(config: &Config) -> Result<Option<Arc<SigningKeys>>, StartupError> {
    let Some(path) = &config.signing_key_file else {
        return Ok(None);
    };
    let keys = SigningKeys::load(path).map_err(StartupError::SigningKeys)?;
    tracing::info!(
        keys = keys.current().len(),
        "signed links required (except {:?}); keys reload on SIGHUP",
        crate::signed_link::EXEMPT_PATHS
    );
    Ok(Some(Arc::new(keys)))
}

/// The metrics listener of `--metrics-addr`, if given: bound at start, so a taken port is a
/// start-up error rather than a silent absence.
fn bind_metrics(config: &Config) -> Result<Option<std::net::TcpListener>, StartupError> {
    match config.metrics_addr {
        Some(addr) => Ok(Some(
            metrics::bind(addr).map_err(|e| StartupError::MetricsBind(addr, e))?,
        )),
        None => Ok(None),
    }
}

/// The server's own work, on the control thread beside signal handling (away from the event
/// loops, alive as long as the server): the metrics listener, key reloads on SIGHUP, and the
/// start-up scan of the movies.
fn spawn_control_tasks(
    control: &tokio::runtime::Runtime,
    state: &Arc<ServerState>,
    metrics_listener: Option<std::net::TcpListener>,
) {
    if let Some(listener) = metrics_listener {
        let metrics = Arc::clone(&state.metrics);
        control.spawn(async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => metrics::serve(listener, metrics).await,
                Err(error) => tracing::error!(%error, "metrics listener unusable"),
            }
        });
    }
    if let Some(keys) = &state.signing {
        control.spawn(crate::signed_link::reload_on_sighup(Arc::clone(keys)));
    }
    // Name every movie browsers cannot start playing until they have fetched its end, with the
    // fix; the scan also fills the movie index before the first request needs it.
    let startup_state = Arc::clone(state);
    control.spawn(async move {
        startup_state.movies.warn_about_slow_starts().await;
    });
}

/// What every event loop shares.
struct LoopContext {
    /// Where accepted connections are served.
    loops: Loops,
    state: Arc<ServerState>,
    tls: Option<Arc<TlsServing>>,
    builders: Arc<ProtocolBuilders>,
    timeouts: Timeouts,
    /// How every connection of this server produces file bytes.
    strategy: FileStrategy,
    /// `--max-connections` slots, shared by every loop.
    connection_slots: Arc<Semaphore>,
}

/// The event loops connections are served on.
enum Loops {
    /// The work-stealing pool: a connection's task is spawned where it was accepted, and any
    /// worker may run it.
    Pool,
    /// `--per-core`: each connection goes to the loop serving the fewest, and stays there.
    PerCore {
        loops: Vec<EventLoop>,
        /// Where the search for the least busy loop starts, moved on each time: ties (all
        /// loops idle at start) go round the loops instead of all to the first.
        next: AtomicUsize,
    },
}

/// One `--per-core` loop, as the accepting loop sees it.
struct EventLoop {
    handle: tokio::runtime::Handle,
    /// Connections it serves now.
    open: Arc<AtomicUsize>,
}

/// A connection's place in its loop's count, given back when its task ends.
struct LoopShare(Arc<AtomicUsize>);

impl Drop for LoopShare {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Loops {
    /// The loops of `scheduler`, and for `--per-core` their runtimes (made here, so that the
    /// accepting loop can hand connections to every loop before each runs on its thread).
    fn start(scheduler: Scheduler) -> io::Result<(Loops, Vec<tokio::runtime::Runtime>)> {
        let Scheduler::PerCore(threads) = scheduler else {
            return Ok((Loops::Pool, Vec::new()));
        };
        let runtimes = (0..threads)
            .map(|_| {
                tokio::runtime::Builder::new_current_thread()
                    .max_blocking_threads((BLOCKING_THREADS / threads).max(1))
                    .enable_all()
                    .build()
            })
            .collect::<io::Result<Vec<_>>>()?;
        let loops = runtimes
            .iter()
            .map(|runtime| EventLoop {
                handle: runtime.handle().clone(),
                open: Arc::default(),
            })
            .collect();
        Ok((
            Loops::PerCore {
                loops,
                next: AtomicUsize::new(0),
            },
            runtimes,
        ))
    }

    /// The loop the next connection goes to (its index; 0 is the accepting loop), and its
    /// place there; `None` on the pool.
    fn place(&self) -> Option<(usize, &tokio::runtime::Handle, LoopShare)> {
        let Loops::PerCore { loops, next } = self else {
            return None;
        };
        let start = next.fetch_add(1, Ordering::Relaxed);
        let index = (0..loops.len())
            .map(|i| (start + i) % loops.len())
            .min_by_key(|&index| loops[index].open.load(Ordering::Relaxed))?;
        let chosen = &loops[index];
        chosen.open.fetch_add(1, Ordering::Relaxed);
        Some((index, &chosen.handle, LoopShare(Arc::clone(&chosen.open))))
    }
}

/// Resolves when the control thread says stop (or is gone).
async fn stop_signal(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// One event loop: accepts on its listener until `stop`, serves each connection in a task,
/// then shuts down gracefully.
async fn accept_loop(
    listener: std::net::TcpListener,
    context: Arc<LoopContext>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let state = &context.state;
    let config = &state.config;
    // HTTP/2 connections are hyper-util's to shut down; HTTP/1.1 ones, plain or over TLS, are
    // ours (they are not always a hyper connection, see `Http1Connection`): each holds a
    // receiver, told when to stop, and the shutdown waits until every receiver is gone.
    let graceful = GracefulShutdown::new();
    let (http1_stop, http1_stopping) = tokio::sync::watch::channel(());
    let mut admission = Admission::new(
        Arc::clone(state),
        Arc::clone(&context.connection_slots),
        context.tls.is_some(),
    );
    tokio::pin!(stop);
    loop {
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
            () = &mut stop => break,
        };
        let (tcp, slot, shared) = match admission.admit(tcp, peer, &mut stop).await {
            Admitted::Connection { tcp, slot, shared } => (tcp, slot, shared),
            Admitted::Refused => continue,
            Admitted::Stopping => break,
        };
        serve_admitted(
            &context,
            tcp,
            (slot, shared, peer),
            &http1_stopping,
            &graceful,
        );
    }

    drop(listener);
    tracing::info!(
        "shutting down: no new connections; waiting up to {:?} for responses in flight",
        config.shutdown_timeout
    );
    drop(http1_stopping);
    let _ = http1_stop.send(());
    let all_finished = async {
        tokio::join!(graceful.shutdown(), http1_stop.closed());
    };
    match tokio::time::timeout(config.shutdown_timeout, all_finished).await {
        Ok(()) => tracing::info!("all connections finished"),
        Err(_) => tracing::warn!("shutdown timeout: closing the remaining connections"),
    }
    Ok(())
}

/// Serves an admitted connection in a task of its own: where it was accepted on the pool, on
/// the least busy loop with `--per-core`. `http1_stopping` and `graceful` are how the accepting
/// loop's shutdown reaches it (HTTP/1.1 and HTTP/2 connections).
fn serve_admitted(
    context: &Arc<LoopContext>,
    tcp: tokio::net::TcpStream,
    (slot, shared, peer): (ConnectionSlot, Arc<ConnShared>, SocketAddr),
    http1_stopping: &tokio::sync::watch::Receiver<()>,
    graceful: &GracefulShutdown,
) {
    let state = &context.state;
    // On another loop, the connection is made inside that loop's runtime: its socket and its
    // timers register with that loop's reactor and clock, and its task runs only there. On the
    // accepting loop (index 0) it stays where it is.
    let (handle, share) = match context.loops.place() {
        None => (None, None),
        Some((index, handle, share)) => {
            tracing::debug!(%peer, event_loop = index, "connection placed");
            ((index != 0).then_some(handle), Some(share))
        }
    };
    let _entered = handle.map(|handle| handle.enter());
    let tcp = match handle {
        None => tcp,
        Some(_) => match tcp.into_std().and_then(tokio::net::TcpStream::from_std) {
            Ok(tcp) => tcp,
            Err(error) => {
                tracing::debug!(%peer, %error, "connection lost on its way to its loop");
                return;
            }
        },
    };
    // Segments are coalesced explicitly (MSG_MORE), so Nagle would only add delay.
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY not set");
    }
    let io = ZeroCopyStream::new(
        tcp,
        Arc::clone(&shared),
        Arc::clone(&state.stats),
        context.timeouts,
        context.strategy,
    );
    let service = ConnService::new(
        Arc::clone(state),
        Arc::clone(&shared),
        context.strategy,
        peer,
    );
    // `still_open` is held until the connection ends, which is what the shutdown waits for.
    let stop = StopSignal::new(http1_stopping);
    let still_open = http1_stopping.clone();
    match &context.tls {
        None => spawn_on(
            handle,
            Http1Connection::new(
                io,
                &context.builders.http1,
                service,
                peer,
                stop,
                (slot, still_open, share),
            ),
        ),
        Some(tls) => {
            let (tls, watcher) = (Arc::clone(tls), graceful.watcher());
            let http1 = Http1Stop { stop, still_open };
            spawn_on(handle, async move {
                let _held = (slot, share);
                tls.serve(io, service, shared, (watcher, http1), peer).await;
            });
        }
    }
}

/// Resolves when the accepting loop's graceful shutdown begins (its watch channel is told, or
/// is gone). An HTTP/1.1 connection polls it on each of its polls, several per request, so after
/// the first poll, which registers the connection's task with the channel, a poll is one atomic
/// load: tokio's `changed()` future takes the channel's waiter lock on every poll to refresh its
/// waker, a lock every connection of the server would share.
struct StopSignal {
    /// Polled once; the channel wakes the task through it.
    registration: Pin<Box<dyn Future<Output = ()> + Send>>,
    registered: bool,
    /// Looked at on every later poll.
    channel: tokio::sync::watch::Receiver<()>,
}

impl StopSignal {
    fn new(channel: &tokio::sync::watch::Receiver<()>) -> StopSignal {
        let mut registered = channel.clone();
        StopSignal {
            // Unconstrained: with the task's coop budget spent, `changed()` would return
            // `Pending` without registering, and this one poll would be wasted for good.
            registration: Box::pin(tokio::task::unconstrained(async move {
                let _ = registered.changed().await;
            })),
            registered: false,
            channel: channel.clone(),
        }
    }
}

impl Future for StopSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if !this.registered {
            this.registered = true;
            return this.registration.as_mut().poll(cx);
        }
        // Told (a new value) or gone (an error): either way, stop.
        match this.channel.has_changed() {
            Ok(false) => Poll::Pending,
            Ok(true) | Err(_) => Poll::Ready(()),
        }
    }
}

/// How the graceful shutdown reaches an HTTPS connection that turns out to speak HTTP/1.1 (see
/// [`accept_loop`]).
struct Http1Stop<Stop> {
    stop: Stop,
    still_open: tokio::sync::watch::Receiver<()>,
}

/// Spawns `task` on `handle`'s runtime, or on the current one.
fn spawn_on<F>(handle: Option<&tokio::runtime::Handle>, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    match handle {
        Some(handle) => drop(handle.spawn(task)),
        None => drop(tokio::spawn(task)),
    }
}

/// Lists the root's first entry: a root the server may not read would otherwise start fine and
/// then answer every request with 403.
fn check_root_readable(root: &std::path::Path) -> io::Result<()> {
    if let Some(entry) = std::fs::read_dir(root)?.next() {
        entry?;
    }
    Ok(())
}

/// Binds the listening socket, with `--tcp-notsent-lowat` (0: the system's setting). Accepted
/// sockets inherit the listener's TCP options, so the limit costs no system call per connection.
fn bind_listener(addr: SocketAddr, notsent_lowat: u32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std and tokio do: a restarted server can bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if notsent_lowat > 0 {
        if let Err(error) = limit_unsent_bytes(&socket, notsent_lowat) {
            tracing::warn!(%error, "TCP_NOTSENT_LOWAT not set; sockets queue what the system allows");
        }
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Caps the bytes a socket holds that the network has not taken yet (`TCP_NOTSENT_LOWAT`): a
/// write waits until fewer remain. On loopback this matters for speed: with megabytes queued,
/// the client's acknowledgements release them, so the client's CPU delivers the server's
/// segments; with a short queue the server's own `sendfile` does.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn limit_unsent_bytes(socket: &socket2::Socket, bytes: u32) -> io::Result<()> {
    socket.set_tcp_notsent_lowat(bytes)
}

/// Elsewhere the option is not offered: sockets queue what the system allows.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn limit_unsent_bytes(_socket: &socket2::Socket, _bytes: u32) -> io::Result<()> {
    Ok(())
}

/// hyper's connection settings, made once: HTTP/1.1 (plain, or over TLS by ALPN) and HTTP/2
/// (over TLS by ALPN).
struct ProtocolBuilders {
    /// HTTP/1.1 uses hyper's own HTTP/1 connection rather than hyper-util's `auto` one, whose
    /// future has room for an HTTP/2 connection too (memory every connection would pay, idle
    /// or not), and which cannot be taken apart to park an idle connection.
    http1: hyper::server::conn::http1::Builder,
    http2: auto::Builder<WatchdogExecutor>,
}

impl ProtocolBuilders {
    /// `streams` spawns HTTP/2 stream tasks (under the send-timeout watchdog).
    fn new(streams: WatchdogExecutor) -> ProtocolBuilders {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            // Queue body chunks instead of copying them: the zero-copy path depends on it.
            .writev(true)
            .keep_alive(true)
            // ZeroCopyStream owns the header, idle and send timeouts. hyper's header timer (30 s
            // by default once a timer is set) would run beside them, restart on every request
            // and close idle keep-alive connections at 30 s whatever --idle-timeout says;
            // without a timer it is off.
            .header_read_timeout(None)
            // At most 100 header fields (beyond them, 431): hyper's default, deliberately not
            // set. An explicit `max_headers` makes hyper fill a header array of that length on
            // every request (a visible share of a small request's instructions); its default
            // array is left uninitialised.
            .max_buf_size(MAX_HEAD_BYTES.max(8192));
        let mut builder = auto::Builder::new(streams);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
            .initial_stream_window_size(H2_RECEIVE_WINDOW)
            .initial_connection_window_size(H2_RECEIVE_WINDOW)
            .adaptive_window(false)
            .max_send_buf_size(H2_MAX_SEND_BUFFER)
            .max_header_list_size(MAX_HEAD_BYTES as u32)
            .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
            .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
            // No keep-alive pings: the ZeroCopyStream under TLS already closes idle, stalled and
            // silent connections, as it does for plain HTTP/1.1, and the watchdog executor
            // resets streams that make no progress (a peer that answers PINGs but never opens
            // its window would pass any ping check).
            .keep_alive_interval(None::<Duration>);
        ProtocolBuilders {
            http1,
            http2: builder.http2_only(),
        }
    }
}

/// What a TLS connection needs after accept.
struct TlsServing {
    acceptor: TlsAcceptor,
    builders: Arc<ProtocolBuilders>,
    handshake_timeout: Duration,
}

impl TlsServing {
    /// Handshake (bounded by `--header-timeout`), then HTTP/2 if the client chose `h2` by ALPN,
    /// else HTTP/1.1. A client that sends garbage or plain HTTP fails the handshake and is
    /// closed; nobody else notices.
    async fn serve<Stop: Future<Output = ()>>(
        &self,
        io: ZeroCopyStream,
        service: ConnService,
        shared: Arc<ConnShared>,
        (watcher, http1): (Watcher, Http1Stop<Stop>),
        peer: SocketAddr,
    ) {
        let handshake = self.acceptor.accept(TokioIo::new(io));
        let stream = match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed; closing");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timeout; closing");
                return;
            }
        };
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            drop(http1);
            shared.set_multiplexed();
            // Boxed: this future is every TLS connection's task, and an HTTP/1.1 connection,
            // parked most of its life, should not carry room for an HTTP/2 one.
            Box::pin(ServedConnection {
                connection: watcher.watch(
                    self.builders
                        .http2
                        .serve_connection(TokioIo::new(stream), service),
                ),
                peer,
            })
            .await;
            return;
        }
        drop(watcher);
        let Http1Stop { stop, still_open } = http1;
        Http1Connection::new(
            TlsHttp1Stream::new(stream),
            &self.builders.http1,
            service,
            peer,
            stop,
            still_open,
        )
        .await;
    }
}

pin_project_lite::pin_project! {
    /// A TLS connection served to its end. hyper's connection future is polled in place: an
    /// `async fn` taking it would store it twice, once as the argument and once as the future
    /// being awaited (twice the memory, for the life of the connection).
    struct ServedConnection<F> {
        #[pin]
        connection: F,
        peer: SocketAddr,
    }
}

impl<F, E> Future for ServedConnection<F>
where
    F: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if let Err(error) = ready!(this.connection.poll(cx)) {
            crate::http1_connection::ended_with_error(this.peer, error);
        }
        Poll::Ready(())
    }
}

/// The start-up line saying how each protocol sends file bodies.
fn body_strategies(mode: Mode, chunk_size: usize, tls: bool) -> String {
    if !tls {
        return format!(
            "file bodies: plain HTTP/1.1: {}; HTTPS: off (no --tls-cert/--tls-key)",
            mode.name()
        );
    }
    let kernel_tls = match tls::ktls_available() {
        Ok(()) => "the kernel offers kernel TLS, but reelserve does not hand it keys yet".into(),
        Err(reason) => format!("kernel TLS unavailable: {reason}"),
    };
    format!(
        "file bodies: plain HTTP/1.1: {}; HTTPS (h1/h2): {} ({kernel_tls})",
        mode.name(),
        FileStrategy::for_connection(mode, chunk_size, Transport::Tls),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limit is set once, on the listener: this checks the kernel hands it down to every
    /// accepted socket, and that 0 leaves the system's setting.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn accepted_sockets_inherit_the_notsent_limit_from_the_listener() {
        let accepted_limit = |notsent_lowat: u32| {
            let listener = bind_listener("127.0.0.1:0".parse().unwrap(), notsent_lowat).unwrap();
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (accepted, _) = listener.accept().unwrap();
            let limit = socket2::SockRef::from(&accepted)
                .tcp_notsent_lowat()
                .unwrap();
            drop(client);
            limit
        };
        assert_eq!(accepted_limit(256 * 1024), 256 * 1024);
        // Unset, a socket reports 0, which the kernel reads as "use net.ipv4.tcp_notsent_lowat".
        assert_eq!(accepted_limit(0), 0);
    }

    #[test]
    fn a_root_that_cannot_be_listed_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_root_readable(dir.path()).is_ok());
        std::fs::write(dir.path().join("movie.mp4"), b"x").unwrap();
        assert!(check_root_readable(dir.path()).is_ok());
        // read_dir fails on what is not a directory (tests run as root, who may list even a
        // mode-000 directory; tests/limits.rs drops privileges for that case).
        let error = check_root_readable(&dir.path().join("movie.mp4")).unwrap_err();
        let message = StartupError::RootUnreadable(dir.path().join("movie.mp4"), error).to_string();
        assert!(
            message.starts_with("cannot read the directory "),
            "{message}"
        );
        assert!(message.contains("chmod a+rX"), "{message}");
        assert_eq!(message.lines().count(), 1);
    }
}
