//! The access log: one line per response, saying who asked for what and how it went, written
//! off the hot path, like nginx's `access_log ... buffer=64k flush=1s`.
//!
//! A request handler formats its line into a per-thread buffer (no allocation once the buffer
//! has grown to a line's size, no system call) and appends it to a shared in-memory buffer
//! ([`crate::log_sink::LogSink`]). A thread of its own, outside the tokio event loops, writes
//! that buffer to the destination when it holds [`FLUSH_AT`] bytes or every [`FLUSH_EVERY`].
//!
//! - **Bounded.** At most [`BUFFER_CAP`] bytes of lines wait (about 5,000 lines), plus the batch
//!   being written. When the destination is slow or stalled (a full disk, a stderr pipe nobody
//!   reads) and the buffer is full, a new line is **dropped** and counted: an event loop never
//!   waits for the log. `/_reelserve/stats` reports `access_log_lines` (written to the
//!   destination) and `access_log_dropped`.
//! - **Complete on a graceful stop.** After SIGTERM the server finishes the responses in
//!   flight, then `main` calls [`finish`], which writes out everything buffered. A destination
//!   that stays stalled gets a bounded wait, never a hung exit.
//! - **Off costs nothing.** With `--access-log off` no request captures or formats anything:
//!   [`RequestSummary::capture`] returns `None` after one atomic load.
//!
//! Lines keep the shape of the server's other log lines in both `--log-format`s, so one parser
//! reads them all: text is `TIMESTAMP  INFO reelserve::access: key=value ...` and JSON is
//! `{"timestamp":..,"level":"INFO","fields":{..},"target":"reelserve::access"}`. The fields are
//! `client` (IP:port), `method`, `path`, `version`, `status`, `bytes` (body bytes written),
//! `complete`, `ms`, then `range`, `user_agent` and `referer` when the request had them. Every
//! value a client chooses is escaped, so a header with quotes, newlines or control bytes cannot
//! forge a second line or a field: in text, a value with anything but printable ASCII is quoted
//! with `\"`, `\\`, `\n`, `\t`, `\xNN` escapes; in JSON, strings are escaped as JSON.
//!
//! What it is not: the server's diagnostic log (warnings, errors, debug), which goes through
//! `tracing` to stderr, through its own [`crate::log_sink::LogSink`].

use std::cell::RefCell;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderValue};
use http::{Method, Request, Uri, Version};

use crate::config::{AccessLogTarget, LogFormat};
use crate::inline_bytes::InlineBytes;
use crate::log_sink::{FlushPolicy, LogSink};

/// The writer is woken when this many bytes of lines wait (nginx's `buffer=64k`).
pub const FLUSH_AT: usize = 64 * 1024;

/// Lines are written at least this often, however few (nginx's `flush=1s`).
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Most bytes of lines that may wait for a slow destination; beyond it lines are dropped.
/// 1 MiB is about 5,000 lines: a second of a busy server's log, and a fixed cost in memory.
pub const BUFFER_CAP: usize = 1024 * 1024;

/// The running access log, when it is on.
static ACCESS_LOG: OnceLock<AccessLog> = OnceLock::new();

#[derive(Debug)]
struct AccessLog {
    sink: LogSink,
    format: LogFormat,
}

/// Why the access log could not be started. Printed for a person.
#[derive(Debug)]
pub enum StartError {
    /// The `--access-log` file could not be opened for appending.
    Open(PathBuf, io::Error),
    /// The writer thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Open(path, error) => write!(
                f,
                "cannot open the access log {} for appending: {error} (pass a writable file, \
                 `-` for stderr or `off` with --access-log)",
                path.display()
            ),
            StartError::Thread(error) => {
                write!(f, "cannot start the access log writer thread: {error}")
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Open(_, error) | StartError::Thread(error) => Some(error),
        }
    }
}

/// Starts the access log for the process (once; later calls change nothing): opens the
/// destination and starts its writer thread. Until it is called, and with `off`, nothing is
/// logged.
///
/// # Errors
/// The file cannot be opened for appending, or the thread cannot be started.
pub fn start(target: &AccessLogTarget, format: LogFormat) -> Result<(), StartError> {
    let destination: Box<dyn Write + Send> = match target {
        AccessLogTarget::Off => return Ok(()),
        AccessLogTarget::Stderr => Box::new(io::stderr()),
        AccessLogTarget::File(path) => Box::new(
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .map_err(|error| StartError::Open(path.clone(), error))?,
        ),
    };
    let sink = LogSink::spawn(
        "reelserve-access-log",
        destination,
        FlushPolicy {
            cap: BUFFER_CAP,
            flush_at: FLUSH_AT,
            flush_every: FLUSH_EVERY,
        },
    )
    .map_err(StartError::Thread)?;
    let _already_started = ACCESS_LOG.set(AccessLog { sink, format });
    Ok(())
}

