//! reelserve: an HTTP/1.1 server for big files that hands file bytes to the kernel (and, with a
//! certificate, an HTTPS server speaking HTTP/2 and HTTP/1.1).
//!
//! The crate is organised by concern, so a behaviour can be found by its name:
//!
//! | module | owns |
//! |---|---|
//! | [`range`] | `Range` header parsing and resolution (sans-IO) |
//! | [`conditional`] | RFC 9110 §13 preconditions: 304 / 412 / If-Range (sans-IO) |
//! | [`resolve`] | URL path -> file under the root, safely |
//! | [`representation`] | an opened file: length, validators, media type |
//! | [`body`] | response bodies, one strategy per `--mode` |
//! | [`zero_copy`] | the connection IO that sends mapped file chunks with `sendfile(2)` |
//! | [`service`] | the hyper service: routing and response heads |
//! | [`server`] | accept loop, limits, graceful shutdown; HTTPS with HTTP/2 by ALPN |
//! | [`tls`] | the rustls configuration from `--tls-cert`/`--tls-key`; the kernel TLS probe |
//! | [`config`] | the command line, which is the configuration |
//! | [`pages`] | the movie list, directory listings, the built-in player |
//! | [`stats`] | counters that show which path bytes took |
//! | [`signed_link`] | signed, expiring links: token format, keys, `verify` (sans-IO) |
//! | [`cors`] | CORS headers and preflight answers for players on other origins (sans-IO) |
//! | [`client_limit`] | connections per client address (`--max-connections-per-ip`) |
//! | [`access`] | what every request passes first (preflight, signed link) and what every answer gets |
//! | [`metrics`] | Prometheus metrics on a listener of their own |
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod access;
pub mod body;
pub mod client_limit;
pub mod conditional;
pub mod config;
pub mod cors;
pub mod error;
pub mod metrics;
pub mod pages;
pub mod range;
pub mod representation;
pub mod resolve;
pub mod server;
pub mod service;
pub mod signed_link;
pub mod stats;
pub mod tls;
pub mod zero_copy;

pub use config::{Command, Config, LogFormat, Mode, SignArgs};
pub use server::{Server, StartupError};
