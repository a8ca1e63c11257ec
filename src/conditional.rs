//! Conditional requests (RFC 9110 §13), evaluated without any IO.
//!
//! [`evaluate`] takes the request's precondition header values and the representation's
//! validators and answers what the server must do: go on (honouring or ignoring a `Range`),
//! answer `304 Not Modified`, or answer `412 Precondition Failed`. It follows the order of
//! §13.2.2 exactly:
//!
//! 1. `If-Match` present: false -> 412.
//! 2. Else `If-Unmodified-Since` present (and a valid date): false -> 412.
//! 3. `If-None-Match` present: false -> 304 for GET/HEAD, 412 otherwise.
//! 4. Else, for GET/HEAD, `If-Modified-Since` present (and a valid date): false -> 304.
//! 5. For GET with `Range` and `If-Range`: false -> ignore the `Range` (send 200 whole).
//! 6. Otherwise perform the method.
//!
//! Invalid header values are handled here and only here, as the RFC says for each field:
//! invalid dates are ignored (§13.1.3, §13.1.4); entity-tag lists keep their valid members; an
//! `If-Range` that is neither a strong entity-tag nor a strong date is false (§13.1.5).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::inline_bytes::InlineBytes;

/// The request headers that §13 evaluates. Several field lines of one header are passed joined
/// with ", " (RFC 9110 §5.3).
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestPreconditions<'a> {
    /// `If-Match`
    pub if_match: Option<&'a str>,
    /// `If-None-Match`
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`
    pub if_modified_since: Option<&'a str>,
    /// `If-Unmodified-Since`
    pub if_unmodified_since: Option<&'a str>,
    /// `If-Range`
    pub if_range: Option<&'a str>,
    /// Whether the request carries a `Range` header (If-Range is ignored without one).
    pub has_range: bool,
}

/// The validators the server sends for a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validators {
    /// The strong entity-tag's opaque part, without quotes (we only generate strong tags).
    pub etag: OpaqueTag,
    /// Last modification time, already truncated to whole seconds (HTTP-date resolution).
    pub last_modified: Option<SystemTime>,
}

/// The request method, as far as §13 cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// Anything else (the service answers those with 405 before asking, but the rules are
    /// total).
    Other,
}

/// What the server must do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Perform the method. `honor_range` is false when `If-Range` failed: the `Range` header
    /// must then be ignored and the whole representation sent (§13.1.5).
    Proceed {
        /// Whether a `Range` header, if any, may be honoured.
        honor_range: bool,
    },
    /// `304 Not Modified` (§15.4.5).
    NotModified,
    /// `412 Precondition Failed` (§15.5.13).
    PreconditionFailed,
}

/// An entity-tag's opaque part (RFC 9110 §8.8.3), held inline: a file's tag is built on every
/// request, and copying 64 bytes costs less than allocating, filling and freeing a `String`.
/// Holds at most [`OpaqueTag::CAPACITY`] bytes of `etagc` characters (`!` and `#` to `~`),
/// which is what every tag this server makes needs and all it may contain.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OpaqueTag(InlineBytes<{ OpaqueTag::CAPACITY }>);

impl OpaqueTag {
    /// Room for the longest tag [`Validators::from_file_identity`] writes: three 64-bit and one
    /// 32-bit number in hex with their three separators (16 + 1 + 16 + 1 + 16 + 1 + 8 = 59).
    pub const CAPACITY: usize = 63;

    /// The empty tag, to push onto.
    pub const EMPTY: OpaqueTag = OpaqueTag(InlineBytes::EMPTY);

    /// `text` as a tag, or `None` if it is too long or holds a byte an entity-tag may not.
    pub fn new(text: &str) -> Option<OpaqueTag> {
        let mut tag = OpaqueTag::EMPTY;
        (text.bytes().all(is_etagc) && tag.0.push_slice(text.as_bytes())).then_some(tag)
    }

    /// The tag's text.
    pub fn as_str(&self) -> &str {
        // Only `etagc` bytes, all ASCII, are ever pushed: this never falls back.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Appends `byte`; nothing if it does not fit.
    fn push(&mut self, byte: u8) {
        self.0.push(byte);
    }

    /// Appends `value` in lower-case hex without leading zeros (as `{:x}` writes it); nothing
    /// if it does not fit.
    fn push_hex(&mut self, value: u64) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 16];
        let digits = (64 - value.leading_zeros()).div_ceil(4).max(1) as usize;
        let hex = &mut hex[..digits];
        for (slot, shift) in hex.iter_mut().zip((0..digits).rev()) {
            *slot = DIGITS[((value >> (shift * 4)) & 0xf) as usize];
        }
        self.0.push_slice(hex);
    }
}

