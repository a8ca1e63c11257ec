//! An HTTP/1.1 connection, plain or over TLS, that lets go of hyper while it is idle.
//!
//! hyper's HTTP/1 connection keeps an 8 KiB read buffer and an 8 KiB write buffer for as long
//! as it lives, idle or not: two thirds of what an idle plain keep-alive connection costs, and
//! over TLS (where rustls keeps its own state beside it) about a third. nginx frees its request
//! buffers as soon as a keep-alive connection goes idle. Here the connection is *parked* once it
//! has waited [`PARK_AFTER`] for a next request with not one byte of it received: hyper's
//! connection is ended without closing the socket (`poll_without_shutdown`, then `into_parts`),
//! and only the stream ([`ParkableStream`]: the [`ZeroCopyStream`] with its socket and timers,
//! ~200 bytes, and over TLS the rustls session on it) and the service are kept. When the socket
//! becomes readable a new hyper connection takes over the same stream; bytes the old one had
//! read but not used are replayed to it first. A new connection starts parked (over TLS: once
//! its handshake is done): hyper is brought in by its first bytes, so a client that connects and
//! says nothing costs no parser either (nginx too allocates its header buffer only then).
//!
//! While parked the stream keeps every duty of a waiting connection: the header timeout (a new
//! connection) or the keep-alive idle timeout, eviction at `--max-connections`, letting go of a
//! kept mapping, and a graceful shutdown closes it at once (as hyper closes an idle connection;
//! over TLS with a `close_notify` alert first).
//!
//! The delay is short next to a person (a page's requests come in bursts a few milliseconds
//! apart and never wait for it; a player's next range request may) and long next to a request
//! on a busy connection, so a loaded server never parks and never pays for a new parser.
//!
//! HTTP/2 connections are not parked: hyper's HTTP/2 connection cannot be taken apart and
//! resumed, and it owns the session's stream state.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio_rustls::server::TlsStream;

use crate::service::ConnService;
use crate::stats::ServerStats;
use crate::zero_copy::{read_replayed, ConnShared, ZeroCopyStream};

/// How long a keep-alive connection waits for a next request before it is parked.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// A stream an HTTP/1.1 connection can be parked on: hyper lets go of it while the connection
/// is idle, and a new hyper connection takes it up again.
pub trait ParkableStream: Read + Write + Unpin {
    /// The TCP stream underneath, with the connection's timers and the state it shares with
    /// its service.
    fn zero_copy(&mut self) -> &mut ZeroCopyStream;

    /// Bytes a finished parser had read but not used: the next reads return them first.
    fn replay(&mut self, bytes: Bytes);

    /// While parked: resolves `Ok` when there is something for hyper to read (a request, the
    /// end, or an error it should report), `Err` when the connection is evicted or its timeout
    /// passes.
    fn poll_parked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl ParkableStream for ZeroCopyStream {
    fn zero_copy(&mut self) -> &mut ZeroCopyStream {
        self
    }

    fn replay(&mut self, bytes: Bytes) {
        ZeroCopyStream::replay(self, bytes);
    }

    fn poll_parked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ZeroCopyStream::poll_parked(self, cx)
    }
}

/// An HTTPS connection that chose HTTP/1.1: the rustls session over the connection's
/// [`ZeroCopyStream`]. Bytes to replay are plaintext, so they are kept here, above TLS (the
/// stream underneath carries ciphertext).
pub struct TlsHttp1Stream {
    tls: TokioIo<TlsStream<TokioIo<ZeroCopyStream>>>,
    replay: Bytes,
}

impl TlsHttp1Stream {
    /// The stream of a connection whose handshake is done.
    pub fn new(tls: TlsStream<TokioIo<ZeroCopyStream>>) -> TlsHttp1Stream {
        TlsHttp1Stream {
            tls: TokioIo::new(tls),
            replay: Bytes::new(),
        }
    }
}