/// Writes out every line recorded so far and stops the writer, waiting at most until
/// `deadline`. Call it once no more responses can finish (after the server has stopped).
/// Returns whether everything was written (true when the log is off).
pub fn finish(deadline: Instant) -> bool {
    match ACCESS_LOG.get() {
        Some(log) => {
            log.sink.close();
            log.sink.wait_drained(deadline)
        }
        None => true,
    }
}

/// Lines written to the destination since start.
pub fn lines_written() -> u64 {
    ACCESS_LOG.get().map_or(0, |log| log.sink.written())
}

/// Lines dropped since start (buffer full, or the destination failed).
pub fn lines_dropped() -> u64 {
    ACCESS_LOG.get().map_or(0, |log| log.sink.dropped())
}

/// What the access log needs from a request, taken before the request is handled. Cheap:
/// the method, URI and header values are reference-counted views of the parsed request, not
/// copies.
#[derive(Debug, Clone)]
pub struct RequestSummary {
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    version: Version,
    range: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
}

impl RequestSummary {
    /// The summary of `request` from `peer`, or `None` when the access log is off. Boxed: it
    /// is held by every request's future, which should not grow by its size when the log is
    /// off.
    pub fn capture<B>(peer: SocketAddr, request: &Request<B>) -> Option<Box<RequestSummary>> {
        ACCESS_LOG.get()?;
        let headers = request.headers();
        Some(Box::new(RequestSummary {
            peer,
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            range: headers.get(header::RANGE).cloned(),
            user_agent: headers.get(header::USER_AGENT).cloned(),
            referer: headers.get(header::REFERER).cloned(),
        }))
    }

    /// Logs the response to this request: `status`, `bytes` of body written, whether that
    /// was all of it, and the time since the request arrived.
    pub fn record(&self, status: u16, bytes: u64, complete: bool, elapsed: Duration) {
        record(&AccessRecord {
            client: self.peer,
            method: self.method.as_str(),
            path: self.uri.path(),
            version: self.version,
            status,
            bytes,
            complete,
            elapsed,
            range: self.range.as_ref().map(HeaderValue::as_bytes),
            user_agent: self.user_agent.as_ref().map(HeaderValue::as_bytes),
            referer: self.referer.as_ref().map(HeaderValue::as_bytes),
        });
    }
}

/// One access log line's fields.
#[derive(Debug, Clone, Copy)]
pub struct AccessRecord<'a> {
    /// The client's address and port.
    pub client: SocketAddr,
    /// The request method.
    pub method: &'a str,
    /// The request path, as sent (percent-escapes kept, query left out).
    pub path: &'a str,
    /// The request's HTTP version.
    pub version: Version,
    /// The response status.
    pub status: u16,
    /// Body bytes written to the client.
    pub bytes: u64,
    /// Whether the whole body was written.
    pub complete: bool,
    /// From the request's arrival to the response's end.
    pub elapsed: Duration,
    /// The `Range` header, raw.
    pub range: Option<&'a [u8]>,
    /// The `User-Agent` header, raw.
    pub user_agent: Option<&'a [u8]>,
    /// The `Referer` header, raw.
    pub referer: Option<&'a [u8]>,
}

