//! The `Range` request header (RFC 9110 §14), parsed and resolved without any IO.
//!
//! Two passes, as in `http-range-header`: [`parse`] checks the syntax of the header text and
//! needs no file size; [`RangeSet::resolve`] applies the specs to a representation length and
//! decides between a `206` with one or more [`ByteRange`]s, a `416`, or serving the whole
//! representation (`200`).
//!
//! What this module is not: it does not evaluate `If-Range` (see [`crate::conditional`]), nor
//! build the response. It never panics and never allocates more than [`MAX_RANGE_SPECS`] specs,
//! however hostile the header (cf. CVE-2011-3192, "Apache Killer").

/// How many range-specs a request may carry before the whole header is ignored (the client gets
/// a `200` with the full representation, as Apache's `MaxRanges` and nginx's `max_ranges` do).
/// A video player sends one; a download manager a handful.
pub const MAX_RANGE_SPECS: usize = 64;

/// A syntactically valid `bytes` range header: its specs in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet {
    specs: Vec<RangeSpec>,
}

/// One `range-spec` (RFC 9110 §14.1.1). Positions beyond `u64::MAX` saturate: such a position
/// is past the end of any file, which is what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last`, both inclusive.
    FromTo(u64, u64),
    /// `first-`: from `first` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Why a `Range` header is ignored rather than answered: the server then sends `200` with the
/// whole representation (RFC 9110 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// A range unit other than `bytes` (§14.1: "ignore ... unknown range unit").
    UnknownUnit,
    /// The header does not follow the `ranges-specifier` grammar, or has `last < first`.
    Invalid,
    /// More than [`MAX_RANGE_SPECS`] specs: a denial-of-service shape, not a player.
    TooManyRanges,
}

/// An inclusive byte range that lies inside the representation: `first <= last < len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRange {
    /// First byte offset.
    pub first: u64,
    /// Last byte offset, inclusive.
    pub last: u64,
}

impl ByteRange {
    /// Number of bytes in the range (never zero).
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always false: a `ByteRange` holds at least one byte. Here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for this range of a representation of `complete_len` bytes.
    pub fn content_range(&self, complete_len: u64) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, complete_len)
    }
}

/// What to send for a `Range` header against a representation of a given length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// `206 Partial Content`: one range, or several for `multipart/byteranges`. The ranges are
    /// non-empty, inside the file, do not overlap or touch (they were coalesced) and are in the
    /// order the client asked for them (§14.6: "SHOULD send the parts in the same order").
    Satisfiable(Vec<ByteRange>),
    /// `416 Range Not Satisfiable`, with `Content-Range: bytes */LEN` (§15.5.17).
    Unsatisfiable,
    /// Send the whole representation with `200`: e.g. a suffix range of an empty file, which
    /// §14.1.3 calls satisfiable but which no `Content-Range` can describe.
    WholeRepresentation,
}

/// Parses a `Range` header value (RFC 9110 §14.1.2):
///
/// ```text
/// ranges-specifier = range-unit "=" range-set
/// range-set        = 1#range-spec
/// range-spec       = int-range / suffix-range / other-range
/// int-range        = first-pos "-" [ last-pos ]
/// suffix-range     = "-" suffix-length
/// ```
///
/// The unit is compared case-insensitively (§14.1). Empty list elements and optional white
/// space around them are accepted (§5.6.1.2). Work is linear in the header's length.
pub fn parse(header: &[u8]) -> Result<RangeSet, Ignored> {
    let eq = header.iter().position(|&b| b == b'=').ok_or_else(|| {
        // No '=': either garbage or a bare token; neither is a `bytes` range.
        if header.is_empty() || !header.iter().all(|&b| is_tchar(b)) {
            Ignored::Invalid
        } else {
            Ignored::UnknownUnit
        }
    })?;
    let (unit, rest) = (&header[..eq], &header[eq + 1..]);
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return Err(if !unit.is_empty() && unit.iter().all(|&b| is_tchar(b)) {
            Ignored::UnknownUnit
        } else {
            Ignored::Invalid
        });
    }
    let mut specs = Vec::new();
    for element in rest.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue;
        }
        if specs.len() == MAX_RANGE_SPECS {
            return Err(Ignored::TooManyRanges);
        }
        specs.push(parse_spec(element)?);
    }
    if specs.is_empty() {
        return Err(Ignored::Invalid);
    }
    Ok(RangeSet { specs })
}

fn parse_spec(spec: &[u8]) -> Result<RangeSpec, Ignored> {
    let dash = spec
        .iter()
        .position(|&b| b == b'-')
        .ok_or(Ignored::Invalid)?;
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Err(Ignored::Invalid),
        (true, false) => Ok(RangeSpec::Suffix(parse_digits(last)?)),
        (false, true) => Ok(RangeSpec::From(parse_digits(first)?)),
        (false, false) => {
            let (first, last) = (parse_digits(first)?, parse_digits(last)?);
            if last < first {
                // §14.1.1: "invalid if the last-pos value is present and less than first-pos".
                return Err(Ignored::Invalid);
            }
            Ok(RangeSpec::FromTo(first, last))
        }
    }
}