impl std::fmt::Debug for OpaqueTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for OpaqueTag {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<OpaqueTag> for &str {
    fn eq(&self, other: &OpaqueTag) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// `etagc` (RFC 9110 §8.8.3): `!` or `#` to `~` but not DEL, or obs-text, which this server
/// never makes, so a tag stays ASCII.
fn is_etagc(byte: u8) -> bool {
    byte == 0x21 || (0x23..0x7f).contains(&byte)
}

impl Validators {
    /// The `ETag` header value: a strong entity-tag (§8.8.3).
    pub fn etag_header(&self) -> String {
        let tag = self.etag.as_str();
        let mut quoted = String::with_capacity(tag.len() + 2);
        quoted.push('"');
        quoted.push_str(tag);
        quoted.push('"');
        quoted
    }

    /// Builds validators from file metadata. The tag covers length and mtime to the
    /// nanosecond, so a file rewritten in place (new size or mtime) gets a new tag, while copies
    /// of one file with preserved mtimes (rsync -t, one image) get the same tag on every
    /// instance behind a load balancer, as nginx's and Apache's defaults do. With `inode`, the
    /// tag also changes when the file is replaced by another with the same size and mtime (for
    /// single-host setups that swap files with preserved mtimes; `--etag-inode`).
    pub fn from_file_identity(
        inode: Option<u64>,
        len: u64,
        modified: Option<SystemTime>,
    ) -> Validators {
        let since_epoch = modified
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        // "{inode:x}-{len:x}-{secs:x}.{nanos:x}", written by hand: this runs on every request,
        // and `format!` costs several times the few bytes it writes. It always fits: see
        // `OpaqueTag::CAPACITY`.
        let mut etag = OpaqueTag::EMPTY;
        if let Some(inode) = inode {
            etag.push_hex(inode);
            etag.push(b'-');
        }
        etag.push_hex(len);
        etag.push(b'-');
        etag.push_hex(since_epoch.as_secs());
        etag.push(b'.');
        etag.push_hex(u64::from(since_epoch.subsec_nanos()));
        Validators {
            etag,
            last_modified: modified.map(truncate_to_seconds),
        }
    }
}

/// HTTP dates have one-second resolution; comparisons must use the same.
pub fn truncate_to_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => UNIX_EPOCH,
    }
}

/// Evaluates the preconditions in the order of RFC 9110 §13.2.2. `now` is the server's clock,
/// used to decide whether `Last-Modified` is a strong validator (§8.8.2.2) for `If-Range`.
pub fn evaluate(
    method: MethodKind,
    request: &RequestPreconditions<'_>,
    validators: &Validators,
    now: SystemTime,
) -> Precondition {
    let get_or_head = matches!(method, MethodKind::Get | MethodKind::Head);
    // Step 1 and 2.
    if let Some(if_match) = request.if_match {
        if !if_match_passes(if_match, validators) {
            return Precondition::PreconditionFailed;
        }
    } else if let Some(date) = request.if_unmodified_since.and_then(parse_single_date) {
        // §13.1.4: false if the representation was modified after the date.
        if validators.last_modified.is_some_and(|lm| lm > date) {
            return Precondition::PreconditionFailed;
        }
    }
    // Step 3 and 4.
    if let Some(if_none_match) = request.if_none_match {
        if !if_none_match_passes(if_none_match, validators) {
            return if get_or_head {
                Precondition::NotModified
            } else {
                Precondition::PreconditionFailed
            };
        }
    } else if get_or_head {
        if let Some(date) = request.if_modified_since.and_then(parse_single_date) {
            // §13.1.3: false if the representation has not been modified since the date.
            if validators.last_modified.is_some_and(|lm| lm <= date) {
                return Precondition::NotModified;
            }
        }
    }
    // Step 5: If-Range only matters for a GET with a Range (§13.1.5: "MUST ignore" otherwise).
    let honor_range = match request.if_range {
        Some(if_range) if method == MethodKind::Get && request.has_range => {
            if_range_passes(if_range, validators, now)
        }
        _ => true,
    };
    Precondition::Proceed { honor_range }
}

