//! Movie metadata (src/media.rs): no file makes the MP4 or Matroska adapter panic, read past
//! its bounds or report nonsense. The input is the file's bytes, probed as both containers.
//!
//! Checks besides "never panics": a picture size is never 0; a bitrate only comes with a
//! duration (it is size / duration); `faststart` is only ever set for MP4.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reelserve::media::{try_probe, Container, MediaInfo};

fuzz_target!(|data: &[u8]| {
    for container in [Container::Mp4, Container::Matroska] {
        if let Ok(info) = try_probe(data, data.len() as u64, container) {
            check(&info, container);
        }
    }
});

fn check(info: &MediaInfo, container: Container) {
    assert_ne!(info.width, Some(0), "{info:?}");
    assert_ne!(info.height, Some(0), "{info:?}");
    if info.bitrate.is_some() {
        assert!(info.duration.is_some(), "{info:?}");
    }
    if container == Container::Matroska {
        assert_eq!(info.faststart, None, "{info:?}");
    }
}
