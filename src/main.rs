//! The `reelserve` binary: parse the command line, set up logging, serve until a signal.

use std::process::ExitCode;

use clap::Parser;
use reelserve::{Config, LogFormat, Server};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = Config::parse();
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
    // Name every movie browsers cannot start playing until they have fetched its end, with
    // the fix. Probing reads only box headers and each `moov`, but may touch many files: off
    // the start-up path, on a thread of its own.
    let root = server.root().to_path_buf();
    let _ = std::thread::Builder::new()
        .name("faststart-check".into())
        .spawn(move || reelserve::media::warn_about_slow_starts(&root));
    match server.run(shutdown_signal()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("reelserve: {error}");
            ExitCode::FAILURE
        }
    }
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