/// §13.1.1: `*` passes for an existing representation; otherwise some listed tag must match
/// with the strong comparison.
fn if_match_passes(value: &str, validators: &Validators) -> bool {
    if value.trim() == "*" {
        return true;
    }
    entity_tags(value).any(|tag| !tag.weak && tag.opaque == validators.etag)
}

/// §13.1.2: `*` is false for an existing representation; otherwise false when some listed tag
/// matches with the weak comparison.
fn if_none_match_passes(value: &str, validators: &Validators) -> bool {
    if value.trim() == "*" {
        return false;
    }
    !entity_tags(value).any(|tag| tag.opaque == validators.etag)
}

/// §13.1.5: an entity-tag must match strongly; a date must equal `Last-Modified` exactly and
/// `Last-Modified` must be strong (at least a second older than now, §8.8.2.2). Anything else,
/// including a weak tag or garbage, is false.
fn if_range_passes(value: &str, validators: &Validators, now: SystemTime) -> bool {
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        let mut tags = entity_tags(value);
        return match (tags.next(), tags.next()) {
            (Some(tag), None) => !tag.weak && tag.opaque == validators.etag,
            _ => false,
        };
    }
    match (httpdate::parse_http_date(value), validators.last_modified) {
        (Ok(date), Some(last_modified)) => {
            date == last_modified
                && now
                    .duration_since(last_modified)
                    .is_ok_and(|age| age >= Duration::from_secs(1))
        }
        _ => false,
    }
}

/// §13.1.3/§13.1.4: a date field with more than one member, or an invalid date, is ignored.
/// (HTTP-dates contain one comma after the weekday, so "one member" means at most one comma.)
fn parse_single_date(value: &str) -> Option<SystemTime> {
    if value.matches(',').count() > 1 {
        return None;
    }
    httpdate::parse_http_date(value.trim()).ok()
}

/// One parsed `entity-tag` (§8.8.3).
#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

/// Iterates over the valid entity-tags of a `#entity-tag` list. Tags may contain commas, so the
/// list is scanned, not split. An invalid member ends the scan: what follows it cannot be
/// trusted to be aligned to members.
fn entity_tags(list: &str) -> impl Iterator<Item = EntityTag<'_>> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        let parsed = parse_entity_tag(rest);
        rest = match parsed {
            Some((_, after)) => after,
            None => "",
        };
        parsed.map(|(tag, _)| tag)
    })
}