impl ParkableStream for TlsHttp1Stream {
    fn zero_copy(&mut self) -> &mut ZeroCopyStream {
        self.tls.inner_mut().get_mut().0.inner_mut()
    }

    fn replay(&mut self, bytes: Bytes) {
        debug_assert!(self.replay.is_empty());
        self.replay = bytes;
    }

    fn poll_parked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Evicted first, as the plain stream does: plaintext held above the socket must not
        // bring a new parser to a connection that was closed to make room.
        if let Some(evicted) = self.zero_copy().eviction() {
            return Poll::Ready(Err(evicted));
        }
        if !self.replay.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let (tcp, session) = self.tls.inner_mut().get_mut();
        // rustls may hold records it read from the socket but nobody has read yet: decrypted,
        // they are hyper's to read (plaintext, the peer's close_notify, or an error), and the
        // socket underneath would not say so.
        match session.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {}
            _ => return Poll::Ready(Ok(())),
        }
        tcp.inner_mut().poll_parked(cx)
    }
}

impl Read for TlsHttp1Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(evicted) = this.zero_copy().eviction() {
            return Poll::Ready(Err(evicted));
        }
        if read_replayed(&mut this.replay, &mut buf) {
            this.zero_copy().plaintext_arrived();
            return Poll::Ready(Ok(()));
        }
        // Plaintext can come without a socket read (rustls decrypted it earlier): the stream
        // underneath is told, as a socket read would tell it (of bytes, the end or an error),
        // or a pipelined head's second half would wait under the idle timeout instead of the
        // header timeout.
        let read = Pin::new(&mut this.tls).poll_read(cx, buf);
        if read.is_ready() {
            this.zero_copy().plaintext_arrived();
        }
        read
    }
}

impl Write for TlsHttp1Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_shutdown(cx)
    }
}

pin_project_lite::pin_project! {
    /// One HTTP/1.1 connection's whole life, as its task.
    pub struct Http1Connection<Stream, Stop, Hold> {
        phase: Phase<Stream>,
        builder: http1::Builder,
        service: ConnService,
        shared: Arc<ConnShared>,
        stats: Arc<ServerStats>,
        peer: SocketAddr,
        // Resolves when the server begins its graceful shutdown.
        #[pin]
        stop: Stop,
        stopping: bool,
        // Released with the connection (its `--max-connections` slot).
        hold: Hold,
    }
}

enum Phase<Stream> {
    /// hyper serves; `ending` once it was asked to finish (to park, or to stop). Boxed, so that
    /// a parked connection's task is small: the task's size is its largest phase's.
    Serving {
        connection: Box<http1::Connection<Stream, ConnService>>,
        ending: bool,
    },
    /// Only the stream, waiting for bytes.
    Parked(Stream),
    /// hyper is done with the connection: the write side is shut down, as hyper would have.
    ShuttingDown(Stream),
    Done,
}

impl<Stream, Stop, Hold> Http1Connection<Stream, Stop, Hold>
where
    Stream: ParkableStream + Send + 'static,
    Stop: Future<Output = ()>,
{
    /// Serves `stream` with `builder`'s hyper settings until the client leaves, a limit closes
    /// the connection, or `stop` resolves (then the response in flight is finished first).
    pub fn new(
        mut stream: Stream,
        builder: &http1::Builder,
        service: ConnService,
        peer: SocketAddr,
        stop: Stop,
        hold: Hold,
    ) -> Self {
        let tcp = stream.zero_copy();
        tcp.park_when_idle(PARK_AFTER);
        let (shared, stats) = (tcp.shared(), tcp.stats());
        Http1Connection {
            // A new connection starts parked: hyper's parser and buffers are made when the
            // first bytes arrive, so a client that connects and says nothing holds only the
            // socket until the header timeout (or until it is evicted for room), as with nginx.
            phase: Phase::Parked(stream),
            builder: builder.clone(),
            service,
            shared,
            stats,
            peer,
            stop,
            stopping: false,
            hold,
        }
    }
}

