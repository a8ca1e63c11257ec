//! The hyper service: method check, routing, and the response head for every request.
//!
//! The decisions are made by the sans-IO modules ([`crate::conditional`] for 304/412 and
//! If-Range, [`crate::range`] for 200/206/416, [`crate::resolve`] for paths); this module opens
//! files, asks them, and turns the answers into a head and a [`ResponseBody`] built for the
//! `--mode` in force.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::access;
use crate::body::{read_all, FileStrategy, ResponseBody, Segment};
use crate::conditional::{self, MethodKind, Precondition, RequestPreconditions};
use crate::config::{Config, Mode};
use crate::error::ServeError;
use crate::pages;
use crate::range::{self, ByteRange, Resolved};
use crate::representation::{Content, Representation};
use crate::resolve::{self, DecodedPath, Opened};
use crate::stats::ServerStats;
use crate::zero_copy::ConnShared;

/// Largest mapped window in `sendfile` mode. The pages are never touched, so the size only
/// bounds address space; 64 MiB keeps the number of `mmap` calls per GiB small.
const SENDFILE_WINDOW: usize = 64 * 1024 * 1024;

/// Largest mapped window in `mmap` mode: `writev` faults the pages in, so this bounds how much
/// of a file one connection keeps resident.
const MMAP_WINDOW: usize = 2 * 1024 * 1024;

/// Buffer size for file bytes on TLS connections in `sendfile` and `mmap` modes. Large, because
/// small copies halve throughput (DESIGN.md §3) and a chunk that misses the page cache costs a
/// blocking-pool round trip; not larger, because a connection holds up to two (one being sent,
/// the next being read) and 64 connections must stay within the 32 MiB peak-RSS budget. Measured
/// with scripts/compare-https.sh S2 (64 clients) when every chunk still went through the pool:
/// 256 KiB peaked at 31.7 MiB over HTTP/1.1 and 36.7 MiB over HTTP/2, 128 KiB at 29.1 and
/// 29.6 MiB, with no throughput difference above the noise of the shared 2-core machine. Reading
/// cached chunks in place (no thread per chunk) then brought 128 KiB to 10-20 MiB.
pub const TLS_CHUNK_SIZE: usize = 128 * 1024;

/// Prefix of the server's own endpoints (kept out of the way of files).
pub const API_PREFIX: &str = "/_reelserve/";

/// What carries a connection's bytes: it decides whether mapped file views may be handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP/1.1 over [`crate::zero_copy::ZeroCopyStream`]: mapped chunks leave with
    /// `sendfile` (or `writev`), and user space never reads their pages.
    Plain,
    /// TLS, HTTP/1.1 or HTTP/2: every body byte is encrypted (and for h2 framed) in user space.
    /// Reading a mapped page there raises SIGBUS if the file was truncated under it, so file
    /// bytes are read with `pread` instead (DESIGN.md §3 point 4).
    Tls,
}

/// How a connection turns the file ranges of a response into body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileReads {
    /// Every range read into memory before the response starts (`read-all`).
    ReadAll,
    /// `pread` into buffers of this many bytes, always on the blocking pool (`chunked`, as Node's
    /// `createReadStream` reads on libuv's pool).
    PoolPread(usize),
    /// `pread` into buffers of this many bytes; bytes in the page cache are read in place on the
    /// async worker (`preadv2(RWF_NOWAIT)`, as nginx reads), only the rest on the blocking pool.
    Pread(usize),
    /// Mapped windows of at most this many bytes, which the connection IO sends with `sendfile`
    /// (or writes with `writev`).
    Mapped(usize),
}