/// `1*DIGIT`, saturating at `u64::MAX` (a position no file reaches).
fn parse_digits(digits: &[u8]) -> Result<u64, Ignored> {
    if digits.is_empty() {
        return Err(Ignored::Invalid);
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            Ok(acc.saturating_mul(10).saturating_add(u64::from(b - b'0')))
        } else {
            Err(Ignored::Invalid)
        }
    })
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl RangeSet {
    /// The specs as the client sent them.
    pub fn specs(&self) -> &[RangeSpec] {
        &self.specs
    }

    /// Applies the specs to a representation of `len` bytes (RFC 9110 §14.1.1–§14.1.3):
    /// an end past EOF is clamped, a suffix longer than the file means the whole file, specs
    /// with `first >= len` are dropped, and if none is left the answer is `416`.
    ///
    /// Overlapping and adjacent ranges are coalesced (§14.2 allows it), so the bytes sent are
    /// never more than `len` however the specs repeat; parts keep the client's order, a coalesced
    /// part standing where its earliest member stood.
    pub fn resolve(&self, len: u64) -> Resolved {
        // (position in the request, range)
        let mut ranges: Vec<(usize, ByteRange)> = Vec::with_capacity(self.specs.len());
        let mut empty_suffix_of_empty_file = false;
        for (order, spec) in self.specs.iter().enumerate() {
            let range = match *spec {
                RangeSpec::FromTo(first, last) if first < len => ByteRange {
                    first,
                    last: last.min(len - 1),
                },
                RangeSpec::From(first) if first < len => ByteRange {
                    first,
                    last: len - 1,
                },
                RangeSpec::Suffix(n) if n > 0 && len > 0 => ByteRange {
                    first: len - n.min(len),
                    last: len - 1,
                },
                RangeSpec::Suffix(n) if n > 0 => {
                    empty_suffix_of_empty_file = true;
                    continue;
                }
                _ => continue,
            };
            ranges.push((order, range));
        }
        if ranges.is_empty() {
            return if empty_suffix_of_empty_file {
                Resolved::WholeRepresentation
            } else {
                Resolved::Unsatisfiable
            };
        }
        Resolved::Satisfiable(coalesce(ranges))
    }
}