/// How a connection that ended with an error is told: a debug line (clients vanish).
pub(crate) fn ended_with_error(peer: &SocketAddr, error: impl fmt::Display) {
    tracing::debug!(%peer, %error, "connection ended with an error");
}

impl<Stream, Stop, Hold> Future for Http1Connection<Stream, Stop, Hold>
where
    Stream: ParkableStream + Send + 'static,
    Stop: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if !*this.stopping && this.stop.poll(cx).is_ready() {
            *this.stopping = true;
        }
        let stopping = *this.stopping;
        // The phase is polled in place and taken out only to change it: it is as large as the
        // stream (a TLS session is over a kilobyte), and a connection is polled several times
        // per request.
        loop {
            match this.phase {
                Phase::Serving { connection, ending } => {
                    if !*ending && (stopping || park_now(this.shared)) {
                        // Idle: hyper closes at once. Mid-response (stopping): after it.
                        Pin::new(&mut **connection).graceful_shutdown();
                        *ending = true;
                    }
                    match connection.poll_without_shutdown(cx) {
                        // The stream may have asked to park during this very poll.
                        Poll::Pending if !*ending && park_now(this.shared) => {
                            Pin::new(&mut **connection).graceful_shutdown();
                            *ending = true;
                        }
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(error)) => {
                            ended_with_error(this.peer, error);
                            *this.phase = Phase::Done;
                            return Poll::Ready(());
                        }
                        Poll::Ready(Ok(())) => {
                            let parking = *ending && !stopping;
                            let Phase::Serving { connection, .. } = take(this.phase) else {
                                return Poll::Ready(());
                            };
                            let parts = connection.into_parts();
                            let mut stream = parts.io;
                            *this.phase = if parking {
                                // Ended because we asked, to park: keep the stream.
                                ServerStats::add(&this.stats.idle_connections_parked, 1);
                                if !parts.read_buf.is_empty() {
                                    stream.replay(parts.read_buf);
                                }
                                Phase::Parked(stream)
                            } else {
                                // Ended on its own (`Connection: close`, HTTP/1.0, the client's
                                // end) or for the graceful stop.
                                Phase::ShuttingDown(stream)
                            };
                        }
                    }
                }
                // Closed at once, as hyper closes an idle connection (over TLS, `close_notify`
                // goes first).
                Phase::Parked(_) if stopping => {
                    if let Phase::Parked(stream) = take(this.phase) {
                        *this.phase = Phase::ShuttingDown(stream);
                    }
                }
                Phase::Parked(stream) => match stream.poll_parked(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(error)) => {
                        ended_with_error(this.peer, error);
                        *this.phase = Phase::Done;
                        return Poll::Ready(());
                    }
                    Poll::Ready(Ok(())) => {
                        let Phase::Parked(mut stream) = take(this.phase) else {
                            return Poll::Ready(());
                        };
                        stream.zero_copy().resume_from_parking();
                        let connection =
                            Box::new(this.builder.serve_connection(stream, this.service.clone()));
                        *this.phase = Phase::Serving {
                            connection,
                            ending: false,
                        };
                    }
                },
                Phase::ShuttingDown(stream) => {
                    match Write::poll_shutdown(Pin::new(stream), cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(error)) => ended_with_error(this.peer, error),
                        Poll::Ready(Ok(())) => {}
                    }
                    *this.phase = Phase::Done;
                    return Poll::Ready(());
                }
                Phase::Done => return Poll::Ready(()),
            }
        }
    }
}

/// The phase, leaving `Done` in its place (only to change it).
fn take<Stream>(phase: &mut Phase<Stream>) -> Phase<Stream> {
    std::mem::replace(phase, Phase::Done)
}

/// Whether the stream asked to park and the connection is still waiting for a request with not
/// one byte of it received (a request that arrived since the ask keeps the parser).
fn park_now(shared: &ConnShared) -> bool {
    shared.take_park_request() && shared.awaits_new_request()
}