thread_local! {
    /// Each thread formats its lines here, so a line costs no allocation once the buffer has
    /// grown to a line's size.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Appends `record`'s line to the access log (nothing when it is off). Never blocks: when the
/// buffer is full the line is dropped and counted.
pub fn record(record: &AccessRecord<'_>) {
    let Some(log) = ACCESS_LOG.get() else {
        return;
    };
    let now = SystemTime::now();
    LINE.with(|line| match line.try_borrow_mut() {
        Ok(mut line) => {
            line.clear();
            format_line(&mut line, log.format, now, record);
            log.sink.append(&line, 1);
        }
        // Only reachable if formatting re-entered `record` on this thread: use a fresh buffer.
        Err(_) => {
            let mut line = Vec::new();
            format_line(&mut line, log.format, now, record);
            log.sink.append(&line, 1);
        }
    });
}

/// Formats one line (with its `\n`) into `out`.
pub fn format_line(out: &mut Vec<u8>, format: LogFormat, now: SystemTime, r: &AccessRecord<'_>) {
    // Writing into a Vec cannot fail.
    let _ = match format {
        LogFormat::Text => format_text(out, now, r),
        LogFormat::Json => format_json(out, now, r),
    };
}

fn format_text(out: &mut Vec<u8>, now: SystemTime, r: &AccessRecord<'_>) -> io::Result<()> {
    write_timestamp(out, now)?;
    out.extend_from_slice(b"  INFO reelserve::access: ");
    let mut separator: &[u8] = b"";
    each_field(r, |name, value| {
        out.extend_from_slice(separator);
        separator = b" ";
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        match value {
            FieldValue::Text(text) => text_value(out, text),
            FieldValue::Token(token) | FieldValue::Number(token) => out.extend_from_slice(token),
        }
        Ok(())
    })?;
    out.push(b'\n');
    Ok(())
}

fn format_json(out: &mut Vec<u8>, now: SystemTime, r: &AccessRecord<'_>) -> io::Result<()> {
    out.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(out, now)?;
    out.extend_from_slice(b"\",\"level\":\"INFO\",\"fields\":{");
    let mut separator: &[u8] = b"";
    each_field(r, |name, value| {
        out.extend_from_slice(separator);
        separator = b",";
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match value {
            FieldValue::Text(text) => json_string(out, text),
            FieldValue::Token(token) => {
                out.push(b'"');
                out.extend_from_slice(token);
                out.push(b'"');
            }
            FieldValue::Number(number) => out.extend_from_slice(number),
        }
        Ok(())
    })?;
    out.extend_from_slice(b"},\"target\":\"reelserve::access\"}\n");
    Ok(())
}

/// A field's value, as the formats tell them apart.
enum FieldValue<'a> {
    /// Bytes from the request: escaped (or quoted) as the format needs.
    Text(&'a [u8]),
    /// A token the server made (an address, a version name): written as it is, a JSON string.
    Token(&'a [u8]),
    /// A number or a boolean: written as it is in both formats.
    Number(&'a [u8]),
}

/// Every field of a line, in order, with its name: one list for both formats. Numbers and the
/// address are written by hand into small buffers here: `fmt` cost most of a line's time, and
/// a line is written for every response.
fn each_field(
    r: &AccessRecord<'_>,
    mut field: impl FnMut(&str, FieldValue<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut client = Scratch::default();
    push_socket_addr(&mut client, r.client)?;
    field("client", FieldValue::Token(client.as_bytes()))?;
    field("method", FieldValue::Text(r.method.as_bytes()))?;
    field("path", FieldValue::Text(r.path.as_bytes()))?;
    field(
        "version",
        FieldValue::Token(version_name(r.version).as_bytes()),
    )?;
    let mut number = Scratch::default();
    push_decimal(&mut number, u64::from(r.status), 1)?;
    field("status", FieldValue::Number(number.as_bytes()))?;
    let mut number = Scratch::default();
    push_decimal(&mut number, r.bytes, 1)?;
    field("bytes", FieldValue::Number(number.as_bytes()))?;
    let complete: &[u8] = if r.complete { b"true" } else { b"false" };
    field("complete", FieldValue::Number(complete))?;
    // Milliseconds with three decimals, rounded to the microsecond.
    let micros = (r.elapsed.as_nanos() + 500) / 1000;
    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
    let mut number = Scratch::default();
    push_decimal(&mut number, micros / 1000, 1)?;
    number.push(b'.');
    push_decimal(&mut number, micros % 1000, 3)?;
    field("ms", FieldValue::Number(number.as_bytes()))?;
    for (name, value) in [
        ("range", r.range),
        ("user_agent", r.user_agent),
        ("referer", r.referer),
    ] {
        if let Some(value) = value {
            field(name, FieldValue::Text(value))?;
        }
    }
    Ok(())
}

/// The version as the server's other log lines name it.
fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// A text-format value: as it is when it is one token of printable ASCII without quotes or
/// backslashes (paths, methods, most `Range` values), otherwise quoted and escaped, so it can
/// neither end the line nor pass for another `key=value` field outside its quotes.
fn text_value(out: &mut Vec<u8>, value: &[u8]) {
    let plain = |b: &u8| (0x21..=0x7e).contains(b) && *b != b'"' && *b != b'\\';
    if !value.is_empty() && value.iter().all(plain) {
        out.extend_from_slice(value);
        return;
    }
    out.push(b'"');
    for &b in value {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x20..=0x7e => out.push(b),
            _ => push_hex_escape(out, b"\\x", b),
        }
    }
    out.push(b'"');
}

/// A JSON string. Header values are bytes, not necessarily UTF-8: valid UTF-8 is kept, and
/// each byte of an invalid value above ASCII becomes `\u00XX` (read as Latin-1).
fn json_string(out: &mut Vec<u8>, value: &[u8]) {
    let utf8 = std::str::from_utf8(value).is_ok();
    out.push(b'"');
    for &b in value {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x20..=0x7e => out.push(b),
            0x80..=0xff if utf8 => out.push(b),
            _ => push_hex_escape(out, b"\\u00", b),
        }
    }
    out.push(b'"');
}

fn push_hex_escape(out: &mut Vec<u8>, prefix: &[u8], b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(prefix);
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0xf)]);
}

