//! Prometheus metrics (`--metrics-addr IP:PORT`), made with `prometheus-client`, served at
//! `/metrics` on a listener of their own: never on the public port, so the figures are only
//! where the operator opened them. A scraper that asks for OpenMetrics (Prometheus does) gets
//! it; anything else gets the classic Prometheus text format.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `reelserve_requests_total` | counter | `class`: `1xx` .. `5xx` |
//! | `reelserve_time_to_first_byte_seconds` | histogram | from the request head to the response head being ready |
//! | `reelserve_responses_cut_short_total` | counter | bodies the client stopped reading (a seek, a closed tab) |
//! | `reelserve_refusals_total` | counter | `status` (403, 410, 429), `reason` |
//! | `reelserve_file_bytes_total` | counter | `path`: `sendfile`, `writev_mapped`, `copied` |
//! | `reelserve_bytes_sent_total` | counter | every byte written to client sockets |
//! | `reelserve_open_connections` | gauge | |
//! | `reelserve_access_log_lines_total`, `reelserve_access_log_dropped_total` | counter | |
//!
//! The byte, connection and access-log figures are read from [`ServerStats`] at scrape time
//! (the same counters as `/_reelserve/stats`); the rest are recorded here as requests finish.
//! The two recorded on every response (`requests_total`, `time_to_first_byte_seconds`) are
//! per-thread shards summed at scrape time, as [`ServerStats`]' counters are: prometheus-client's
//! histogram takes a mutex per observation and its counter is one atomic, both shared by every
//! worker, so each response would move their cache lines between cores.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::body::ResponseBody;
use crate::error::ServeError;
use crate::stats::{self, ServerStats};

/// The path the metrics are served on (any other path is a 404).
pub const METRICS_PATH: &str = "/metrics";

/// The media type of the OpenMetrics text format (what Prometheus asks for first).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The media type of the classic Prometheus text format (what `promtool check metrics`, older
/// scrapers and people with curl get).
const CLASSIC_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Time-to-first-byte buckets, seconds: from a page-cache hit on loopback (well under a
/// millisecond) to a cold disk under load.
const TTFB_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The status classes `requests_total` counts, in order.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

type RefusalLabels = [(&'static str, &'static str); 2];

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// What every response records (shared with the collector that encodes it).
    responses: Arc<ResponseFigures>,
    cut_short: Counter,
    refusals: Family<RefusalLabels, Counter>,
    /// Whether anyone can read them (`--metrics-addr`): if not, responses are not timed.
    exposed: bool,
}

impl Metrics {
    /// Metrics for a server counting into `stats`; `exposed` if they are served
    /// (`--metrics-addr`).
    pub fn new(stats: Arc<ServerStats>, exposed: bool) -> Metrics {
        let mut registry = Registry::with_prefix("reelserve");
        let responses = Arc::new(ResponseFigures::default());
        registry.register_collector(Box::new(ResponseCollector {
            responses: Arc::clone(&responses),
        }));
        let cut_short = Counter::default();
        registry.register(
            "responses_cut_short",
            "Response bodies the client stopped reading before the end (a seek, a closed tab)",
            cut_short.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests and connections refused: signed links (403, 410) and per-client limits (429)",
            refusals.clone(),
        );
        registry.register_collector(Box::new(StatsCollector { stats }));
        Metrics {
            registry,
            responses,
            cut_short,
            refusals,
            exposed,
        }
    }

    /// Whether responses are timed and counted by class ([`Metrics::response`]): only when the
    /// metrics are served, so that a server without `--metrics-addr` reads no clock for them.
    pub fn times_responses(&self) -> bool {
        self.exposed
    }

    /// A response head is ready: counts its status class and its time to first byte.
    pub fn response(&self, status: StatusCode, time_to_first_byte: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        let figures = &self.responses;
        figures.by_class[class].add(1);
        let seconds = time_to_first_byte.as_secs_f64();
        // The first bucket whose bound is not below the time; the last one is +Inf.
        let bucket = TTFB_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(TTFB_BUCKETS.len());
        figures.ttfb_buckets[bucket].add(1);
        figures
            .ttfb_nanos
            .add(u64::try_from(time_to_first_byte.as_nanos()).unwrap_or(u64::MAX));
    }

    /// A response body ended before all of it was sent.
    pub fn cut_short(&self) {
        self.cut_short.inc();
    }

