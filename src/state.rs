//! What every connection of a running server shares: the configuration, the root, the counters.

use std::path::PathBuf;
use std::sync::Arc;

use crate::body::ServerBudget;
use crate::config::{Config, Mode};
use crate::library::MovieIndex;
use crate::resolve;
use crate::stats::ServerStats;

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
    /// The movies under `<root>/movie/`, for `/video` and `/_reelserve/movies`.
    pub movies: MovieIndex,
    /// Signing keys, when every request needs a signed link (`--signing-key-file`).
    pub signing: Option<Arc<crate::signed_link::SigningKeys>>,
    /// The CORS policy (`--cors-origin`), if any.
    pub cors: Option<crate::cors::CorsPolicy>,
    /// Connections per client (`--max-connections-per-ip`), if limited.
    pub client_limit: Option<Arc<crate::client_limit::ClientLimiter>>,
    /// Prometheus metrics (served with `--metrics-addr`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Open descriptors kept for reuse (`--open-file-cache`), if on.
    pub open_files: Option<crate::open_file_cache::OpenFileCache>,
    /// `Cache-Control` for files (`--cache-max-age`).
    pub cache: crate::plan::CachePolicy,
    /// The server-wide budget for file bytes held in buffers (`body::budget`).
    pub buffer_budget: ServerBudget,
}