impl FileReads {
    /// The `--mode` in force, on `transport`: `sendfile` and `mmap` become large `pread` chunks
    /// on TLS; `chunked` (with `--chunk-size`) and `read-all` are the same everywhere.
    pub fn choose(mode: Mode, chunk_size: usize, transport: Transport) -> FileReads {
        match (mode, transport) {
            (Mode::ReadAll, _) => FileReads::ReadAll,
            (Mode::Chunked, _) => FileReads::PoolPread(chunk_size),
            (Mode::Sendfile | Mode::Mmap, Transport::Tls) => FileReads::Pread(TLS_CHUNK_SIZE),
            (Mode::Mmap, Transport::Plain) => FileReads::Mapped(MMAP_WINDOW),
            (Mode::Sendfile, Transport::Plain) => FileReads::Mapped(SENDFILE_WINDOW),
        }
    }
}

impl std::fmt::Display for FileReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = |bytes: usize| match bytes {
            b if b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
            b if b % 1024 == 0 => format!("{} KiB", b / 1024),
            b => format!("{b} bytes"),
        };
        match *self {
            FileReads::ReadAll => f.write_str("read-all (whole ranges read into memory)"),
            FileReads::PoolPread(n) => {
                write!(f, "pread chunks of {} on the blocking pool", size(n))
            }
            FileReads::Pread(n) => write!(
                f,
                "pread chunks of {} (page-cache hits read in place)",
                size(n)
            ),
            FileReads::Mapped(n) => write!(f, "mapped windows of {}", size(n)),
        }
    }
}

/// State shared by all connections of a server.
#[derive(Debug)]
pub struct ServerState {
    /// The configuration the server was started with.
    pub config: Config,
    /// The mode in force.
    pub mode: Mode,
    /// The root directory, canonical.
    pub root: PathBuf,
    /// The root, opened for resolving request paths beneath it.
    pub root_dir: resolve::Root,
    /// Counters.
    pub stats: Arc<ServerStats>,
    /// Signing keys, when every request needs a signed link (`--signing-key-file`).
    pub signing: Option<Arc<crate::signed_link::SigningKeys>>,
    /// The CORS policy (`--cors-origin`), if any.
    pub cors: Option<crate::cors::CorsPolicy>,
    /// Connections per client (`--max-connections-per-ip`), if limited.
    pub client_limit: Option<Arc<crate::client_limit::ClientLimiter>>,
    /// Prometheus metrics (served with `--metrics-addr`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The service for one connection.
#[derive(Debug, Clone)]
pub struct ConnService {
    state: Arc<ServerState>,
    conn: Arc<ConnShared>,
    transport: Transport,
    client: Option<std::net::IpAddr>,
}

impl ConnService {
    /// A service for a new plain HTTP/1.1 connection.
    pub fn new(state: Arc<ServerState>, conn: Arc<ConnShared>) -> ConnService {
        ConnService::over(state, conn, Transport::Plain)
    }

    /// A service for a new connection on `transport`.
    pub fn over(
        state: Arc<ServerState>,
        conn: Arc<ConnShared>,
        transport: Transport,
    ) -> ConnService {
        ConnService {
            state,
            conn,
            transport,
            client: None,
        }
    }

    /// The same service, for a connection from `client` (signed links may be bound to it).
    pub fn for_client(mut self, client: std::net::IpAddr) -> ConnService {
        self.client = Some(client);
        self
    }
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(request).await) })
    }
}

impl ConnService {
    async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody> {
        let started = Instant::now();
        self.conn.request_started();
        ServerStats::add(&self.state.stats.requests, 1);
        let method = request.method().clone();
        let version = request.version();
        let path = request.uri().path().to_owned();

        let (mut response, signed) = match access::admit(&self.state, &request, self.client) {
            access::Gate::Answer(response) => (*response, false),
            access::Gate::Pass { signed } => match self.route(&request).await {
                Ok(response) => (response, signed),
                Err(error) => (error.into_response(), signed),
            },
        };
        access::finish(&self.state, request.headers(), signed, &mut response);
        self.state
            .metrics
            .response(response.status(), started.elapsed());
        response
            .headers_mut()
            .insert(header::SERVER, HeaderValue::from_static("reelserve"));
        if response.status() == StatusCode::PARTIAL_CONTENT {
            ServerStats::add(&self.state.stats.responses_206, 1);
        }

        // The access log line is written when the body is done (or abandoned), so it can say
        // how many bytes went out and whether the response completed.
        let status = response.status().as_u16();
        let conn = Arc::clone(&self.conn);
        let metrics = Arc::clone(&self.state.metrics);
        response
            .body_mut()
            .on_finished(Box::new(move |bytes, complete| {
                conn.request_finished();
                if !complete {
                    metrics.cut_short();
                }
                tracing::info!(
                    target: "reelserve::access",
                    %method,
                    path = %path,
                    ?version,
                    status,
                    bytes,
                    complete,
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                );
            }));
        response
    }