    /// A request or connection was refused with `status` for `reason`.
    pub fn refused(&self, status: u16, reason: &'static str) {
        let status = match status {
            403 => "403",
            410 => "410",
            429 => "429",
            _ => "other",
        };
        self.refusals
            .get_or_create(&[("status", status), ("reason", reason)])
            .inc();
    }

    /// The exposition in the format `accept` prefers: OpenMetrics when it names it (as
    /// Prometheus does), else the classic text format. Returns the text and its media type.
    pub fn render_for(&self, accept: Option<&str>) -> (String, &'static str) {
        let text = self.render();
        if accept.is_some_and(|accept| accept.contains("application/openmetrics-text")) {
            (text, OPENMETRICS)
        } else {
            (to_classic_text(&text), CLASSIC_TEXT)
        }
    }

    /// The OpenMetrics exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug in a collector.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "metrics could not be encoded");
        }
        text
    }
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4): the two differ, for what
/// is served here, in that a counter's family is named without `_total` in OpenMetrics and
/// with it in the classic format, and in the `# UNIT` and `# EOF` lines the classic format
/// does not have.
fn to_classic_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut classic = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => classic.push_str(line.trim_end()),
            None => classic.push_str(line),
        }
        classic.push('\n');
    }
    classic
}

/// Access-log lines written and dropped so far, as the access-log writer counts them.
pub fn access_log_counts() -> (u64, u64) {
    (
        crate::access_log::lines_written(),
        crate::access_log::lines_dropped(),
    )
}

/// `requests_total` and `time_to_first_byte_seconds`, in per-thread shards (see the module
/// documentation).
#[derive(Debug, Default)]
struct ResponseFigures {
    /// Responses of each of [`STATUS_CLASSES`].
    by_class: [stats::Counter; 5],
    /// Times to first byte in each of [`TTFB_BUCKETS`] (not cumulative), then beyond the last.
    ttfb_buckets: [stats::Counter; TTFB_BUCKETS.len() + 1],
    /// The sum of the times to first byte, in nanoseconds (585 years fit).
    ttfb_nanos: stats::Counter,
}

/// Encodes [`ResponseFigures`] at scrape time.
#[derive(Debug)]
struct ResponseCollector {
    responses: Arc<ResponseFigures>,
}

impl Collector for ResponseCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = &self.responses;
        encode_counter_family(
            &mut encoder,
            ("requests", "Responses sent, by status class"),
            "class",
            STATUS_CLASSES
                .into_iter()
                .zip(figures.by_class.iter().map(stats::Counter::get)),
        )?;
        let mut buckets = [(f64::INFINITY, 0u64); TTFB_BUCKETS.len() + 1];
        for ((bucket, bound), counter) in buckets
            .iter_mut()
            .zip(TTFB_BUCKETS.iter().chain([&f64::INFINITY]))
            .zip(&figures.ttfb_buckets)
        {
            *bucket = (*bound, counter.get());
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = Duration::from_nanos(figures.ttfb_nanos.get()).as_secs_f64();
        encoder
            .encode_descriptor(
                "time_to_first_byte_seconds",
                "Seconds from a parsed request head to its response head being ready to send",
                None,
                prometheus_client::metrics::MetricType::Histogram,
            )?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }
}

