//! Reading the server's access log (one `reelserve::access` line per response) in tests.
#![allow(dead_code)]

/// One access log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub bytes: u64,
    pub complete: bool,
    /// The request's HTTP version as hyper names it: `HTTP/1.1`, `HTTP/2.0`.
    pub version: String,
}

/// Every access line in `log`, in order.
pub fn parse(log: &str) -> Vec<Access> {
    log.lines()
        .filter_map(|line| {
            let fields = line.split("reelserve::access:").nth(1)?;
            let field = |name: &str| {
                fields
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .map(str::to_string)
            };
            Some(Access {
                method: field("method")?,
                path: field("path")?,
                status: field("status")?.parse().ok()?,
                bytes: field("bytes")?.parse().ok()?,
                complete: field("complete")? == "true",
                version: field("version").unwrap_or_default(),
            })
        })
        .collect()
}

/// The access lines for `path`.
pub fn for_path(log: &str, path: &str) -> Vec<Access> {
    parse(log).into_iter().filter(|a| a.path == path).collect()
}

/// The access lines for `path`, waiting up to 5 s for `count` of them: a line is written when a
/// response body is finished or dropped, which can be just after the client has what it wanted.
pub fn wait_for(log: impl Fn() -> String, path: &str, count: usize) -> Vec<Access> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let lines = for_path(&log(), path);
        if lines.len() >= count || std::time::Instant::now() >= end {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