    async fn route<B>(&self, request: &Request<B>) -> Result<Response<ResponseBody>, ServeError> {
        let method = match *request.method() {
            Method::GET => MethodKind::Get,
            Method::HEAD => MethodKind::Head,
            _ => return Err(ServeError::method_not_allowed()),
        };
        let path = request.uri().path();
        let root = &self.state.root;

        if let Some(endpoint) = path.strip_prefix(API_PREFIX) {
            return self.api(method, endpoint).await;
        }
        let representation = match path {
            // Parity with the tutorial's Express route: the default movie, fully range-capable.
            "/video" => {
                let root_for_listing = root.clone();
                let movie = blocking(move || pages::default_movie_path(&root_for_listing)).await?;
                let movie = movie.ok_or_else(ServeError::not_found)?;
                match self.open_beneath(&movie)? {
                    Opened::File {
                        file,
                        metadata,
                        path,
                    } => self.representation(file, &metadata, &path),
                    Opened::Directory(_) => return Err(ServeError::not_found()),
                }
            }
            "/" => self.open_front_page()?,
            _ => {
                let decoded = resolve::decode_path(path)?;
                if is_hidden(&decoded) {
                    return Err(ServeError::not_found());
                }
                match self.open_beneath(decoded.relative()) {
                    Ok(Opened::File {
                        file,
                        metadata,
                        path,
                    }) => self.representation(file, &metadata, &path),
                    Ok(Opened::Directory(directory)) => {
                        return self.directory(method, request, &decoded, directory).await
                    }
                    Err(resolve::PathError::NotFound)
                        if decoded.relative() == Path::new("html/movie_player.html") =>
                    {
                        builtin_player()
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        };
        self.respond(method, request.headers(), representation)
            .await
    }

    /// `/`: the root's `index.html`, else the player page on disk, else the built-in player.
    fn open_front_page(&self) -> Result<Representation, ServeError> {
        for candidate in ["index.html", "html/movie_player.html"] {
            match self.open_beneath(Path::new(candidate)) {
                Ok(Opened::File {
                    file,
                    metadata,
                    path,
                }) => return Ok(self.representation(file, &metadata, &path)),
                Ok(Opened::Directory(_)) | Err(resolve::PathError::NotFound) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(builtin_player())
    }

    /// Opens a path relative to the root (one `openat2` on Linux; see
    /// [`resolve::open_beneath`]). Blocking, but served from the dentry and page caches as
    /// nginx's own `open` + `fstat` are.
    fn open_beneath(&self, relative: &Path) -> Result<Opened, resolve::PathError> {
        resolve::open_beneath(&self.state.root_dir, relative)
    }

    fn representation(
        &self,
        file: std::fs::File,
        metadata: &std::fs::Metadata,
        path: &Path,
    ) -> Representation {
        Representation::from_open_file(file, metadata, path, self.state.config.etag_inode)
    }

    async fn directory<B>(
        &self,
        method: MethodKind,
        request: &Request<B>,
        decoded: &DecodedPath,
        directory: PathBuf,
    ) -> Result<Response<ResponseBody>, ServeError> {
        if !decoded.has_trailing_slash() {
            // Relative links in a directory's page resolve against the URL, so it must end in
            // '/' (as nginx and Apache redirect).
            let mut location = directory_location(request.uri().path());
            // The query goes along: it may be the signed link that admitted this request.
            if let Some(query) = request.uri().query() {
                location.push('?');
                location.push_str(query);
            }
            let mut response = Response::new(ResponseBody::empty());
            *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
            response.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&location).map_err(|_| ServeError::not_found())?,
            );
            return Ok(response);
        }
        // The index goes through `locate` like any other file: `dir/index.html` may be a
        // symlink, and one that leaves the root must not be served (DESIGN.md §2, Paths). A
        // missing or escaping index means a listing, as if there were none.
        match self.open_beneath(&decoded.relative().join("index.html")) {
            Ok(Opened::File {
                file,
                metadata,
                path,
            }) => {
                let representation = self.representation(file, &metadata, &path);
                return self
                    .respond(method, request.headers(), representation)
                    .await;
            }
            Ok(Opened::Directory(_)) | Err(resolve::PathError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
        let url_path = request.uri().path().to_owned();
        let html = blocking(move || pages::directory_listing(&directory, &url_path)).await??;
        Ok(dynamic_response(method, html, "text/html; charset=utf-8"))
    }

    async fn api(
        &self,
        method: MethodKind,
        endpoint: &str,
    ) -> Result<Response<ResponseBody>, ServeError> {
        let json = match endpoint {
            "movies" => {
                let root = self.state.root.clone();
                let movies = blocking(move || pages::list_movies(&root)).await?;
                pages::movies_json(&movies, self.state.mode.name())
            }
            "stats" if !self.state.config.no_stats => {
                self.state.stats.to_json(self.state.mode.name())
            }
            _ => return Err(ServeError::not_found()),
        };
        Ok(dynamic_response(method, json, "application/json"))
    }

    /// Answers for a representation: preconditions, then ranges, then the body.
    async fn respond(
        &self,
        method: MethodKind,
        request_headers: &HeaderMap,
        representation: Representation,
    ) -> Result<Response<ResponseBody>, ServeError> {
        let joined: [Option<String>; 5] = [
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_UNMODIFIED_SINCE,
            header::IF_RANGE,
        ]
        .map(|name| joined_header(request_headers, &name));
        let range_header = request_headers.get(header::RANGE);
        let preconditions = RequestPreconditions {
            if_match: joined[0].as_deref(),
            if_none_match: joined[1].as_deref(),
            if_modified_since: joined[2].as_deref(),
            if_unmodified_since: joined[3].as_deref(),
            if_range: joined[4].as_deref(),
            has_range: range_header.is_some(),
        };
        let now = SystemTime::now();
        let mut representation = representation;
        representation.validators.last_modified =
            not_later_than_now(representation.validators.last_modified, now);
        let mut headers = self.representation_headers(&representation);
        let honor_range =
            match conditional::evaluate(method, &preconditions, &representation.validators, now) {
                Precondition::NotModified => {
                    // §15.4.5: a 304 carries the validators and caching fields a 200 would have.
                    headers.remove(header::CONTENT_TYPE);
                    return Ok(with_headers(
                        StatusCode::NOT_MODIFIED,
                        headers,
                        ResponseBody::empty(),
                    ));
                }
                Precondition::PreconditionFailed => {
                    let mut response = with_headers(
                        StatusCode::PRECONDITION_FAILED,
                        HeaderMap::new(),
                        ResponseBody::bytes("412 Precondition Failed\n"),
                    );
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    return Ok(response);
                }
                Precondition::Proceed { honor_range } => honor_range,
            };

        // §14.2: range handling is defined for GET only; HEAD and others ignore Range.
        let resolved = match range_header {
            Some(value) if honor_range && method == MethodKind::Get => {
                match range::parse(value.as_bytes()) {
                    Ok(set) => set.resolve(representation.len),
                    Err(ignored) => {
                        tracing::debug!(?ignored, "Range header ignored");
                        Resolved::WholeRepresentation
                    }
                }
            }
            _ => Resolved::WholeRepresentation,
        };

        let whole = || {
            VecDeque::from([Segment::File {
                offset: 0,
                len: representation.len,
            }])
        };
        let (status, segments) = match resolved {
            Resolved::WholeRepresentation => (StatusCode::OK, whole()),
            Resolved::Unsatisfiable => {
                // §15.5.17: 416 with the current length in Content-Range.
                let mut response = with_headers(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    headers,
                    ResponseBody::bytes("416 Range Not Satisfiable\n"),
                );
                let h = response.headers_mut();
                h.insert(
                    header::CONTENT_RANGE,
                    header_value(format!("bytes */{}", representation.len)),
                );
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                return Ok(response);
            }
            Resolved::Satisfiable(ranges) if ranges.len() == 1 => {
                let range = ranges[0];
                headers.insert(
                    header::CONTENT_RANGE,
                    header_value(range.content_range(representation.len)),
                );
                (
                    StatusCode::PARTIAL_CONTENT,
                    VecDeque::from([Segment::File {
                        offset: range.first,
                        len: range.len(),
                    }]),
                )
            }
            Resolved::Satisfiable(ranges) => {
                let boundary = new_boundary();
                let segments = multipart_segments(
                    &ranges,
                    &boundary,
                    &representation.content_type,
                    representation.len,
                );
                headers.insert(
                    header::CONTENT_TYPE,
                    header_value(format!("multipart/byteranges; boundary={boundary}")),
                );
                (StatusCode::PARTIAL_CONTENT, segments)
            }
        };

        let len: u64 = segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::File { len, .. } => *len,
            })
            .sum();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        let body = if method == MethodKind::Head {
            // §9.3.2: the same header fields as GET, no content.
            ResponseBody::empty()
        } else {
            self.body_for(&representation, segments).await?
        };
        Ok(with_headers(status, headers, body))
    }

    /// The fields every response about this representation carries.
    fn representation_headers(&self, representation: &Representation) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(
            header::CONTENT_TYPE,
            header_value(representation.content_type.clone()),
        );
        headers.insert(
            header::ETAG,
            header_value(representation.validators.etag_header()),
        );
        if let Some(modified) = representation.validators.last_modified {
            headers.insert(
                header::LAST_MODIFIED,
                header_value(httpdate::fmt_http_date(modified)),
            );
        }
        // No `public`: it only matters for responses to requests with Authorization (RFC 9111
        // §5.2.2.9), which this server never asks for; HTTP linters flag it as noise.
        let cache_control = if representation.is_html() {
            "no-cache".to_string()
        } else {
            format!("max-age={}", self.state.config.cache_max_age)
        };
        headers.insert(header::CACHE_CONTROL, header_value(cache_control));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers
    }

    /// Builds the body for the mode in force.
    async fn body_for(
        &self,
        representation: &Representation,
        segments: VecDeque<Segment>,
    ) -> Result<ResponseBody, ServeError> {
        let file = match &representation.content {
            Content::File(file) => Arc::clone(file),
            Content::Static(bytes) => {
                let segments = segments
                    .into_iter()
                    .map(|segment| match segment {
                        Segment::File { offset, len } => {
                            Segment::Bytes(bytes.slice(offset as usize..(offset + len) as usize))
                        }
                        bytes => bytes,
                    })
                    .collect();
                return Ok(ResponseBody::from_segments(segments, None, None));
            }
        };
        let stats = Arc::clone(&self.state.stats);
        let reads = FileReads::choose(
            self.state.mode,
            self.state.config.chunk_size as usize,
            self.transport,
        );
        let strategy = match reads {
            FileReads::ReadAll => {
                let read = read_all::read_segments(Arc::clone(&file), segments.clone()).await?;
                let copied: u64 = segments
                    .iter()
                    .map(|s| match s {
                        Segment::File { len, .. } => *len,
                        Segment::Bytes(_) => 0,
                    })
                    .sum();
                ServerStats::add(&stats.bytes_copied, copied);
                return Ok(ResponseBody::from_segments(read, None, None));
            }
            FileReads::PoolPread(chunk_size) => FileStrategy::Chunked {
                chunk_size,
                cached_inline: false,
            },
            FileReads::Pread(chunk_size) => FileStrategy::Chunked {
                chunk_size,
                cached_inline: true,
            },
            FileReads::Mapped(window) => FileStrategy::Mapped {
                window,
                registry: Arc::clone(&self.conn.registry),
                // Only sendfile never touches the pages: there a kept whole-file mapping costs
                // address space only. mmap mode faults pages in, so its windows are unmapped
                // as soon as they are sent.
                reuse: if self.state.mode == Mode::Sendfile {
                    representation.file_key
                } else {
                    None
                },
            },
        };
        Ok(ResponseBody::from_segments(
            segments,
            Some((file, strategy)),
            Some(stats),
        ))
    }
}

/// The `multipart/byteranges` body (RFC 9110 §14.6): each part with its own Content-Type and
/// Content-Range, file bytes as file segments (so they go out with sendfile too).
fn multipart_segments(
    ranges: &[ByteRange],
    boundary: &str,
    content_type: &str,
    complete_len: u64,
) -> VecDeque<Segment> {
    let mut segments = VecDeque::with_capacity(ranges.len() * 2 + 1);
    for range in ranges {
        let part_head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            range.content_range(complete_len)
        );
        segments.push_back(Segment::Bytes(Bytes::from(part_head)));
        segments.push_back(Segment::File {
            offset: range.first,
            len: range.len(),
        });
    }
    segments.push_back(Segment::Bytes(Bytes::from(format!(
        "\r\n--{boundary}--\r\n"
    ))));
    segments
}

/// A boundary that will not occur in the file by chance: 64 random bits (std's hasher keys are
/// random per process and per `RandomState`).
fn new_boundary() -> String {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("reelserve-{random:016x}")
}

/// RFC 9110 §8.8.2.1: an origin server MUST NOT send a `Last-Modified` later than its `Date`;
/// a modification time in the future (clock skew, an archive unpacked with future stamps) MUST
/// be replaced by the message origination date. `now` is truncated to the second because hyper
/// renders `Date` (second resolution) after this runs, so the result is never after `Date`.
/// Conditionals are evaluated against the clamped value too, so they agree with what the client
/// saw; for `If-Range` it is a weak date (not a second old), which is what a future mtime is.
fn not_later_than_now(last_modified: Option<SystemTime>, now: SystemTime) -> Option<SystemTime> {
    last_modified.map(|modified| modified.min(conditional::truncate_to_seconds(now)))
}

/// The `Location` of the redirect from a directory URL to its slash form. Leading slashes are
/// collapsed to one: `GET //host` names the directory `host` under the root, but echoing
/// `//host/` would be a network-path reference (RFC 3986 §4.2) sending browsers to another
/// host, an open redirect.
fn directory_location(request_path: &str) -> String {
    format!("/{}/", request_path.trim_start_matches('/'))
}

/// A response for content made on the fly (API JSON, listings): no validators, no ranges.
fn dynamic_response(
    method: MethodKind,
    content: String,
    content_type: &'static str,
) -> Response<ResponseBody> {
    let len = content.len();
    let body = if method == MethodKind::Head {
        ResponseBody::empty()
    } else {
        ResponseBody::bytes(content)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn builtin_player() -> Representation {
    Representation::from_static(pages::BUILTIN_PLAYER, "text/html; charset=utf-8")
}

fn with_headers(
    status: StatusCode,
    headers: HeaderMap,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Header values we build are ASCII by construction (numbers, dates, quoted tags, MIME types).
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// All field lines of a header joined with ", " (RFC 9110 §5.3); non-UTF-8 lines are skipped,
/// which for these fields means "invalid, ignored".
fn joined_header(headers: &HeaderMap, name: &header::HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    let mut joined = first.to_string();
    for value in values {
        joined.push_str(", ");
        joined.push_str(value);
    }
    Some(joined)
}

/// Hidden files (any segment starting with '.') are not served: `--root .` must not publish
/// `.git` or `.env`.
fn is_hidden(path: &DecodedPath) -> bool {
    path.relative()
        .components()
        .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."))
}

/// Runs blocking file-system work (directory reads) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServeError::from(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_layout() {
        let ranges = [
            ByteRange { first: 0, last: 1 },
            ByteRange { first: 5, last: 5 },
        ];
        let segments = multipart_segments(&ranges, "B", "video/mp4", 10);
        assert_eq!(segments.len(), 5);
        assert_eq!(
            segments[0],
            Segment::Bytes(Bytes::from_static(
                b"\r\n--B\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-1/10\r\n\r\n"
            ))
        );
        assert_eq!(segments[1], Segment::File { offset: 0, len: 2 });
        assert_eq!(
            segments[4],
            Segment::Bytes(Bytes::from_static(b"\r\n--B--\r\n"))
        );
    }

    #[test]
    fn future_last_modified_is_clamped_to_now() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_000_000_500);
        let past = std::time::UNIX_EPOCH + std::time::Duration::from_secs(5);
        let future = now + std::time::Duration::from_secs(3600);
        assert_eq!(not_later_than_now(Some(past), now), Some(past));
        assert_eq!(
            not_later_than_now(Some(future), now),
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        );
        assert_eq!(not_later_than_now(None, now), None);
    }

