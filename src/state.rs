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
    /// The server-wide budget for file bytes held in buffers (`body::budget`).
    pub buffer_budget: ServerBudget,
}
