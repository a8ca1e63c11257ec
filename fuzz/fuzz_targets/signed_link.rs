//! Signed-link tokens (src/signed_link.rs): no query, path or client makes `verify` panic; a
//! token it accepts holds for that request (not expired, the path under its scope, the client
//! inside its network); and a link signed for any grant verifies exactly when the request is
//! inside that grant.
//!
//! Input: three lines, then the rest: the request path, the client address, the query
//! (lossy UTF-8), e.g. `/movie/a.mp4\n127.0.0.1\nexp=1&scope=/&sig=AAAA`. The query is also
//! used as a grant's scope and the client line as its `ip`, signed with a fixed key.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use reelserve::signed_link::{path_in_scope, verify, ClientNet, Grant, KeyRing};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let path = lines.next().unwrap_or("");
    let client_text = lines.next().unwrap_or("");
    let query = lines.next().unwrap_or("");
    let client: IpAddr = client_text
        .parse()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let keys = KeyRing::parse(KEY).expect("the fixed key parses");

    if let Ok(grant) = verify(Some(query), path, client, NOW, &keys) {
        assert!(grant.expires > NOW, "{grant:?}");
        assert!(path_in_scope(path, &grant.scope), "{path:?} {grant:?}");
        assert!(grant.client.is_none_or(|net| net.contains(client)), "{grant:?}");
    }

    // Round trip: sign a grant made of the input, then ask about this request.
    if query.starts_with('/') && !query.chars().any(char::is_control) {
        let grant = Grant {
            expires: NOW + 1,
            scope: query.to_string(),
            client: ClientNet::parse(client_text),
        };
        let signed = keys.sign(&grant);
        let inside = path_in_scope(path, &grant.scope)
            && grant.client.is_none_or(|net| net.contains(client));
        let answer = verify(Some(&signed), path, client, NOW, &keys);
        if query.len() <= 4096 {
            assert_eq!(answer.is_ok(), inside, "{signed:?} for {path:?} from {client}: {answer:?}");
        }
        assert!(verify(Some(&signed), path, client, NOW + 1, &keys).is_err());
    }
});
