//! An HTTP/2 client over TLS from the `h2` crate, for what polite clients never do: hold windows
//! shut, refuse to read, reset streams mid-request, or ping an idle connection.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

/// The client side of one HTTP/2 connection.
pub type H2Connection = h2::client::Connection<TlsStream<TcpStream>, Bytes>;

/// Connects to `addr` with TLS (trusting `cert`, offering only `h2`) and does the HTTP/2
/// handshake with `builder`'s settings. The caller drives the returned connection.
pub async fn connect(
    addr: SocketAddr,
    cert: &Path,
    builder: &h2::client::Builder,
) -> (h2::client::SendRequest<Bytes>, H2Connection) {
    let tls = tls_connect(addr, cert).await;
    builder
        .handshake::<_, Bytes>(tls)
        .await
        .expect("HTTP/2 handshake")
}

/// How the client's socket misbehaves below HTTP/2.
#[derive(Debug, Clone, Default)]
pub struct Socket {
    /// SO_RCVBUF for the client socket (small: the server's sends block sooner).
    pub receive_buffer: Option<u32>,
    /// Once set, the client never reads from the socket again (but still writes).
    pub stop_reading: Option<Arc<AtomicBool>>,
}

/// A client connection whose socket behaves as `socket` says.
pub type StallingConnection = h2::client::Connection<Stalling<TlsStream<TcpStream>>, Bytes>;

/// Like [`connect`], over a socket that misbehaves as `socket` says.
pub async fn connect_stalling(
    addr: SocketAddr,
    cert: &Path,
    builder: &h2::client::Builder,
    socket: Socket,
) -> (h2::client::SendRequest<Bytes>, StallingConnection) {
    let tcp = TcpSocket::new_v4().expect("socket");
    if let Some(size) = socket.receive_buffer {
        tcp.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    let tcp = tcp.connect(addr).await.expect("connect");
    let tls = tls_over(tcp, cert).await;
    let stalling = Stalling {
        inner: tls,
        stop_reading: socket.stop_reading.unwrap_or_default(),
    };
    builder
        .handshake::<_, Bytes>(stalling)
        .await
        .expect("HTTP/2 handshake")
}

/// An IO that stops reading for good once its flag is set.
pub struct Stalling<T> {
    inner: T,
    stop_reading: Arc<AtomicBool>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Stalling<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.stop_reading.load(Ordering::Acquire) {
            // Never woken: this client has stopped reading.
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stalling<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Pauses and resumes a [`Pausable`] connection's reading, and counts the bytes it has read.
#[derive(Default)]
pub struct ReadControl {
    paused: AtomicBool,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
    bytes_read: std::sync::atomic::AtomicU64,
}

impl ReadControl {
    /// From the next read on, the client reads nothing (it still writes).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Reads again, waking the connection if it waits on a paused read.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        if let Some(waker) = self.waker.lock().expect("waker").take() {
            waker.wake();
        }
    }

    /// Bytes read from the socket so far (TLS records, before decryption).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Acquire)
    }
}

/// An IO whose reading a [`ReadControl`] pauses and resumes.
pub struct Pausable<T> {
    inner: T,
    control: Arc<ReadControl>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Pausable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.control.paused.load(Ordering::Acquire) {
            *self.control.waker.lock().expect("waker") = Some(cx.waker().clone());
            // resume() may have run between the check and the store.
            if self.control.paused.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.control.bytes_read.fetch_add(read, Ordering::AcqRel);
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Pausable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Like [`connect`], over a socket with a receive buffer of `receive_buffer` bytes whose reads
/// (below TLS, so bytes are counted as they arrive) the returned [`ReadControl`] pauses.
pub async fn connect_pausable(
    addr: SocketAddr,
    cert: &Path,
    builder: &h2::client::Builder,
    receive_buffer: u32,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::Connection<TlsStream<Pausable<TcpStream>>, Bytes>,
    Arc<ReadControl>,
) {
    let tcp = TcpSocket::new_v4().expect("socket");
    tcp.set_recv_buffer_size(receive_buffer).expect("SO_RCVBUF");
    let tcp = tcp.connect(addr).await.expect("connect");
    let control = Arc::new(ReadControl::default());
    let pausable = Pausable {
        inner: tcp,
        control: Arc::clone(&control),
    };
    let tls = tls_over_io(pausable, cert).await;
    let (send, connection) = builder
        .handshake::<_, Bytes>(tls)
        .await
        .expect("HTTP/2 handshake");
    (send, connection, control)
}

/// A TLS stream to `addr` that negotiated `h2`.
pub async fn tls_connect(addr: SocketAddr, cert: &Path) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tls_over(tcp, cert).await
}

/// TLS (trusting `cert`, offering only `h2`) over `tcp`.
async fn tls_over(tcp: TcpStream, cert: &Path) -> TlsStream<TcpStream> {
    tls_over_io(tcp, cert).await
}

/// TLS (trusting `cert`, offering only `h2`) over any IO.
async fn tls_over_io<IO>(tcp: IO, cert: &Path) -> TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_file(cert).expect("read cert"))
        .expect("add cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

/// `GET https://localhost{path}` as an HTTP/2 request.
pub fn get(path: &str) -> http::Request<()> {
    http::Request::builder()
        .method("GET")
        .uri(format!("https://localhost{path}"))
        .body(())
        .expect("request")
}
