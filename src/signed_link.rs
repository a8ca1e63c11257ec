//! Signed, expiring links (`--signing-key-file`): what a token says, how it is signed, and the
//! one pure function that decides whether a request may pass.
//!
//! A link is the file's URL plus four query parameters:
//!
//! | parameter | meaning |
//! |---|---|
//! | `exp` | expiry, Unix seconds (UTC); the link works while `now < exp` |
//! | `scope` | a path prefix (percent-encoded in the URL): every path starting with it is covered, so `/movies/big` covers `/movies/big.mp4`, `/movies/big.en.vtt` and `/movies/big.jpg`, and `/` covers the whole site (the built-in player with its movie list) |
//! | `ip` | optional: the client address or CIDR network (`203.0.113.7`, `2001:db8::/64`) the link is bound to |
//! | `sig` | HMAC-SHA256, base64url without padding, over the three fields above |
//!
//! The signed message is `reelserve-link-v1\n{exp}\n{scope}\n{ip}` with each field exactly as the
//! link carries it (decoded from the query; `ip` empty when absent). Fields may not contain
//! control characters, so the message is unambiguous. Other query parameters are ignored and the
//! order does not matter, so a player may add its own.
//!
//! Keys: one secret per line of the key file, at least [`MIN_KEY_BYTES`] bytes each, hex or
//! base64. The first line signs; every line verifies, so a key is rotated by adding the new one
//! first, reloading (SIGHUP), and deleting the old one once its links have expired. Every key is
//! tried on every request (no early exit) with `ring::hmac::verify`, which compares in constant
//! time: a response's timing does not say how close a forged signature came, nor which key
//! matched.
//!
//! What it is not: authentication of people. A link is a bearer capability: whoever holds it
//! until it expires may use it (unless bound to an address). See the README's threat model.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::hmac;

/// Shortest secret accepted, in bytes: HMAC-SHA256's output size (RFC 2104 §3 advises keys no
/// shorter than the hash output).
pub const MIN_KEY_BYTES: usize = 32;

/// Most keys a file may hold: each is tried on every request.
pub const MAX_KEYS: usize = 16;

/// Paths served without a token: browsers and crawlers fetch them on their own, with no way to
/// add a query (the favicon, robots.txt, and the player's script and style, which its page
/// links to by plain URL; they are code, not content worth protecting).
pub const EXEMPT_PATHS: [&str; 4] = [
    "/favicon.ico",
    "/robots.txt",
    "/html/movie_player.js",
    "/html/movie_player.css",
];

/// Query parameter: expiry, Unix seconds.
pub const PARAM_EXPIRES: &str = "exp";
/// Query parameter: the path prefix the link covers.
pub const PARAM_SCOPE: &str = "scope";
/// Query parameter: the client address or network the link is bound to (optional).
pub const PARAM_IP: &str = "ip";
/// Query parameter: the signature.
pub const PARAM_SIGNATURE: &str = "sig";

/// Longest value accepted for any token parameter (decoded), in bytes.
const MAX_FIELD_BYTES: usize = 4096;

/// Domain separation: a signature for this format means nothing in any other.
const MESSAGE_PREFIX: &str = "reelserve-link-v1";

/// Why a request was refused. Each is a status and a few words for the client; the server logs
/// the reason with the client and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token parameter at all.
    Missing,
    /// A token parameter is missing, repeated, too long or not in its format.
    Malformed,
    /// The signature matches no key: the link was altered, or signed with a retired key.
    Tampered,
    /// The path is not under the token's scope.
    OutOfScope,
    /// The token is bound to another client address.
    WrongIp,
    /// The token's expiry has passed.
    Expired,
}

