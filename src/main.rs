//! The `reelserve` binary: parse the command line, set up logging, serve until a signal.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use reelserve::log_sink::{FlushPolicy, LogSink, TracingWriter};
use reelserve::signed_link::{self, Grant, KeyRing};
use reelserve::{access_log, Command, Config, LogFormat, Server, SignArgs};
use tracing_subscriber::EnvFilter;

/// How long the logs may take to write out what they hold at exit. Only a stalled destination
/// (a pipe nobody reads) needs it; the exit must not hang on one.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        // A value our own check refused: one line, saying what is wrong and what to give.
        // Other errors (unknown flags, --help, --version) keep clap's own output and tips.
        Err(error) if error.kind() == clap::error::ErrorKind::ValueValidation => {
            let message = error.to_string();
            let first = message.lines().next().unwrap_or_default();
            eprintln!("reelserve: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(error) => error.exit(),
    };
    if let Some(Command::Sign(args)) = &config.command {
        return sign(args, config.signing_key_file.as_deref());
    }
    // Every log line leaves through a writer thread, never from an event loop: a stderr that
    // stops being read must not stop the server (lines beyond the buffer are dropped).
    let diagnostics = match LogSink::spawn(
        "reelserve-log",
        Box::new(std::io::stderr()),
        FlushPolicy {
            cap: 1024 * 1024,
            // Warnings and errors go out at once, not a second later.
            flush_at: 1,
            flush_every: Duration::from_secs(1),
        },
    ) {
        Ok(sink) => sink,
        Err(error) => {
            eprintln!("reelserve: cannot start the log writer thread: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config, TracingWriter::new(diagnostics.clone()));
    let code = serve(config, &diagnostics);
    // After the server has stopped: no response can add a line any more.
    let deadline = Instant::now() + LOG_DRAIN_TIMEOUT;
    diagnostics.close();
    // Whether they made it cannot be reported: the place to report it is what is stalled.
    let _access_complete = access_log::finish(deadline);
    let _diagnostics_complete = diagnostics.wait_drained(deadline);
    code
}

/// Starts the access log and the server, and serves until a signal.
fn serve(config: Config, diagnostics: &LogSink) -> ExitCode {
    if let Err(error) = access_log::start(&config.access_log, config.log_format) {
        eprintln!("reelserve: {error}");
        return ExitCode::from(2);
    }
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
    match server.run(shutdown_signal(diagnostics.clone())) {
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

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once (after a short,
/// bounded chance for the logs to write out what they hold).
async fn shutdown_signal(diagnostics: LogSink) {
    wait_for_signal().await;
    tracing::info!("signal received; finishing responses in flight (a second signal exits now)");
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting immediately");
        let deadline = Instant::now() + Duration::from_millis(500);
        diagnostics.close();
        let _ = access_log::finish(deadline);
        let _ = diagnostics.wait_drained(deadline);
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

fn init_logging(config: &Config, writer: TracingWriter) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
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
