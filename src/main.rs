//! The `reelserve` binary: parse the command line, set up logging, serve until a signal.

use std::process::ExitCode;

use clap::Parser;
use reelserve::signed_link::{self, Grant, KeyRing};
use reelserve::{Command, Config, LogFormat, Server, SignArgs};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = Config::parse();
    if let Some(Command::Sign(args)) = &config.command {
        return sign(args, config.signing_key_file.as_deref());
    }
    init_logging(&config);
    // A panic is a bug; tokio confines it to the connection's task. Log it like any other
    // error (with where it happened) instead of printing to a bare stderr.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "a connection task panicked; only that connection is lost");
    }));

    raise_open_file_limit();

    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("reelserve: {error}");
            return ExitCode::from(2);
        }
    };
    let addr = match server.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("reelserve: cannot read the bound address: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Tests and scripts read this line to find the port (with --addr IP:0).
    let scheme = if server.is_tls() { "https" } else { "http" };
    println!(
        "reelserve listening on {scheme}://{addr}/ (mode {}, root {})",
        server.mode().name(),
        server.root().display()
    );
    if let Some(metrics) = server.metrics_addr() {
        tracing::info!(
            "metrics on http://{metrics}{}",
            reelserve::metrics::METRICS_PATH
        );
    }
    match server.run(shutdown_signal()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("reelserve: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `reelserve sign`: prints what the link grants, then the link itself as the last line.
fn sign(args: &SignArgs, server_key_file: Option<&std::path::Path>) -> ExitCode {
    let Some(key_file) = args.signing_key_file.as_deref().or(server_key_file) else {
        eprintln!(
            "reelserve sign: which key? pass --signing-key-file FILE (the server's key file)"
        );
        return ExitCode::from(2);
    };
    let keys = match KeyRing::load(key_file) {
        Ok(keys) => keys,
        Err(error) => {
            eprintln!("reelserve sign: {error}");
            return ExitCode::from(2);
        }
    };
    if !args.path.starts_with('/') {
        eprintln!("reelserve sign: the path must start with / (e.g. /movie/big.mp4)");
        return ExitCode::from(2);
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
    };
    let scope = match decode(args.scope.as_deref().unwrap_or(&args.path)) {
        Ok(scope) if scope.starts_with('/') => scope,
        _ => {
            eprintln!("reelserve sign: the scope must be a path starting with / (valid UTF-8)");
            return ExitCode::from(2);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let expires = now.saturating_add(args.ttl.as_secs());
    let grant = Grant {
        expires,
        scope,
        client: args.ip,
    };
    let expiry = std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires);
    println!(
        "covers paths starting with {:?}, until {} ({} s){}",
        grant.scope,
        httpdate::fmt_http_date(expiry),
        args.ttl.as_secs(),
        match args.ip {
            Some(net) => format!(", from {net} only"),
            None => String::new(),
        }
    );
    println!(
        "{}",
        signed_link::link(&args.base_url, &args.path, &keys.sign(&grant))
    );
    ExitCode::SUCCESS
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once.
async fn shutdown_signal() {
    wait_for_signal().await;
    tracing::info!("signal received; finishing responses in flight (a second signal exits now)");
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting immediately");
        std::process::exit(130);
    });
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            tracing::warn!("cannot listen for signals; the server will only stop when killed");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Each connection is a descriptor (plus one per file being sent): raise the soft limit to the
/// hard one, as nginx's `worker_rlimit_nofile` and Go's runtime do, so --max-connections is
/// what limits connections rather than a 1024 default.
#[cfg(target_os = "linux")]
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!(%error, "could not raise the open-file limit");
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn raise_open_file_limit() {}