/// Parses one entity-tag at the start of `text`; returns it and the text after it, which must
/// be empty or continue the list with a comma.
fn parse_entity_tag(text: &str) -> Option<(EntityTag<'_>, &str)> {
    let (weak, after_prefix) = match text.strip_prefix("W/") {
        Some(after) => (true, after),
        None => (false, text),
    };
    let quoted = after_prefix.strip_prefix('"')?;
    let end = quoted.find('"')?;
    let opaque = &quoted[..end];
    // etagc = %x21 / %x23-7E / obs-text: anything visible but DQUOTE.
    if !opaque.bytes().all(|b| b == 0x21 || b >= 0x23 && b != 0x7f) {
        return None;
    }
    let after = &quoted[end + 1..];
    let next = after.trim_start_matches([' ', '\t']);
    (next.is_empty() || next.starts_with(',')).then_some((EntityTag { weak, opaque }, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LAST_MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const EARLIER: &str = "Sat, 05 Nov 1994 08:49:37 GMT";
    const LATER: &str = "Mon, 07 Nov 1994 08:49:37 GMT";

    fn validators() -> Validators {
        Validators {
            etag: OpaqueTag::new("abc-123").unwrap(),
            last_modified: Some(httpdate::parse_http_date(LAST_MODIFIED).unwrap()),
        }
    }

    fn now() -> SystemTime {
        httpdate::parse_http_date("Tue, 01 Jan 2030 00:00:00 GMT").unwrap()
    }

    fn get(request: RequestPreconditions<'_>) -> Precondition {
        evaluate(MethodKind::Get, &request, &validators(), now())
    }

    const PROCEED: Precondition = Precondition::Proceed { honor_range: true };
    const IGNORE_RANGE: Precondition = Precondition::Proceed { honor_range: false };
    const NOT_MODIFIED: Precondition = Precondition::NotModified;
    const FAILED: Precondition = Precondition::PreconditionFailed;

    macro_rules! precondition_cases {
        ($($name:ident: { $($field:ident: $value:expr),* $(,)? } => $expected:expr;)*) => {
            $(#[test] fn $name() {
                let request = RequestPreconditions { $($field: $value,)* ..Default::default() };
                assert_eq!(get(request), $expected);
            })*
        };
    }

    precondition_cases! {
        no_preconditions_proceed: {} => PROCEED;
        // §13.1.1 If-Match
        rfc9110_13_1_1_if_match_matching_strong_tag_proceeds: { if_match: Some("\"abc-123\"") } => PROCEED;
        rfc9110_13_1_1_if_match_star_proceeds: { if_match: Some("*") } => PROCEED;
        rfc9110_13_1_1_if_match_list_with_match_proceeds: { if_match: Some("\"x\", \"abc-123\"") } => PROCEED;
        rfc9110_13_1_1_if_match_non_matching_returns_412: { if_match: Some("\"other\"") } => FAILED;
        rfc9110_13_1_1_if_match_weak_tag_never_matches: { if_match: Some("W/\"abc-123\"") } => FAILED;
        rfc9110_13_1_1_if_match_garbage_returns_412: { if_match: Some("abc-123") } => FAILED;
        // §13.1.4 If-Unmodified-Since
        rfc9110_13_1_4_unmodified_since_same_date_proceeds: { if_unmodified_since: Some(LAST_MODIFIED) } => PROCEED;
        rfc9110_13_1_4_unmodified_since_later_proceeds: { if_unmodified_since: Some(LATER) } => PROCEED;
        rfc9110_13_1_4_modified_after_date_returns_412: { if_unmodified_since: Some(EARLIER) } => FAILED;
        rfc9110_13_1_4_invalid_date_ignored: { if_unmodified_since: Some("yesterday") } => PROCEED;
        rfc9110_13_1_4_two_dates_ignored: { if_unmodified_since: Some("Sat, 05 Nov 1994 08:49:37 GMT, Sat, 05 Nov 1994 08:49:37 GMT") } => PROCEED;
        rfc9110_13_2_2_if_match_overrides_if_unmodified_since: { if_match: Some("\"abc-123\""), if_unmodified_since: Some(EARLIER) } => PROCEED;
        // §13.1.2 If-None-Match
        rfc9110_13_1_2_if_none_match_matching_returns_304: { if_none_match: Some("\"abc-123\"") } => NOT_MODIFIED;
        rfc9110_13_1_2_if_none_match_weak_comparison_returns_304: { if_none_match: Some("W/\"abc-123\"") } => NOT_MODIFIED;
        rfc9110_13_1_2_if_none_match_star_returns_304: { if_none_match: Some("*") } => NOT_MODIFIED;
        rfc9110_13_1_2_if_none_match_list_returns_304: { if_none_match: Some("\"a\" , W/\"b\",\"abc-123\"") } => NOT_MODIFIED;
        rfc9110_13_1_2_if_none_match_other_tag_proceeds: { if_none_match: Some("\"other\"") } => PROCEED;
        rfc9110_13_1_2_if_none_match_garbage_proceeds: { if_none_match: Some("garbage") } => PROCEED;
        rfc9110_13_1_2_tag_with_comma_parsed_whole: { if_none_match: Some("\"abc,123\", \"abc-123\"") } => NOT_MODIFIED;
        // §13.1.3 If-Modified-Since
        rfc9110_13_1_3_not_modified_since_returns_304: { if_modified_since: Some(LAST_MODIFIED) } => NOT_MODIFIED;
        rfc9110_13_1_3_later_date_returns_304: { if_modified_since: Some(LATER) } => NOT_MODIFIED;
        rfc9110_13_1_3_modified_since_proceeds: { if_modified_since: Some(EARLIER) } => PROCEED;
        rfc9110_13_1_3_invalid_date_ignored: { if_modified_since: Some("not a date") } => PROCEED;
        rfc9110_13_1_3_rfc850_date_accepted: { if_modified_since: Some("Sunday, 06-Nov-94 08:49:37 GMT") } => NOT_MODIFIED;
        rfc9110_13_1_3_asctime_date_accepted: { if_modified_since: Some("Sun Nov  6 08:49:37 1994") } => NOT_MODIFIED;
        // §13.2.2 order
        rfc9110_13_2_2_if_none_match_wins_over_if_modified_since: { if_none_match: Some("\"other\""), if_modified_since: Some(LATER) } => PROCEED;
        rfc9110_13_2_2_if_match_failure_before_if_none_match: { if_match: Some("\"other\""), if_none_match: Some("\"abc-123\"") } => FAILED;
        rfc9110_13_2_2_unmodified_since_failure_before_304: { if_unmodified_since: Some(EARLIER), if_none_match: Some("*") } => FAILED;
        // §13.1.5 If-Range
        rfc9110_13_1_5_if_range_strong_tag_match_keeps_range: { if_range: Some("\"abc-123\""), has_range: true } => PROCEED;
        rfc9110_13_1_5_if_range_other_tag_ignores_range: { if_range: Some("\"other\""), has_range: true } => IGNORE_RANGE;
        rfc9110_13_1_5_if_range_weak_tag_ignores_range: { if_range: Some("W/\"abc-123\""), has_range: true } => IGNORE_RANGE;
        rfc9110_13_1_5_if_range_exact_date_keeps_range: { if_range: Some(LAST_MODIFIED), has_range: true } => PROCEED;
        rfc9110_13_1_5_if_range_later_date_ignores_range: { if_range: Some(LATER), has_range: true } => IGNORE_RANGE;
        rfc9110_13_1_5_if_range_earlier_date_ignores_range: { if_range: Some(EARLIER), has_range: true } => IGNORE_RANGE;
        rfc9110_13_1_5_if_range_garbage_ignores_range: { if_range: Some("soon"), has_range: true } => IGNORE_RANGE;
        rfc9110_13_1_5_if_range_tag_list_ignores_range: { if_range: Some("\"abc-123\", \"x\""), has_range: true } => IGNORE_RANGE;
        rfc9110_13_1_5_if_range_without_range_ignored: { if_range: Some("\"other\"") } => PROCEED;
    }

    #[test]
    fn rfc9110_13_1_5_if_range_date_of_fresh_file_is_weak() {
        // Modified within the last second: Last-Modified is weak (§8.8.2.2), If-Range fails.
        let request = RequestPreconditions {
            if_range: Some(LAST_MODIFIED),
            has_range: true,
            ..Default::default()
        };
        let just_after = validators().last_modified.unwrap() + Duration::from_millis(500);
        assert_eq!(
            evaluate(MethodKind::Get, &request, &validators(), just_after),
            IGNORE_RANGE
        );
    }

    #[test]
    fn rfc9110_13_1_5_if_range_ignored_for_head() {
        let request = RequestPreconditions {
            if_range: Some("\"other\""),
            has_range: true,
            ..Default::default()
        };
        assert_eq!(
            evaluate(MethodKind::Head, &request, &validators(), now()),
            PROCEED
        );
    }

    #[test]
    fn rfc9110_13_1_3_if_modified_since_ignored_for_other_methods() {
        let request = RequestPreconditions {
            if_modified_since: Some(LATER),
            ..Default::default()
        };
        assert_eq!(
            evaluate(MethodKind::Other, &request, &validators(), now()),
            PROCEED
        );
    }

    #[test]
    fn rfc9110_13_1_2_if_none_match_other_methods_get_412() {
        let request = RequestPreconditions {
            if_none_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(
            evaluate(MethodKind::Other, &request, &validators(), now()),
            FAILED
        );
    }

    #[test]
    fn without_last_modified_date_conditions_never_fire() {
        let validators = Validators {
            etag: OpaqueTag::new("t").unwrap(),
            last_modified: None,
        };
        let request = RequestPreconditions {
            if_modified_since: Some(LATER),
            if_unmodified_since: Some(EARLIER),
            ..Default::default()
        };
        assert_eq!(
            evaluate(MethodKind::Get, &request, &validators, now()),
            PROCEED
        );
    }

    #[test]
    fn etag_depends_on_len_and_mtime_and_optionally_inode() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let base = Validators::from_file_identity(None, 100, Some(t));
        // Copies on other instances (other inodes) agree by default...
        assert_eq!(base, Validators::from_file_identity(None, 100, Some(t)));
        assert_ne!(base, Validators::from_file_identity(None, 101, Some(t)));
        assert_ne!(
            base.etag,
            Validators::from_file_identity(None, 100, Some(t + Duration::from_nanos(1))).etag
        );
        // ...and with --etag-inode a replaced file with the same size and mtime differs.
        let with_inode = Validators::from_file_identity(Some(1), 100, Some(t));
        assert_ne!(
            with_inode,
            Validators::from_file_identity(Some(2), 100, Some(t))
        );
        assert_ne!(with_inode.etag, base.etag);
        assert_eq!(
            base.last_modified,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert!(base.etag_header().starts_with('"') && base.etag_header().ends_with('"'));
    }

    #[test]
    fn the_longest_file_tag_fits_whole() {
        let latest = (0..64)
            .rev()
            .find_map(|bits| UNIX_EPOCH.checked_add(Duration::new((1 << bits) - 1, 999_999_999)))
            .unwrap();
        let since = latest.duration_since(UNIX_EPOCH).unwrap();
        let validators = Validators::from_file_identity(Some(u64::MAX), u64::MAX, Some(latest));
        let expected = format!(
            "{:x}-{:x}-{:x}.{:x}",
            u64::MAX,
            u64::MAX,
            since.as_secs(),
            since.subsec_nanos()
        );
        assert_eq!(validators.etag.as_str(), expected);
        assert!(expected.len() <= OpaqueTag::CAPACITY);
    }

    #[test]
    fn an_opaque_tag_holds_only_etagc_and_only_so_much() {
        assert_eq!(OpaqueTag::new("abc-1.2").unwrap().as_str(), "abc-1.2");
        assert_eq!(OpaqueTag::new("").unwrap().as_str(), "");
        for bad in ["a\"b", "a b", "tab\t", "é", "del\u{7f}"] {
            assert!(OpaqueTag::new(bad).is_none(), "{bad:?}");
        }
        let full = "x".repeat(OpaqueTag::CAPACITY);
        assert_eq!(OpaqueTag::new(&full).unwrap().as_str(), full);
        assert!(OpaqueTag::new(&format!("{full}x")).is_none());
    }

    #[test]
    fn entity_tag_list_parsing() {
        let tags: Vec<_> = entity_tags(" \"a\", W/\"b\" ,\"c,d\"").collect();
        assert_eq!(
            tags,
            vec![
                EntityTag {
                    weak: false,
                    opaque: "a"
                },
                EntityTag {
                    weak: true,
                    opaque: "b"
                },
                EntityTag {
                    weak: false,
                    opaque: "c,d"
                },
            ]
        );
        assert_eq!(entity_tags("\"a\" junk, \"b\"").count(), 0);
        assert_eq!(entity_tags("\"unterminated").count(), 0);
        assert_eq!(entity_tags("\"a\"\"b\"").count(), 0);
    }

    proptest! {
        /// The hand-written ETag is exactly what `format!("{:x}-…")` would write.
        #[test]
        fn etag_is_the_formatted_identity(
            inode in proptest::option::of(any::<u64>()),
            len in any::<u64>(),
            secs in 0u64..(1 << 40),
            nanos in 0u32..1_000_000_000,
        ) {
            let modified = UNIX_EPOCH + Duration::new(secs, nanos);
            let expected = match inode {
                Some(inode) => format!("{inode:x}-{len:x}-{secs:x}.{nanos:x}"),
                None => format!("{len:x}-{secs:x}.{nanos:x}"),
            };
            let validators = Validators::from_file_identity(inode, len, Some(modified));
            prop_assert_eq!(validators.etag.as_str(), expected.as_str());
        }
    }

    proptest! {
        #[test]
        fn arbitrary_header_values_never_panic(
            a in ".{0,60}", b in ".{0,60}", c in ".{0,60}", d in ".{0,60}", e in ".{0,60}",
            has_range in any::<bool>(),
        ) {
            let request = RequestPreconditions {
                if_match: Some(&a), if_none_match: Some(&b), if_modified_since: Some(&c),
                if_unmodified_since: Some(&d), if_range: Some(&e), has_range,
            };
            let _ = evaluate(MethodKind::Get, &request, &validators(), now());
        }

        /// A GET with only If-None-Match is 304 exactly when the list names our tag (weakly)
        /// or is `*`: a model of §13.1.2 over generated tag lists.
        #[test]
        fn if_none_match_model(tags in proptest::collection::vec(("(W/)?", "[a-c\\-0-9]{0,8}"), 1..6)) {
            let list = tags.iter().map(|(w, t)| format!("{w}\"{t}\"")).collect::<Vec<_>>().join(", ");
            let expect_304 = tags.iter().any(|(_, t)| t == "abc-123");
            let request = RequestPreconditions { if_none_match: Some(&list), ..Default::default() };
            prop_assert_eq!(get(request) == NOT_MODIFIED, expect_304);
        }
    }
}
