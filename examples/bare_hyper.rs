//! The floor the request path is measured against: a bare hyper 1.x server on the same runtime
//! that opens, stats, reads and closes the file on every request, and does nothing else (no
//! ranges, no validators, no log). `scripts/bench.py` runs it as `bare-hyper` beside reelserve
//! so the user CPU per small request of both comes from one run.
//!
//! Run: `cargo run --release --example bare_hyper -- ADDR ROOT [WORKERS]`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(root)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_hyper ADDR ROOT [WORKERS]");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
    let workers = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    let root = Arc::new(PathBuf::from(root));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(serve(addr, root))
}

async fn serve(addr: SocketAddr, root: Arc<PathBuf>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let root = Arc::clone(&root);
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(Arc::clone(&root), request));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    root: Arc<PathBuf>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut relative = request.uri().path().trim_start_matches('/');
    if relative.is_empty() {
        relative = "index.html";
    }
    // Blocking, as reelserve's own open is: served from the page cache.
    let body = match std::fs::File::open(root.join(relative)).and_then(|mut file| {
        use std::io::Read;
        let len = file.metadata()?.len();
        let mut bytes = Vec::with_capacity(len as usize);
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }) {
        Ok(bytes) => bytes,
        Err(_) => return Ok(status(StatusCode::NOT_FOUND)),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html"),
    );
    Ok(response)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