/// Merges overlapping or adjacent ranges; returns the merged ranges ordered by the earliest
/// request position of their members. O(n log n) in the number of specs (at most
/// [`MAX_RANGE_SPECS`]).
fn coalesce(mut ranges: Vec<(usize, ByteRange)>) -> Vec<ByteRange> {
    ranges.sort_unstable_by_key(|&(_, r)| (r.first, r.last));
    let mut merged: Vec<(usize, ByteRange)> = Vec::with_capacity(ranges.len());
    for (order, range) in ranges {
        match merged.last_mut() {
            // `last + 1 >= first` means touching or overlapping; `last < u64::MAX` here because
            // `last < len <= u64::MAX`.
            Some((merged_order, current)) if current.last + 1 >= range.first => {
                current.last = current.last.max(range.last);
                *merged_order = (*merged_order).min(order);
            }
            _ => merged.push((order, range)),
        }
    }
    merged.sort_unstable_by_key(|&(order, _)| order);
    merged.into_iter().map(|(_, range)| range).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resolve(header: &str, len: u64) -> Result<Resolved, Ignored> {
        parse(header.as_bytes()).map(|set| set.resolve(len))
    }

    fn ranges(pairs: &[(u64, u64)]) -> Result<Resolved, Ignored> {
        Ok(Resolved::Satisfiable(
            pairs
                .iter()
                .map(|&(first, last)| ByteRange { first, last })
                .collect(),
        ))
    }

    /// One row per case: header, representation length, expected outcome.
    macro_rules! range_cases {
        ($($name:ident: $header:expr, $len:expr => $expected:expr;)*) => {
            $(#[test] fn $name() { assert_eq!(resolve($header, $len), $expected, "{:?}", $header); })*
        };
    }

    range_cases! {
        // RFC 9110 §14.1.2 examples, for a 10000-byte representation.
        rfc9110_14_1_2_first_500_bytes: "bytes=0-499", 10000 => ranges(&[(0, 499)]);
        rfc9110_14_1_2_second_500_bytes: "bytes=500-999", 10000 => ranges(&[(500, 999)]);
        rfc9110_14_1_2_from_9500: "bytes=9500-", 10000 => ranges(&[(9500, 9999)]);
        rfc9110_14_1_2_final_500_suffix: "bytes=-500", 10000 => ranges(&[(9500, 9999)]);
        rfc9110_14_1_2_first_and_last_byte: "bytes=0-0,-1", 10000 => ranges(&[(0, 0), (9999, 9999)]);
        rfc9110_14_1_2_overlapping_middle_coalesced: "bytes=500-600,601-999", 10000 => ranges(&[(500, 999)]);
        rfc9110_14_1_2_overlapping_coalesced: "bytes=500-700,601-999", 10000 => ranges(&[(500, 999)]);
        // §14.1.1: a last-pos past the end is clamped.
        rfc9110_14_1_1_last_pos_clamped: "bytes=0-1000000", 100 => ranges(&[(0, 99)]);
        rfc9110_14_1_1_huge_last_pos_saturates: "bytes=5-99999999999999999999999999", 100 => ranges(&[(5, 99)]);
        // §14.1.3: a suffix longer than the representation means all of it.
        rfc9110_14_1_3_suffix_longer_than_file: "bytes=-1000", 100 => ranges(&[(0, 99)]);
        // §14.1.1: first-pos >= length is unsatisfiable; if none is satisfiable: 416.
        rfc9110_14_1_1_first_pos_at_eof_unsatisfiable: "bytes=100-", 100 => Ok(Resolved::Unsatisfiable);
        rfc9110_14_1_1_first_pos_past_eof_unsatisfiable: "bytes=200-300", 100 => Ok(Resolved::Unsatisfiable);
        rfc9110_14_1_1_huge_first_pos_unsatisfiable: "bytes=184467440737095516160-", 100 => Ok(Resolved::Unsatisfiable);
        rfc9110_14_1_1_zero_suffix_unsatisfiable: "bytes=-0", 100 => Ok(Resolved::Unsatisfiable);
        rfc9110_14_1_1_unsatisfiable_specs_dropped: "bytes=200-300,0-9", 100 => ranges(&[(0, 9)]);
        rfc9110_14_1_1_empty_file_int_range_unsatisfiable: "bytes=0-", 0 => Ok(Resolved::Unsatisfiable);
        rfc9110_14_1_3_empty_file_suffix_whole: "bytes=-5", 0 => Ok(Resolved::WholeRepresentation);
        // §14.1: range units are case-insensitive.
        rfc9110_14_1_unit_case_insensitive: "BYTES=0-1", 10 => ranges(&[(0, 1)]);
        rfc9110_14_1_unit_mixed_case: "Bytes=0-1", 10 => ranges(&[(0, 1)]);
        // §14.2: unknown units and invalid syntax are ignored.
        rfc9110_14_2_unknown_unit_ignored: "items=0-1", 10 => Err(Ignored::UnknownUnit);
        rfc9110_14_2_no_equals_ignored: "bytes", 10 => Err(Ignored::UnknownUnit);
        rfc9110_14_2_empty_ignored: "", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_empty_set_ignored: "bytes=", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_only_commas_ignored: "bytes=,,", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_lone_dash_ignored: "bytes=-", 10 => Err(Ignored::Invalid);
        rfc9110_14_1_1_last_before_first_invalid: "bytes=5-4", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_negative_ignored: "bytes=--5", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_letters_ignored: "bytes=a-b", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_plus_sign_ignored: "bytes=+1-2", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_space_inside_spec_ignored: "bytes=1 -2", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_space_around_equals_ignored: "bytes =1-2", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_one_bad_spec_spoils_all: "bytes=0-1,x", 10 => Err(Ignored::Invalid);
        rfc9110_14_2_two_dashes_ignored: "bytes=1-2-3", 10 => Err(Ignored::Invalid);
        // §5.6.1.2: empty list elements and OWS are accepted.
        rfc9110_5_6_1_2_empty_elements_accepted: "bytes=,0-1,, 5-6 ,", 10 => ranges(&[(0, 1), (5, 6)]);
        rfc9110_5_6_1_2_tabs_accepted: "bytes=0-1,\t3-4", 10 => ranges(&[(0, 1), (3, 4)]);
        // §14.2: adjacent ranges may be coalesced; order of parts follows the request.
        rfc9110_14_2_adjacent_coalesced: "bytes=0-4,5-9", 10 => ranges(&[(0, 9)]);
        rfc9110_14_6_parts_keep_request_order: "bytes=8-9,0-1,4-5", 10 => ranges(&[(8, 9), (0, 1), (4, 5)]);
        rfc9110_14_2_descending_overlaps_coalesced: "bytes=6-9,3-7,0-4", 10 => ranges(&[(0, 9)]);
        rfc9110_14_2_duplicates_coalesced: "bytes=0-4,0-4,0-4", 10 => ranges(&[(0, 4)]);
        rfc9110_14_2_suffix_merges_with_from: "bytes=-3,5-", 10 => ranges(&[(5, 9)]);
        rfc9110_14_2_gap_not_coalesced: "bytes=0-3,5-9", 10 => ranges(&[(0, 3), (5, 9)]);
        leading_zeros_accepted: "bytes=007-008", 10 => ranges(&[(7, 8)]);
        last_byte_of_u64_file: "bytes=0-", u64::MAX => ranges(&[(0, u64::MAX - 1)]);
    }

    #[test]
    fn exactly_max_specs_accepted() {
        let header = format!("bytes={}", vec!["0-0"; MAX_RANGE_SPECS].join(","));
        assert_eq!(resolve(&header, 10), ranges(&[(0, 0)]));
    }

    #[test]
    fn cve_2011_3192_too_many_specs_ignored() {
        // The shape of the Apache Killer header: many overlapping ranges.
        let specs: Vec<String> = (0..1300).map(|i| format!("5-{}", i + 5)).collect();
        let header = format!("bytes=0-,{}", specs.join(","));
        assert_eq!(resolve(&header, 10_000), Err(Ignored::TooManyRanges));
    }

    #[test]
    fn content_range_value() {
        assert_eq!(
            ByteRange {
                first: 0,
                last: 499
            }
            .content_range(10000),
            "bytes 0-499/10000"
        );
    }

    /// The reference model: which byte offsets of the file a header selects, computed naively.
    fn model_selected_bytes(specs: &[RangeSpec], len: u64) -> Vec<bool> {
        let mut selected = vec![false; len as usize];
        for spec in specs {
            let (first, last) = match *spec {
                RangeSpec::FromTo(a, b) => (a, b),
                RangeSpec::From(a) => (a, u64::MAX),
                RangeSpec::Suffix(0) => continue,
                RangeSpec::Suffix(n) => (len.saturating_sub(n), u64::MAX),
            };
            for offset in first..=last.min(len.saturating_sub(1)) {
                if offset < len {
                    selected[offset as usize] = true;
                }
            }
        }
        selected
    }

    fn spec_strategy() -> impl Strategy<Value = RangeSpec> {
        prop_oneof![
            (0u64..80, 0u64..80).prop_map(|(a, b)| RangeSpec::FromTo(a.min(b), a.max(b))),
            (0u64..80).prop_map(RangeSpec::From),
            (0u64..80).prop_map(RangeSpec::Suffix),
        ]
    }

    fn render(spec: &RangeSpec) -> String {
        match spec {
            RangeSpec::FromTo(a, b) => format!("{a}-{b}"),
            RangeSpec::From(a) => format!("{a}-"),
            RangeSpec::Suffix(n) => format!("-{n}"),
        }
    }

    proptest! {
        /// Against the model: the parts cover exactly the selected bytes, never overlap or
        /// touch, and the total never exceeds the file length.
        #[test]
        fn resolve_matches_reference_model(
            specs in proptest::collection::vec(spec_strategy(), 1..12),
            len in 0u64..64,
        ) {
            let header = format!("bytes={}", specs.iter().map(render).collect::<Vec<_>>().join(","));
            let set = parse(header.as_bytes()).unwrap();
            prop_assert_eq!(set.specs(), &specs[..]);
            let selected = model_selected_bytes(&specs, len);
            match set.resolve(len) {
                Resolved::Satisfiable(parts) => {
                    let mut covered = vec![false; len as usize];
                    let mut sorted = parts.clone();
                    sorted.sort();
                    for pair in sorted.windows(2) {
                        prop_assert!(pair[0].last + 1 < pair[1].first, "parts overlap or touch: {:?}", parts);
                    }
                    for part in &parts {
                        prop_assert!(part.first <= part.last && part.last < len);
                        for offset in part.first..=part.last {
                            covered[offset as usize] = true;
                        }
                    }
                    prop_assert_eq!(covered, selected);
                    prop_assert!(parts.iter().map(ByteRange::len).sum::<u64>() <= len);
                }
                Resolved::Unsatisfiable => prop_assert!(selected.iter().all(|s| !s)),
                Resolved::WholeRepresentation => prop_assert_eq!(len, 0),
            }
        }

        /// httparse's bar: no input panics, and parsing is total.
        #[test]
        fn arbitrary_bytes_never_panic(header in proptest::collection::vec(any::<u8>(), 0..200), len in any::<u64>()) {
            if let Ok(set) = parse(&header) {
                let _ = set.resolve(len);
            }
        }

        /// Headers made of range-ish characters exercise the grammar's corners.
        #[test]
        fn rangeish_text_never_panics(header in "[bB]ytes=[0-9, \\t,-]{0,40}", len in 0u64..1000) {
            if let Ok(set) = parse(header.as_bytes()) {
                let _ = set.resolve(len);
            }
        }
    }
}