impl Refusal {
    /// The status code: 410 Gone for an expired link, 403 Forbidden for every other reason.
    ///
    /// 410 because the link was genuine and the resource is no longer available *through it*
    /// (RFC 9110 §15.5.11: "likely permanent"): a player can tell "ask for a fresh link" apart
    /// from "this link is wrong". It reveals nothing the holder of the link did not know: it
    /// is only answered once the signature has been verified.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Expired => 410,
            _ => 403,
        }
    }

    /// A short name for logs and metrics labels.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Tampered => "tampered",
            Refusal::OutOfScope => "out_of_scope",
            Refusal::WrongIp => "wrong_ip",
            Refusal::Expired => "expired",
        }
    }

    /// The response body: a few words, for the person holding the link.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "403 Forbidden: this server needs a signed link",
            Refusal::Malformed => "403 Forbidden: the link's token is malformed",
            Refusal::Tampered => "403 Forbidden: the link's signature does not match",
            Refusal::OutOfScope => "403 Forbidden: the link does not cover this path",
            Refusal::WrongIp => "403 Forbidden: the link is bound to another client address",
            Refusal::Expired => "410 Gone: the link has expired; ask for a new one",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A client address or network a token is bound to: `ADDR` or `ADDR/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNet {
    addr: IpAddr,
    prefix: u8,
}

impl ClientNet {
    /// Parses `203.0.113.7`, `203.0.113.0/24`, `2001:db8::1` or `2001:db8::/64`.
    pub fn parse(text: &str) -> Option<ClientNet> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok().filter(|p| *p <= max)?
            }
            Some(_) => return None,
        };
        Some(ClientNet { addr, prefix })
    }

    /// Whether `client` is inside. An IPv4 client reached over an IPv6 socket
    /// (`::ffff:a.b.c.d`) counts as its IPv4 address.
    pub fn contains(&self, client: IpAddr) -> bool {
        let client = unmap(client);
        match (self.addr, client) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

impl fmt::Display for ClientNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; anything else as it is.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Expiry, Unix seconds.
    pub expires: u64,
    /// The path prefix covered (decoded).
    pub scope: String,
    /// The client address or network, if bound.
    pub client: Option<ClientNet>,
}

/// A token's fields as the query carries them (decoded), before the signature is checked.
#[derive(Debug, Default)]
struct TokenFields {
    expires: Option<String>,
    scope: Option<String>,
    ip: Option<String>,
    signature: Option<String>,
}

impl TokenFields {
    /// Picks the token parameters out of a query string. `Ok(None)`: none of them is there.
    fn from_query(query: &str) -> Result<Option<TokenFields>, Refusal> {
        let mut fields = TokenFields::default();
        let mut any = false;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                PARAM_EXPIRES => &mut fields.expires,
                PARAM_SCOPE => &mut fields.scope,
                PARAM_IP => &mut fields.ip,
                PARAM_SIGNATURE => &mut fields.signature,
                _ => continue,
            };
            any = true;
            if slot.is_some() || value.len() > 3 * MAX_FIELD_BYTES {
                return Err(Refusal::Malformed);
            }
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| Refusal::Malformed)?;
            if value.len() > MAX_FIELD_BYTES || value.chars().any(char::is_control) {
                return Err(Refusal::Malformed);
            }
            *slot = Some(value.into_owned());
        }
        Ok(any.then_some(fields))
    }
}

/// The bytes a signature covers.
fn signed_message(expires: &str, scope: &str, ip: &str) -> String {
    format!("{MESSAGE_PREFIX}\n{expires}\n{scope}\n{ip}")
}

/// Decides whether a request may pass: pure (no IO, no clock), and total (any input gives an
/// answer, never a panic).
///
/// `path` is the request's path as sent (percent-encoded), `query` its query string without the
/// `?`, `now` Unix seconds. Checks, in order: the token is there and well-formed; its
/// signature matches one of `keys`; it has not expired; `path` is under its scope; `client` is
/// inside its network. The signature comes before everything the token claims, so nothing it
/// says is believed before it is authenticated.
pub fn verify(
    query: Option<&str>,
    path: &str,
    client: IpAddr,
    now: u64,
    keys: &KeyRing,
) -> Result<Grant, Refusal> {
    let fields = match TokenFields::from_query(query.unwrap_or("")) {
        Ok(Some(fields)) => fields,
        Ok(None) => return Err(Refusal::Missing),
        Err(refusal) => return Err(refusal),
    };
    let (Some(expires_text), Some(scope), Some(signature)) =
        (fields.expires, fields.scope, fields.signature)
    else {
        return Err(Refusal::Malformed);
    };
    let expires = parse_expiry(&expires_text).ok_or(Refusal::Malformed)?;
    if !scope.starts_with('/') {
        return Err(Refusal::Malformed);
    }
    let ip_text = fields.ip.unwrap_or_default();
    let client_net = if ip_text.is_empty() {
        None
    } else {
        Some(ClientNet::parse(&ip_text).ok_or(Refusal::Malformed)?)
    };
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature.as_bytes())
        .map_err(|_| Refusal::Malformed)?;
    if signature.len() != hmac::HMAC_SHA256.digest_algorithm().output_len() {
        return Err(Refusal::Malformed);
    }

    let message = signed_message(&expires_text, &scope, &ip_text);
    if !keys.verifies(message.as_bytes(), &signature) {
        return Err(Refusal::Tampered);
    }
    if now >= expires {
        return Err(Refusal::Expired);
    }
    if !path_in_scope(path, &scope) {
        return Err(Refusal::OutOfScope);
    }
    if let Some(net) = client_net {
        if !net.contains(client) {
            return Err(Refusal::WrongIp);
        }
    }
    Ok(Grant {
        expires,
        scope,
        client: client_net,
    })
}

/// Digits only (no sign, no spaces), at most 20 of them, fitting a `u64`.
fn parse_expiry(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether the request path, decoded, starts with `scope`. A path that could climb out of its
/// prefix (`..` or `.` segments, a backslash, NUL) or does not decode is never in scope, even
/// though path resolution would refuse it anyway: the scope check must not rely on it.
pub fn path_in_scope(path: &str, scope: &str) -> bool {
    let Ok(decoded) = percent_decode_str(path).decode_utf8() else {
        return false;
    };
    let climbs = decoded
        .split('/')
        .any(|segment| segment == ".." || segment == ".");
    if climbs || decoded.contains(['\\', '\0']) {
        return false;
    }
    decoded.starts_with(scope)
}

/// The keys in force: the first signs, all verify.
pub struct KeyRing {
    keys: Vec<hmac::Key>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        write!(f, "KeyRing({} keys)", self.keys.len())
    }
}

impl KeyRing {
    /// Keys from the text of a key file: one secret per line, hex (only hex digits) or
    /// base64 (standard or URL-safe alphabet, padding optional); blank lines and lines
    /// starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<KeyRing, KeyFileProblem> {
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let secret = decode_secret(line).ok_or(KeyFileProblem::NotHexOrBase64(number))?;
            if secret.len() < MIN_KEY_BYTES {
                return Err(KeyFileProblem::TooShort(number, secret.len()));
            }
            if keys.len() == MAX_KEYS {
                return Err(KeyFileProblem::TooMany);
            }
            keys.push(hmac::Key::new(hmac::HMAC_SHA256, &secret));
        }
        if keys.is_empty() {
            return Err(KeyFileProblem::Empty);
        }
        Ok(KeyRing { keys })
    }

    /// Reads and parses a key file.
    pub fn load(path: &Path) -> Result<KeyRing, KeyFileError> {
        let error = |problem| KeyFileError {
            path: path.to_owned(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(KeyFileProblem::Read(e)))?;
        KeyRing::parse(&text).map_err(error)
    }

    /// How many keys verify.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a ring has at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether any key's HMAC of `message` is `signature`. Every key is tried, and each
    /// comparison is constant-time (`ring::hmac::verify`).
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.keys.iter().fold(false, |matched, key| {
            hmac::verify(key, message, signature).is_ok() | matched
        })
    }

    /// The query string of a link granting `grant` (signed with the first key):
    /// `exp=...&scope=...[&ip=...]&sig=...`.
    pub fn sign(&self, grant: &Grant) -> String {
        let expires = grant.expires.to_string();
        let ip = grant.client.map(|net| net.to_string()).unwrap_or_default();
        let message = signed_message(&expires, &grant.scope, &ip);
        // `parse` never returns an empty ring.
        let tag = match self.keys.first() {
            Some(key) => hmac::sign(key, message.as_bytes()),
            None => return String::new(),
        };
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
        let mut query = format!(
            "{PARAM_EXPIRES}={expires}&{PARAM_SCOPE}={}",
            utf8_percent_encode(&grant.scope, QUERY_VALUE)
        );
        if !ip.is_empty() {
            query.push_str(&format!(
                "&{PARAM_IP}={}",
                utf8_percent_encode(&ip, QUERY_VALUE)
            ));
        }
        query.push_str(&format!("&{PARAM_SIGNATURE}={signature}"));
        query
    }
}

/// Characters escaped in a query value: all but unreserved ones and `/` (readable scopes).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Characters escaped in a link's path: controls, space and the delimiters that would end or
/// change the path; `%` is kept, so an already-encoded path stays as it is.
const PATH: &AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

fn decode_secret(line: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    if line.len() % 2 == 0 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(line.get(i..i + 2)?, 16).ok())
            .collect();
    }
    let unpadded = line.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .ok()
}

/// What is wrong with a key file's contents.
#[derive(Debug)]
pub enum KeyFileProblem {
    /// It could not be read.
    Read(io::Error),
    /// It holds no key.
    Empty,
    /// This line (1-based) is neither hex nor base64.
    NotHexOrBase64(usize),
    /// This line (1-based) decodes to fewer than [`MIN_KEY_BYTES`] bytes.
    TooShort(usize, usize),
    /// More than [`MAX_KEYS`] keys.
    TooMany,
}

/// A key file that cannot be used, with its path.
#[derive(Debug)]
pub struct KeyFileError {
    path: PathBuf,
    problem: KeyFileProblem,
}

impl KeyFileError {
    /// What is wrong.
    pub fn problem(&self) -> &KeyFileProblem {
        &self.problem
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let hint = "one secret per line, at least 32 bytes, hex or base64; \
                    make one with `head -c 32 /dev/urandom | base64`";
        match &self.problem {
            KeyFileProblem::Read(error) => write!(f, "cannot read signing key file {path}: {error}"),
            KeyFileProblem::Empty => write!(f, "signing key file {path} holds no key ({hint})"),
            KeyFileProblem::NotHexOrBase64(line) => write!(
                f,
                "signing key file {path}, line {line}: neither hex nor base64 ({hint})"
            ),
            KeyFileProblem::TooShort(line, bytes) => write!(
                f,
                "signing key file {path}, line {line}: the key is {bytes} bytes, too short ({hint})"
            ),
            KeyFileProblem::TooMany => write!(
                f,
                "signing key file {path}: more than {MAX_KEYS} keys (each is tried on every request; \
                 delete the retired ones)"
            ),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            KeyFileProblem::Read(error) => Some(error),
            _ => None,
        }
    }
}

/// The key file in force for a running server, reloaded on SIGHUP.
#[derive(Debug)]
pub struct SigningKeys {
    path: PathBuf,
    ring: RwLock<Arc<KeyRing>>,
}

/// Whether a request needs a token, and what it was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// One of [`EXEMPT_PATHS`]: served as without signing.
    Exempt,
    /// A valid token.
    Signed(Grant),
}

impl SigningKeys {
    /// Loads the key file (a startup error if it cannot be used).
    pub fn load(path: &Path) -> Result<SigningKeys, KeyFileError> {
        Ok(SigningKeys {
            path: path.to_owned(),
            ring: RwLock::new(Arc::new(KeyRing::load(path)?)),
        })
    }

    /// The keys in force now.
    pub fn current(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => Arc::clone(&ring),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reads the file again; on any problem the keys in force stay. Returns the new key count.
    pub fn reload(&self) -> Result<usize, KeyFileError> {
        let ring = Arc::new(KeyRing::load(&self.path)?);
        let count = ring.len();
        match self.ring.write() {
            Ok(mut slot) => *slot = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(count)
    }

    /// Checks a request: `path` and `query` as sent, the client's address, the clock now.
    pub fn admit(
        &self,
        path: &str,
        query: Option<&str>,
        client: IpAddr,
        now: SystemTime,
    ) -> Result<Admission, Refusal> {
        if EXEMPT_PATHS.contains(&path) {
            return Ok(Admission::Exempt);
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        verify(query, path, client, now, &self.current()).map(Admission::Signed)
    }
}

/// Reloads `keys` on every SIGHUP, for as long as the process runs. A file that cannot be
/// used is logged and the keys in force stay: a typo must not lock every viewer out.
#[cfg(unix)]
pub async fn reload_on_sighup(keys: Arc<SigningKeys>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; signing keys are only read at start");
        return;
    };
    while hangups.recv().await.is_some() {
        match keys.reload() {
            Ok(count) => tracing::info!(keys = count, "signing keys reloaded"),
            Err(error) => tracing::error!(%error, "signing keys NOT reloaded; the old ones stay"),
        }
    }
}

/// Without SIGHUP, keys are read at start only.
#[cfg(not(unix))]
pub async fn reload_on_sighup(_keys: Arc<SigningKeys>) {}

/// The signed-link parameters of a request's query (`exp`, `scope`, `ip`, `sig`), as they came,
/// for links that carry a token on (a directory listing's).
pub fn token_query(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            [PARAM_EXPIRES, PARAM_SCOPE, PARAM_IP, PARAM_SIGNATURE].contains(&name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A ready link: `base_url` + `path` (escaped where needed) + `?` + the signed query.
pub fn link(base_url: &str, path: &str, query: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let path = utf8_percent_encode(path, PATH);
    format!("{base}{path}?{query}")
}

/// Parses a lifetime: `90` or `90s`, `45m`, `2h`, `7d`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a lifetime (try 90s, 45m, 2h or 7d)"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    match count.checked_mul(unit) {
        Some(seconds) if seconds > 0 && seconds <= 366 * 86_400 => Ok(Duration::from_secs(seconds)),
        _ => Err(format!("`{text}` must be more than 0 and at most a year")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY_A: &str = "6b6579206f6e65206b6579206f6e65206b6579206f6e65206b6579206f6e6521";
    // 32 bytes, base64.
    const KEY_B: &str = "c2Vjb25kIGtleSBzZWNvbmQga2V5IHNlY29uZCBrZXkh";
    const NOW: u64 = 1_800_000_000;

    fn ring(text: &str) -> KeyRing {
        KeyRing::parse(text).unwrap()
    }

    fn grant(scope: &str, ip: Option<&str>) -> Grant {
        Grant {
            expires: NOW + 60,
            scope: scope.into(),
            client: ip.map(|ip| ClientNet::parse(ip).unwrap()),
        }
    }

    fn localhost() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[test]
    fn a_signed_link_verifies_for_its_path() {
        let keys = ring(KEY_A);
        let query = keys.sign(&grant("/movie/big", None));
        let granted = verify(Some(&query), "/movie/big.mp4", localhost(), NOW, &keys).unwrap();
        assert_eq!(granted.scope, "/movie/big");
        assert_eq!(granted.expires, NOW + 60);
    }

    #[test]
    fn other_parameters_and_order_do_not_matter() {
        let keys = ring(KEY_A);
        let query = keys.sign(&grant("/", None));
        let mut parts: Vec<&str> = query.split('&').collect();
        parts.reverse();
        let shuffled = format!("t=12&{}&x", parts.join("&"));
        assert!(verify(Some(&shuffled), "/a.mp4", localhost(), NOW, &keys).is_ok());
    }

    #[test]
    fn refusal_reasons() {
        let keys = ring(KEY_A);
        let ip = localhost();
        let query = keys.sign(&grant("/movie/", Some("127.0.0.1")));
        assert_eq!(
            verify(None, "/movie/a", ip, NOW, &keys),
            Err(Refusal::Missing)
        );
        assert_eq!(
            verify(Some("t=1"), "/movie/a", ip, NOW, &keys),
            Err(Refusal::Missing)
        );
        assert_eq!(
            verify(Some("exp=1&sig=x"), "/movie/a", ip, NOW, &keys),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            verify(Some(&format!("{query}&exp=1")), "/movie/a", ip, NOW, &keys),
            Err(Refusal::Malformed),
            "a repeated parameter"
        );
        let later = (NOW + 61).to_string();
        let tampered_expiry = query.replacen(&(NOW + 60).to_string(), &later, 1);
        assert_eq!(
            verify(Some(&tampered_expiry), "/movie/a", ip, NOW, &keys),
            Err(Refusal::Tampered)
        );
        let tampered_scope = query.replacen("scope=/movie/", "scope=/", 1);
        assert_eq!(
            verify(Some(&tampered_scope), "/secret", ip, NOW, &keys),
            Err(Refusal::Tampered)
        );
        assert_eq!(
            verify(Some(&query), "/other/a", ip, NOW, &keys),
            Err(Refusal::OutOfScope)
        );
        assert_eq!(
            verify(
                Some(&query),
                "/movie/a",
                "127.0.0.2".parse().unwrap(),
                NOW,
                &keys
            ),
            Err(Refusal::WrongIp)
        );
        assert_eq!(
            verify(Some(&query), "/movie/a", ip, NOW + 60, &keys),
            Err(Refusal::Expired)
        );
        assert_eq!(Refusal::Expired.status(), 410);
        assert_eq!(Refusal::WrongIp.status(), 403);
    }

    #[test]
    fn a_forged_expired_token_is_tampered_not_expired() {
        let keys = ring(KEY_A);
        let other = ring(KEY_B);
        let query = other.sign(&grant("/", None));
        assert_eq!(
            verify(Some(&query), "/a", localhost(), NOW + 3600, &keys),
            Err(Refusal::Tampered)
        );
    }

    #[test]
    fn every_key_verifies_and_the_first_signs() {
        let both = ring(&format!("# rotated 2026-11\n{KEY_B}\n\n{KEY_A}\n"));
        let old = ring(KEY_A);
        assert_eq!(both.len(), 2);
        let by_old = old.sign(&grant("/", None));
        assert!(verify(Some(&by_old), "/a", localhost(), NOW, &both).is_ok());
        let by_new = both.sign(&grant("/", None));
        assert_eq!(
            verify(Some(&by_new), "/a", localhost(), NOW, &old),
            Err(Refusal::Tampered)
        );
        assert!(verify(Some(&by_new), "/a", localhost(), NOW, &ring(KEY_B)).is_ok());
    }

    #[test]
    fn scope_cannot_be_left_by_dot_segments_or_encoding() {
        assert!(path_in_scope("/movie/big.mp4", "/movie/big"));
        assert!(path_in_scope("/movie/my%20film.mp4", "/movie/my film"));
        assert!(!path_in_scope("/movie/../secret", "/movie/"));
        assert!(!path_in_scope("/movie/%2e%2e/secret", "/movie/"));
        assert!(!path_in_scope("/movie/./a", "/movie/"));
        assert!(!path_in_scope("/movie\\..\\a", "/movie"));
        assert!(!path_in_scope("/movie%00", "/movie"));
        assert!(!path_in_scope("/mov", "/movie"));
        assert!(!path_in_scope("/%ff", "/"));
    }

    #[test]
    fn client_networks() {
        let net = ClientNet::parse("203.0.113.0/24").unwrap();
        assert!(net.contains("203.0.113.200".parse().unwrap()));
        assert!(net.contains("::ffff:203.0.113.9".parse().unwrap()));
        assert!(!net.contains("203.0.114.1".parse().unwrap()));
        let v6 = ClientNet::parse("2001:db8:1:2::/64").unwrap();
        assert!(v6.contains("2001:db8:1:2:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1:3::1".parse().unwrap()));
        assert!(ClientNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in [
            "",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "x",
            "::/129",
            "1.2.3.4/+8",
        ] {
            assert_eq!(ClientNet::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            ClientNet::parse("10.0.0.1").unwrap().to_string(),
            "10.0.0.1"
        );
        assert_eq!(
            ClientNet::parse("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn key_files() {
        assert!(matches!(KeyRing::parse(""), Err(KeyFileProblem::Empty)));
        assert!(matches!(
            KeyRing::parse("# only a comment\n\n"),
            Err(KeyFileProblem::Empty)
        ));
        assert!(matches!(
            KeyRing::parse("c2hvcnQ="),
            Err(KeyFileProblem::TooShort(1, 5))
        ));
        assert!(matches!(
            KeyRing::parse(&format!("{KEY_A}\nnot a key!\n")),
            Err(KeyFileProblem::NotHexOrBase64(2))
        ));
        let padded = format!("{KEY_B}=\n");
        assert!(KeyRing::parse(&padded).is_ok());
        let url_safe = "-_-_".repeat(11);
        assert!(KeyRing::parse(&url_safe).is_ok());
        let many = format!("{KEY_A}\n").repeat(MAX_KEYS + 1);
        assert!(matches!(
            KeyRing::parse(&many),
            Err(KeyFileProblem::TooMany)
        ));
    }

    #[test]
    fn key_file_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("{KEY_A}\nshort\n")).unwrap();
        let message = KeyRing::load(&path).unwrap_err().to_string();
        assert!(message.contains("keys, line 2"), "{message}");
        let missing = KeyRing::load(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("cannot read signing key file"),
            "{missing}"
        );
    }

    #[test]
    fn exempt_paths_need_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, KEY_A).unwrap();
        let keys = SigningKeys::load(&path).unwrap();
        let now = SystemTime::now();
        assert_eq!(
            keys.admit("/robots.txt", None, localhost(), now),
            Ok(Admission::Exempt)
        );
        assert_eq!(
            keys.admit("/movie.mp4", None, localhost(), now),
            Err(Refusal::Missing)
        );
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("2w").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("99999999999999999999d").is_err());
    }

    #[test]
    fn links_escape_the_path_once() {
        assert_eq!(
            link("https://example.com/", "/my film.mp4", "q"),
            "https://example.com/my%20film.mp4?q"
        );
        assert_eq!(link("http://h", "/a%20b", "q"), "http://h/a%20b?q");
    }

    proptest! {
        #[test]
        fn any_query_gets_an_answer_not_a_panic(query in ".{0,300}", path in ".{0,60}") {
            let keys = ring(KEY_A);
            let _ = verify(Some(&query), &path, localhost(), NOW, &keys);
        }

        #[test]
        fn any_token_like_query_gets_an_answer(
            exp in "[0-9]{0,22}|-1| 5",
            scope in "(/|%2F|%00|[a-z/.%]){0,20}",
            ip in "([0-9.:/a-f]){0,20}",
            sig in "[A-Za-z0-9_=+-]{0,50}",
        ) {
            let keys = ring(KEY_A);
            let query = format!("exp={exp}&scope={scope}&ip={ip}&sig={sig}");
            prop_assert!(verify(Some(&query), "/a", localhost(), NOW, &keys).is_err());
        }

        #[test]
        fn signed_grants_round_trip_and_any_change_is_caught(
            scope in "/[a-zA-Z0-9 ._~/%é-]{0,40}",
            ttl in 1u64..1_000_000,
            flip in 0usize..64,
        ) {
            let keys = ring(KEY_A);
            let grant = Grant { expires: NOW + ttl, scope: scope.clone(), client: None };
            let query = keys.sign(&grant);
            let path = format!("{}x", utf8_percent_encode(&scope, QUERY_VALUE));
            let verified = verify(Some(&query), &path, localhost(), NOW, &keys);
            let climbs = scope.split('/').any(|s| s == ".." || s == ".") || path.contains("%2e");
            if !climbs && !scope.contains('%') {
                prop_assert_eq!(verified, Ok(grant));
            }
            // Change one character of the signature: never accepted.
            let at = query.rfind("sig=").unwrap() + 4 + flip % 43;
            let mut bytes = query.into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            prop_assert!(verify(Some(&altered), &path, localhost(), NOW, &keys).is_err());
        }
    }
}