    #[test]
    fn directory_location_is_never_a_network_path_reference() {
        assert_eq!(directory_location("/films"), "/films/");
        assert_eq!(directory_location("//films"), "/films/");
        assert_eq!(directory_location("///evil.example"), "/evil.example/");
        assert_eq!(directory_location("/a//b"), "/a//b/");
    }

    #[test]
    fn tls_never_gets_mapped_views() {
        for mode in [Mode::Sendfile, Mode::Mmap, Mode::Chunked, Mode::ReadAll] {
            let reads = FileReads::choose(mode, 4096, Transport::Tls);
            assert!(!matches!(reads, FileReads::Mapped(_)), "{mode:?}: {reads}");
        }
        assert_eq!(
            FileReads::choose(Mode::Sendfile, 4096, Transport::Tls),
            FileReads::Pread(TLS_CHUNK_SIZE)
        );
        assert_eq!(
            FileReads::choose(Mode::Chunked, 4096, Transport::Tls),
            FileReads::PoolPread(4096)
        );
        assert_eq!(
            FileReads::choose(Mode::ReadAll, 4096, Transport::Tls),
            FileReads::ReadAll
        );
    }

    #[test]
    fn plain_connections_keep_their_mode() {
        assert_eq!(
            FileReads::choose(Mode::Sendfile, 4096, Transport::Plain),
            FileReads::Mapped(SENDFILE_WINDOW)
        );
        assert_eq!(
            FileReads::choose(Mode::Mmap, 4096, Transport::Plain),
            FileReads::Mapped(MMAP_WINDOW)
        );
        assert_eq!(
            FileReads::choose(Mode::Chunked, 4096, Transport::Plain),
            FileReads::PoolPread(4096)
        );
    }

    #[test]
    fn file_reads_describe_themselves_for_the_log() {
        assert_eq!(
            FileReads::Pread(TLS_CHUNK_SIZE).to_string(),
            "pread chunks of 128 KiB (page-cache hits read in place)"
        );
        assert_eq!(
            FileReads::PoolPread(65536).to_string(),
            "pread chunks of 64 KiB on the blocking pool"
        );
        assert_eq!(
            FileReads::PoolPread(1000).to_string(),
            "pread chunks of 1000 bytes on the blocking pool"
        );
        assert_eq!(
            FileReads::Mapped(SENDFILE_WINDOW).to_string(),
            "mapped windows of 64 MiB"
        );
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(new_boundary(), new_boundary());
    }

    #[test]
    fn joined_header_combines_field_lines() {
        let mut headers = HeaderMap::new();
        headers.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\""));
        headers.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"b\""));
        assert_eq!(
            joined_header(&headers, &header::IF_NONE_MATCH).as_deref(),
            Some("\"a\", \"b\"")
        );
        assert_eq!(joined_header(&headers, &header::IF_MATCH), None);
    }
}
