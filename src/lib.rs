//! reelserve: an HTTP/1.1 server for big files that hands file bytes to the kernel (and, with a
//! certificate, an HTTPS server speaking HTTP/2 and HTTP/1.1).
//!
//! The crate is organised by concern, so a behaviour can be found by its name:
//!
//! A request walks down the layers once: [`server`] accepts it, [`service`] hands it to
//! [`route`] (which resource), [`plan`] (what to send, decided without IO), [`render`] (the
//! response and its [`body`]), and [`zero_copy`] writes it. docs/architecture.md draws the path.
//!
//! | module | owns |
//! |---|---|
//! | [`range`] | `Range` header parsing and resolution (sans-IO) |
//! | [`conditional`] | RFC 9110 §13 preconditions: 304 / 412 / If-Range (sans-IO) |
//! | [`resolve`] | URL path -> file under the root, safely |
//! | [`representation`] | an opened file: length, validators, media type |
//! | [`route`] | which resource a path names: files, `/`, `/video`, directories, `/_reelserve/*` |
//! | [`plan`] | the pure decision: status, header fields, body segments (sans-IO) |
//! | [`render`] | a plan becomes a hyper response |
//! | [`error`] | every response that is not the content: 301, 304, 4xx, 5xx |
//! | [`body`] | response bodies; `--mode` and the per-connection [`body::FileStrategy`] |
//! | [`zero_copy`] | the connection IO: `sendfile(2)` for mapped chunks, and every timeout |
//! | [`service`] | the hyper service: ties the layers together, access log |
//! | [`server`] | accept loop, graceful shutdown; HTTPS with HTTP/2 by ALPN; the listener's `--tcp-notsent-lowat` |
//! | [`http1_connection`] | an HTTP/1.1 connection (plain or over TLS), parked without hyper's buffers while idle |
//! | [`admission`] | connection slots: per-client limit (429), `--max-connections`, making room |
//! | [`state`] | what every connection shares |
//! | [`watchdog`] | the send timeout for HTTP/2 streams |
//! | [`open_file_cache`] | `--open-file-cache`: descriptors kept for reuse, always `fstat`ed |
//! | [`access_log`] | one line per response, buffered off the event loops |
//! | [`log_sink`] | the bounded, lossy, non-blocking buffer every log line goes through |
//! | [`tls`] | the rustls configuration from `--tls-cert`/`--tls-key`; the kernel TLS probe |
//! | [`config`] | the command line, which is the configuration |
//! | [`media`] | movie metadata (duration, size, codecs, bitrate, faststart), bounded and cached |
//! | [`pacing`] | `--limit-rate`, `--pace`: kernel TCP pacing (`SO_MAX_PACING_RATE`) per response |
//! | [`pages`] | the movie list, directory listings, the built-in player |
//! | [`library`] | the movie index, cached and revalidated by the movie directory's mtime |
//! | [`stats`] | counters that show which path bytes took |
//! | [`inline_bytes`] | small values built per request without allocating (tags, log numbers) |
//! | [`signed_link`] | signed, expiring links: token format, keys, `verify` (sans-IO) |
//! | [`cors`] | CORS headers and preflight answers for players on other origins (sans-IO) |
//! | [`client_limit`] | connections per client address (`--max-connections-per-ip`) |
//! | [`access`] | what every request passes first (preflight, signed link) and what every answer gets |
//! | [`metrics`] | Prometheus metrics on a listener of their own |
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod access;
pub mod access_log;
pub mod admission;
pub mod body;
pub mod client_limit;
pub mod conditional;
pub mod config;
pub mod cors;
pub mod error;
pub mod http1_connection;
pub mod inline_bytes;
pub mod library;
pub mod log_sink;
pub mod media;
pub mod metrics;
pub mod open_file_cache;
pub mod pacing;
pub mod pages;
pub mod plan;
pub mod range;
pub mod render;
pub mod representation;
pub mod resolve;
pub mod route;
pub mod server;
pub mod service;
pub mod signed_link;
pub mod state;
pub mod stats;
pub mod tls;
pub mod watchdog;
pub mod zero_copy;

pub use config::{AccessLogTarget, Command, Config, LogFormat, Mode, SignArgs};
pub use server::{Server, StartupError};
