//! `Range` header (src/range.rs): no input makes `parse` or `resolve` panic, and every answer
//! keeps the promises the response builder relies on (RFC 9110 §14.1.1–§14.2, and the
//! `Resolved` docs): parts inside the file, disjoint and not touching, covering exactly the
//! bytes the specs ask for, in the client's order, never more bytes than the file holds.
//!
//! Input: the representation length in decimal on the first line (other bytes there are
//! ignored, saturating at u64::MAX), then the header value, e.g. `10000\nbytes=0-499`. Without
//! a newline the whole input is the header and the length is 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reelserve::range::{self, ByteRange, RangeSpec, Resolved, MAX_RANGE_SPECS};

fuzz_target!(|data: &[u8]| {
    let (len, header) = split_length(data);
    if let Ok(set) = range::parse(header) {
        check(set.specs(), set.resolve(len), len);
    }
});

fn check(specs: &[RangeSpec], resolved: Resolved, len: u64) {
    assert!((1..=MAX_RANGE_SPECS).contains(&specs.len()), "{specs:?}");
    // What each spec selects on its own (§14.1.1, §14.1.3); None: nothing.
    let wanted: Vec<Option<ByteRange>> = specs.iter().map(|&s| alone(s, len)).collect();
    let suffix_of_empty_file =
        len == 0 && specs.iter().any(|s| matches!(s, RangeSpec::Suffix(1..)));
    match resolved {
        Resolved::Satisfiable(parts) => check_parts(&parts, &wanted, len),
        Resolved::Unsatisfiable => {
            assert!(
                wanted.iter().all(Option::is_none) && !suffix_of_empty_file,
                "{specs:?} / {len}"
            )
        }
        Resolved::WholeRepresentation => assert!(suffix_of_empty_file, "{specs:?} / {len}"),
    }
}

fn check_parts(parts: &[ByteRange], wanted: &[Option<ByteRange>], len: u64) {
    let context = || format!("parts {parts:?} for {wanted:?} / {len}");
    assert!(
        !parts.is_empty() && parts.len() <= MAX_RANGE_SPECS,
        "{}",
        context()
    );
    for part in parts {
        assert!(part.first <= part.last && part.last < len, "{}", context());
    }
    let mut sorted = parts.to_vec();
    sorted.sort();
    for pair in sorted.windows(2) {
        // `last < len`, so `last + 1` cannot overflow.
        assert!(
            pair[0].last + 1 < pair[1].first,
            "overlap or touch: {}",
            context()
        );
    }
    let total: u128 = parts.iter().map(|p| u128::from(p.len())).sum();
    assert!(total <= u128::from(len), "{}", context());

    // Every selected range lies inside one part...
    let wanted: Vec<(usize, ByteRange)> = wanted
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, (*r)?)))
        .collect();
    for (_, range) in &wanted {
        assert!(
            parts
                .iter()
                .any(|p| p.first <= range.first && range.last <= p.last),
            "{}",
            context()
        );
    }
    // ...each part is exactly the union of the ranges inside it (no byte nobody asked for)...
    let mut earliest = Vec::with_capacity(parts.len());
    for part in parts {
        let mut members: Vec<(usize, ByteRange)> = wanted
            .iter()
            .copied()
            .filter(|(_, r)| part.first <= r.first && r.last <= part.last)
            .collect();
        members.sort_by_key(|(_, r)| r.first);
        let mut next = part.first; // first byte of the part not yet covered
        for (_, r) in &members {
            assert!(r.first <= next, "gap before {r:?}: {}", context());
            next = next.max(r.last + 1);
        }
        assert_eq!(next, part.last + 1, "{}", context());
        earliest.push(members.iter().map(|(i, _)| *i).min().unwrap());
    }
    // ...and parts come in the order the client asked for them (§14.6).
    assert!(
        earliest.windows(2).all(|w| w[0] < w[1]),
        "order: {}",
        context()
    );
}

/// One spec against a representation of `len` bytes, as §14.1.1 defines it.
fn alone(spec: RangeSpec, len: u64) -> Option<ByteRange> {
    let (first, last) = match spec {
        RangeSpec::FromTo(first, last) => (first, last),
        RangeSpec::From(first) => (first, u64::MAX),
        RangeSpec::Suffix(0) => return None,
        RangeSpec::Suffix(n) => (len.saturating_sub(n), u64::MAX),
    };
    (first < len).then(|| ByteRange {
        first,
        last: last.min(len - 1),
    })
}

fn split_length(data: &[u8]) -> (u64, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(newline) => {
            let digits = data[..newline].iter().filter(|b| b.is_ascii_digit());
            let len = digits.fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            });
            (len, &data[newline + 1..])
        }
        None => (0, data),
    }
}