/// `2026-11-30T18:03:32.123456Z`: RFC 3339 in UTC with microseconds, as the server's other
/// log lines have it.
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) -> io::Result<()> {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    push_decimal(out, year, 4)?;
    out.push(b'-');
    push_decimal(out, month, 2)?;
    out.push(b'-');
    push_decimal(out, day, 2)?;
    out.push(b'T');
    push_decimal(out, of_day / 3600, 2)?;
    out.push(b':');
    push_decimal(out, of_day / 60 % 60, 2)?;
    out.push(b':');
    push_decimal(out, of_day % 60, 2)?;
    out.push(b'.');
    push_decimal(out, u64::from(since_epoch.subsec_micros()), 6)?;
    out.push(b'Z');
    Ok(())
}

/// A number or an address being written: 64 bytes hold any of them (the longest, an IPv6
/// address with a zone and a port, takes 58).
type Scratch = InlineBytes<64>;

/// Appends `value` in decimal, zero-padded to at least `width` digits (at most 20), to a line
/// or a [`Scratch`] (a line's write cannot fail; a scratch's only past its 64 bytes, which
/// nothing written here reaches).
fn push_decimal(out: &mut impl Write, value: u64, width: usize) -> io::Result<()> {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = at.min(digits.len().saturating_sub(width));
    out.write_all(&digits[start..])
}

/// `192.0.2.7:50123`, `[2001:db8::1]:443`: what `SocketAddr`'s `Display` writes. IPv4 by hand;
/// IPv6, with its zero-run compression, through `Display`.
fn push_socket_addr(out: &mut Scratch, addr: std::net::SocketAddr) -> io::Result<()> {
    match addr {
        std::net::SocketAddr::V4(v4) => {
            for (index, octet) in v4.ip().octets().into_iter().enumerate() {
                if index > 0 {
                    out.push(b'.');
                }
                push_decimal(out, u64::from(octet), 1)?;
            }
            out.push(b':');
            push_decimal(out, u64::from(v4.port()), 1)
        }
        std::net::SocketAddr::V6(v6) => write!(out, "{v6}"),
    }
}

/// Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch). Also what `plan` writes its
/// HTTP-dates with.
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_numbers_addresses_and_times_are_what_fmt_writes() {
        for value in [0u64, 7, 10, 99, 100, 65_535, 1 << 40, u64::MAX] {
            for width in [1, 2, 3, 4, 6] {
                let mut out = Vec::new();
                push_decimal(&mut out, value, width).unwrap();
                assert_eq!(out, format!("{value:0width$}").into_bytes());
            }
        }
        for addr in [
            "192.0.2.7:50123",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[2001:db8::1]:443",
            "[::ffff:192.0.2.7]:8000",
            "[fe80::1%4294967295]:65535",
        ] {
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            let mut out = Scratch::default();
            push_socket_addr(&mut out, addr).unwrap();
            assert_eq!(out.as_bytes(), addr.to_string().as_bytes());
        }
        for secs in [0u64, 951_782_400, 1_764_547_200, 253_402_300_799] {
            for micros in [0u32, 1, 999_999] {
                let now = UNIX_EPOCH + Duration::new(secs, micros * 1000);
                let mut out = Vec::new();
                write_timestamp(&mut out, now).unwrap();
                let (days, of_day) = (secs / 86_400, secs % 86_400);
                let (y, m, d) = civil_from_days(days);
                let expected = format!(
                    "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
                    of_day / 3600,
                    of_day / 60 % 60,
                    of_day % 60
                );
                assert_eq!(String::from_utf8(out).unwrap(), expected);
            }
        }
    }

    #[test]
    fn milliseconds_have_three_decimals_rounded_to_the_microsecond() {
        let ms = |elapsed: Duration| {
            let mut record = record(None);
            record.elapsed = elapsed;
            let mut line = Vec::new();
            format_line(&mut line, LogFormat::Text, UNIX_EPOCH, &record);
            let line = String::from_utf8(line).unwrap();
            line.split(' ')
                .find_map(|field| field.strip_prefix("ms="))
                .map(str::to_owned)
        };
        assert_eq!(ms(Duration::ZERO).as_deref(), Some("0.000"));
        assert_eq!(ms(Duration::from_micros(1500)).as_deref(), Some("1.500"));
        assert_eq!(
            ms(Duration::from_nanos(1_234_567)).as_deref(),
            Some("1.235")
        );
        assert_eq!(ms(Duration::from_secs(61)).as_deref(), Some("61000.000"));
    }

    fn record<'a>(user_agent: Option<&'a [u8]>) -> AccessRecord<'a> {
        AccessRecord {
            client: "192.0.2.7:50123".parse().unwrap(),
            method: "GET",
            path: "/movie/big.mp4",
            version: Version::HTTP_11,
            status: 206,
            bytes: 1024,
            complete: true,
            elapsed: Duration::from_micros(1500),
            range: Some(b"bytes=0-1023"),
            user_agent,
            referer: None,
        }
    }

    fn line(format: LogFormat, r: &AccessRecord<'_>) -> String {
        let mut out = Vec::new();
        let when = UNIX_EPOCH + Duration::from_micros(1_796_061_812_123_456);
        format_line(&mut out, format, when, r);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_lines_have_the_tracing_shape_and_every_field() {
        let text = line(LogFormat::Text, &record(Some(b"VLC/3.0.20 LibVLC/3.0.20")));
        assert_eq!(
            text,
            "2026-11-30T18:03:32.123456Z  INFO reelserve::access: client=192.0.2.7:50123 \
             method=GET path=/movie/big.mp4 version=HTTP/1.1 status=206 bytes=1024 \
             complete=true ms=1.500 range=bytes=0-1023 user_agent=\"VLC/3.0.20 LibVLC/3.0.20\"\n"
        );
    }

    #[test]
    fn json_lines_have_the_tracing_shape_and_every_field() {
        let json = line(LogFormat::Json, &record(Some(b"curl/8.5.0")));
        assert_eq!(
            json,
            "{\"timestamp\":\"2026-11-30T18:03:32.123456Z\",\"level\":\"INFO\",\"fields\":{\
             \"client\":\"192.0.2.7:50123\",\"method\":\"GET\",\"path\":\"/movie/big.mp4\",\
             \"version\":\"HTTP/1.1\",\"status\":206,\"bytes\":1024,\"complete\":true,\
             \"ms\":1.500,\"range\":\"bytes=0-1023\",\"user_agent\":\"curl/8.5.0\"},\
             \"target\":\"reelserve::access\"}\n"
        );
    }

    #[test]
    fn hostile_header_values_cannot_forge_a_line_or_a_field() {
        let hostile: &[u8] =
            b"x\" status=999\nFAKE  INFO reelserve::access: method=POST\r\x00\x1b[31m\\\xff";
        let text = line(LogFormat::Text, &record(Some(hostile)));
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with('\n'));
        assert!(text.contains(
            "user_agent=\"x\\\" status=999\\nFAKE  INFO reelserve::access: method=POST\\r\\x00\\x1b[31m\\\\\\xff\""
        ), "{text}");
        assert!(text.chars().all(|c| c == '\n' || (' '..='~').contains(&c)));

        let json = line(LogFormat::Json, &record(Some(hostile)));
        assert_eq!(json.matches('\n').count(), 1, "{json}");
        assert!(json.contains(
            "\"user_agent\":\"x\\\" status=999\\nFAKE  INFO reelserve::access: method=POST\\r\\u0000\\u001b[31m\\\\\\u00ff\""
        ), "{json}");
    }

    #[test]
    fn empty_and_spaced_values_are_quoted_and_utf8_is_kept_in_json() {
        let text = line(LogFormat::Text, &record(Some(b"")));
        assert!(text.contains(" user_agent=\"\"\n"), "{text}");
        let json = line(LogFormat::Json, &record(Some("Lecteur vidéo".as_bytes())));
        assert!(json.contains("\"user_agent\":\"Lecteur vidéo\""), "{json}");
        let text = line(LogFormat::Text, &record(Some("vidéo".as_bytes())));
        assert!(text.contains("user_agent=\"vid\\xc3\\xa9o\""), "{text}");
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }
}