/// A counter family with one label, `label`, whose values and counts are `counts`, under
/// `name` and `help`.
fn encode_counter_family(
    encoder: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    label: &'static str,
    counts: impl IntoIterator<Item = (&'static str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (value, count) in counts {
        ConstCounter::new(count).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

/// Reads [`ServerStats`] at scrape time.
#[derive(Debug)]
struct StatsCollector {
    stats: Arc<ServerStats>,
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let get = |counter: &crate::stats::Counter| counter.get();
        let stats = &self.stats;
        encode_counter_family(
            &mut encoder,
            (
                "file_bytes",
                "File bytes sent, by the path they took: sendfile(2), writev from a memory map, \
                 or copied through user-space buffers",
            ),
            "path",
            [
                ("sendfile", get(&stats.bytes_sendfile)),
                ("writev_mapped", get(&stats.bytes_writev_mapped)),
                ("copied", get(&stats.bytes_copied)),
            ],
        )?;
        let counter = ConstCounter::new(get(&stats.bytes_sent));
        counter.encode(encoder.encode_descriptor(
            "bytes_sent",
            "Bytes written to client sockets, heads and bodies, by any path",
            None,
            counter.metric_type(),
        )?)?;
        let gauge = ConstGauge::new(get(&stats.open_connections) as i64);
        gauge.encode(encoder.encode_descriptor(
            "open_connections",
            "Client connections open now",
            None,
            gauge.metric_type(),
        )?)?;
        let (written, dropped) = access_log_counts();
        let counter = ConstCounter::new(written);
        counter.encode(encoder.encode_descriptor(
            "access_log_lines",
            "Access-log lines written",
            None,
            counter.metric_type(),
        )?)?;
        let counter = ConstCounter::new(dropped);
        counter.encode(encoder.encode_descriptor(
            "access_log_dropped",
            "Access-log lines dropped because the log could not keep up",
            None,
            counter.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped: plain HTTP/1.1, one small
/// task per scrape, nothing else (no files, no signed links, no CORS).
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<_>| {
                let response = answer(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service);
            // A scraper that stalls is cut off; it will try again at its next interval.
            match tokio::time::timeout(Duration::from_secs(30), connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "metrics connection error"),
                Err(_) => tracing::debug!(%peer, "metrics connection timed out"),
            }
        });
    }
}

/// The answer to one request on the metrics listener: the exposition at [`METRICS_PATH`], the
/// server's own 404 and 405 (rendered by [`crate::error`], like every other error) elsewhere.
fn answer<B>(metrics: &Metrics, request: &Request<B>) -> Response<ResponseBody> {
    let mut response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, METRICS_PATH) => {
            let accept = request
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let (text, content_type) = metrics.render_for(accept);
            let mut response = Response::new(ResponseBody::bytes(text));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        (&Method::GET | &Method::HEAD, _) => ServeError::not_found().into_response(),
        _ => ServeError::method_not_allowed().into_response(),
    };
    // A scrape is true of this moment only.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Binds the metrics listener (a startup error if it cannot be bound).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric_and_ends_with_eof() {
        let stats = Arc::new(ServerStats::default());
        ServerStats::add(&stats.bytes_sendfile, 1234);
        let metrics = Metrics::new(Arc::clone(&stats), true);
        metrics.response(StatusCode::PARTIAL_CONTENT, Duration::from_millis(3));
        metrics.response(StatusCode::NOT_FOUND, Duration::from_millis(1));
        metrics.refused(410, "expired");
        metrics.cut_short();
        let text = metrics.render();
        for line in [
            "reelserve_requests_total{class=\"2xx\"} 1",
            "reelserve_requests_total{class=\"4xx\"} 1",
            "reelserve_refusals_total{status=\"410\",reason=\"expired\"} 1",
            "reelserve_responses_cut_short_total 1",
            "reelserve_file_bytes_total{path=\"sendfile\"} 1234",
            "reelserve_open_connections 0",
            "reelserve_access_log_dropped_total 0",
            "reelserve_time_to_first_byte_seconds_count 2",
            "reelserve_time_to_first_byte_seconds_sum 0.004",
            // Cumulative: the 1 ms response is in every bucket from 1 ms, the 3 ms one from 5.
            "reelserve_time_to_first_byte_seconds_bucket{le=\"0.0005\"} 0",
            "reelserve_time_to_first_byte_seconds_bucket{le=\"0.001\"} 1",
            "reelserve_time_to_first_byte_seconds_bucket{le=\"0.0025\"} 1",
            "reelserve_time_to_first_byte_seconds_bucket{le=\"0.005\"} 2",
            "reelserve_time_to_first_byte_seconds_bucket{le=\"+Inf\"} 2",
            "reelserve_requests_total{class=\"5xx\"} 0",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn classic_text_names_counter_families_with_total() {
        let metrics = Metrics::new(Arc::new(ServerStats::default()), true);
        metrics.response(StatusCode::OK, Duration::from_millis(3));
        let (text, content_type) = metrics.render_for(Some("text/plain"));
        assert_eq!(content_type, CLASSIC_TEXT);
        assert!(
            text.contains("# TYPE reelserve_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP reelserve_requests_total Responses"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE reelserve_open_connections gauge\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
        let (open, content_type) =
            metrics.render_for(Some("application/openmetrics-text;version=1.0.0,*/*;q=0.1"));
        assert_eq!(content_type, OPENMETRICS);
        assert!(open.contains("# TYPE reelserve_requests counter\n"));
    }
}
