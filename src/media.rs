//! What a movie file is: duration, picture size, codecs, average bitrate and, for MP4, whether
//! it is "faststart" (`moov` before `mdat`). The player shows these, `--pace` paces by the
//! bitrate, and the start-up log names every MP4 a browser has to fetch the end of before it can
//! play.
//!
//! Parsing is left to well-kept parsers: Mozilla's `mp4parse` (the one Firefox uses) for
//! MP4/MOV/M4V and `matroska-demuxer` for WebM/Matroska. This module only decides *which bytes*
//! they see, and bounds them:
//!
//! - MP4: the top-level box headers are walked here (16 bytes each, at most
//!   [`MAX_TOP_LEVEL_BOXES`]); only the `moov` box is read, and only if it is at most
//!   [`MAX_MOOV_BYTES`]. `mdat` is never read.
//! - Matroska: the demuxer reads through a [`BoundedSource`] that fetches at most
//!   [`MAX_MATROSKA_BYTES`] from disk and reports the stream as ending at most
//!   [`MAX_ELEMENT_BYTES`] after the current position, so no element the file declares can make
//!   the demuxer allocate more than that.
//!
//! A damaged or hostile file gives [`MediaInfo::unknown`] and a debug log line: never a panic
//! (the parsers are also run under `catch_unwind`), an unbounded read or a stall. Probing is
//! blocking IO: call it off the event loops (`spawn_blocking`). Results are cached by file
//! identity (device, inode, length, modification time), see [`probe_cached`].
//!
//! Not here: anything about decoding, or about tracks beyond the first video and audio one.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::body::FileKey;
use crate::resolve::{open_beneath, Opened, Root};

/// Largest `moov` box read. A two-hour H.264 movie has a `moov` of a few MiB; one larger than
/// this is refused (its movie is reported as unknown) rather than read.
pub const MAX_MOOV_BYTES: u64 = 32 * 1024 * 1024;

/// Top-level MP4 boxes looked at before giving up (a real file has a handful).
pub const MAX_TOP_LEVEL_BOXES: usize = 1024;

/// Bytes a Matroska probe may fetch from disk in all.
pub const MAX_MATROSKA_BYTES: u64 = 16 * 1024 * 1024;

/// Largest Matroska element the demuxer may allocate for.
pub const MAX_ELEMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Entries kept in the probe cache; when full it is emptied (probes are cheap to redo).
const CACHE_CAPACITY: usize = 4096;

/// What is known about a movie. Every field is `None` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaInfo {
    /// Play time.
    pub duration: Option<Duration>,
    /// Picture width in pixels.
    pub width: Option<u32>,
    /// Picture height in pixels.
    pub height: Option<u32>,
    /// Video codec, named as ffprobe names it (`h264`, `vp9`, `av1`, ...).
    pub video_codec: Option<String>,
    /// Audio codec, named as ffprobe names it (`aac`, `opus`, ...).
    pub audio_codec: Option<String>,
    /// Average bitrate over the whole file, in bits per second (file size / duration).
    pub bitrate: Option<u64>,
    /// MP4 only: whether `moov` precedes `mdat`, so playback can start from the first bytes.
    pub faststart: Option<bool>,
}

impl MediaInfo {
    /// Nothing known.
    pub fn unknown() -> MediaInfo {
        MediaInfo::default()
    }

    /// Whether this is an MP4 known to have its index after the media data.
    pub fn is_known_slow_start(&self) -> bool {
        self.faststart == Some(false)
    }
}

/// The container formats probed, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO base media: mp4, m4v, mov.
    Mp4,
    /// Matroska and WebM: mkv, webm.
    Matroska,
}

impl Container {
    /// The container a `Content-Type` (as [`crate::representation::content_type_for`] gives
    /// it) says it is, if any.
    pub fn from_content_type(content_type: &str) -> Option<Container> {
        match content_type {
            "video/mp4" | "video/quicktime" => Some(Container::Mp4),
            "video/webm" | "video/x-matroska" => Some(Container::Matroska),
            _ => None,
        }
    }

    /// The container a file name says it is, if any.
    pub fn from_path(path: &Path) -> Option<Container> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "mp4" | "m4v" | "mov" => Some(Container::Mp4),
            "webm" | "mkv" => Some(Container::Matroska),
            _ => None,
        }
    }
}

/// Random access to a file's bytes: a real file, or bytes in memory (tests, the fuzz target).
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

#[cfg(unix)]
impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

#[cfg(windows)]
impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = self.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

/// Why a file's metadata could not be read: damaged, cut short, not that container, or larger
/// than the bounds this module reads. Logged, never shown to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError(String);

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

impl From<String> for ProbeError {
    fn from(reason: String) -> Self {
        ProbeError(reason)
    }
}

impl From<&str> for ProbeError {
    fn from(reason: &str) -> Self {
        ProbeError(reason.to_string())
    }
}

/// Probes `source` (`len` bytes) as `container`, saying why when it cannot. Blocking; bounded
/// as the module says. A panic in a parser is not caught here (the fuzz target wants to see
/// it); [`probe`] catches it.
pub fn try_probe<S: ReadAt + ?Sized>(
    source: &S,
    len: u64,
    container: Container,
) -> Result<MediaInfo, ProbeError> {
    match container {
        Container::Mp4 => probe_mp4(source, len),
        Container::Matroska => probe_matroska(source, len),
    }
}

/// Probes `source` (`len` bytes) as `container`. Blocking; bounded as the module says. Never
/// fails: what cannot be read is `None`.
pub fn probe<S: ReadAt + ?Sized>(source: &S, len: u64, container: Container) -> MediaInfo {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        try_probe(source, len, container)
    }));
    match outcome {
        Ok(Ok(info)) => info,
        Ok(Err(reason)) => {
            tracing::debug!(%reason, "movie metadata unreadable; reported as unknown");
            MediaInfo::unknown()
        }
        Err(_) => {
            tracing::warn!("movie metadata parser panicked; reported as unknown");
            MediaInfo::unknown()
        }
    }
}

/// Probes bytes in memory, with the container guessed from its first bytes (the fuzz target).
pub fn probe_bytes(bytes: &[u8]) -> MediaInfo {
    let container = if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Container::Matroska
    } else {
        Container::Mp4
    };
    probe(bytes, bytes.len() as u64, container)
}

fn cache() -> &'static Mutex<HashMap<FileKey, MediaInfo>> {
    static CACHE: OnceLock<Mutex<HashMap<FileKey, MediaInfo>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The cached result for this version of a file, if it has been probed.
pub fn cached(key: &FileKey) -> Option<MediaInfo> {
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(key)
        .cloned()
}

/// [`probe`], cached by file identity: a file rewritten or replaced (new length, mtime or
/// inode) is probed again. Blocking.
pub fn probe_cached<S: ReadAt + ?Sized>(
    source: &S,
    key: FileKey,
    len: u64,
    container: Container,
) -> MediaInfo {
    if let Some(info) = cached(&key) {
        return info;
    }
    let info = probe(source, len, container);
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(key, info.clone());
    info
}

/// The average bitrate of an open movie file of `len` bytes whose `Content-Type` is `content_type`: from the
/// cache, else probed on the blocking pool. `None` for other files or when unknown.
pub async fn bitrate_of(
    file: Arc<File>,
    key: FileKey,
    len: u64,
    content_type: &str,
) -> Option<u64> {
    let container = Container::from_content_type(content_type)?;
    if let Some(info) = cached(&key) {
        return info.bitrate;
    }
    tokio::task::spawn_blocking(move || probe_cached(&*file, key, len, container))
        .await
        .ok()?
        .bitrate
}

/// Opens the file at `relative` under `root` as requests open files (never leaving the root,
/// symlinks included; see [`crate::resolve::open_beneath`]) and probes it (cached). `None` if
/// it is not a movie container or cannot be opened there. Blocking.
pub fn probe_beneath(root: &Root, relative: &Path) -> Option<MediaInfo> {
    let container = Container::from_path(relative)?;
    let Ok(Opened::File { file, metadata, .. }) = open_beneath(root, relative) else {
        return None;
    };
    Some(probe_cached(
        &file,
        FileKey::from_metadata(&metadata),
        metadata.len(),
        container,
    ))
}

/// The command that makes an MP4 faststart without re-encoding.
pub const FASTSTART_FIX: &str = "ffmpeg -i in.mp4 -c copy -movflags +faststart out.mp4";

// ---------------------------------------------------------------------------------------------
// MP4

type ProbeResult = Result<MediaInfo, ProbeError>;

/// One top-level box: its type, where it starts and its whole size.
#[derive(Debug, Clone, Copy)]
struct BoxHeader {
    kind: [u8; 4],
    offset: u64,
    size: u64,
    header_len: u64,
}

/// Reads the header of the box at `offset` (ISO/IEC 14496-12 §4.2: 32-bit size, type, and a
/// 64-bit size when the first is 1; size 0 means "to the end of the file").
fn read_box_header<S: ReadAt + ?Sized>(
    source: &S,
    offset: u64,
    len: u64,
) -> Result<Option<BoxHeader>, String> {
    if offset.saturating_add(8) > len {
        return Ok(None);
    }
    let mut head = [0u8; 16];
    let want = (len - offset).min(16) as usize;
    read_exact_at(source, &mut head[..want], offset)?;
    let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let kind = [head[4], head[5], head[6], head[7]];
    let (size, header_len) = match size32 {
        0 => (len - offset, 8),
        1 => {
            if want < 16 {
                return Err("truncated 64-bit box size".into());
            }
            let mut large = [0u8; 8];
            large.copy_from_slice(&head[8..16]);
            (u64::from_be_bytes(large), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header_len {
        return Err(format!(
            "box {} has an impossible size {size}",
            fourcc(kind)
        ));
    }
    Ok(Some(BoxHeader {
        kind,
        offset,
        size,
        header_len,
    }))
}

fn fourcc(kind: [u8; 4]) -> String {
    kind.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

fn read_exact_at<S: ReadAt + ?Sized>(
    source: &S,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), String> {
    let mut done = 0;
    while done < buf.len() {
        match source.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => return Err("file ended early".into()),
            Ok(n) => done += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("read failed: {error}")),
        }
    }
    Ok(())
}

/// Where `moov` and the first `mdat` are, from the top-level box headers alone (all of them
/// are walked, so a file cut short is noticed).
#[derive(Debug, Default)]
struct TopLevelLayout {
    moov: Option<BoxHeader>,
    first_mdat: Option<u64>,
}

fn walk_top_level<S: ReadAt + ?Sized>(source: &S, len: u64) -> Result<TopLevelLayout, String> {
    let mut layout = TopLevelLayout::default();
    let mut offset = 0u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        let Some(header) = read_box_header(source, offset, len)? else {
            return Ok(layout);
        };
        match &header.kind {
            b"moov" if layout.moov.is_none() => layout.moov = Some(header),
            b"mdat" if layout.first_mdat.is_none() => layout.first_mdat = Some(offset),
            _ => {}
        }
        offset = match offset.checked_add(header.size) {
            Some(next) if next <= len => next,
            // A box running past the end: a truncated (or not an MP4) file. Even when its moov
            // is intact, its media data is not: unknown, as for any damaged file.
            _ => {
                return Err(format!(
                    "box {} at {offset} runs past the end of the file (truncated?)",
                    fourcc(header.kind)
                ))
            }
        };
    }
    Ok(layout)
}

fn probe_mp4<S: ReadAt + ?Sized>(source: &S, len: u64) -> ProbeResult {
    let layout = walk_top_level(source, len)?;
    let Some(moov) = layout.moov else {
        return Err("no moov box".into());
    };
    if moov.offset.saturating_add(moov.size) > len {
        return Err("moov box runs past the end of the file".into());
    }
    if moov.size > MAX_MOOV_BYTES {
        return Err(format!(
            "moov box of {} bytes is larger than the {MAX_MOOV_BYTES} read",
            moov.size
        )
        .into());
    }
    // `moov.size` is bounded above, so this allocation is too.
    let mut bytes = vec![0u8; moov.size as usize];
    read_exact_at(source, &mut bytes, moov.offset)?;

    // Fragmented files carry media in moof/mdat pairs after moov; no mdat at all means no
    // media data to be early or late about: unknown.
    let faststart = layout.first_mdat.map(|mdat| moov.offset < mdat);

    // mp4parse reserves each sample table's declared entry count up front: a hostile count
    // would ask for gigabytes before a byte of it is read. Tables must hold what they claim.
    check_sample_tables(&bytes[moov.header_len as usize..])?;
    let context = mp4parse::read_mp4(&mut io::Cursor::new(&bytes[..]))
        .map_err(|error| format!("mp4parse: {error:?}"))?;
    let mut info = MediaInfo {
        faststart,
        ..MediaInfo::unknown()
    };
    let movie_duration = mvhd_duration(&bytes[moov.header_len as usize..]);
    let mut longest_track: Option<Duration> = None;
    for track in context.tracks.iter() {
        if let (Some(duration), Some(scale)) = (track.duration, track.timescale) {
            if let Some(d) = scaled(duration.0, scale.0) {
                longest_track = Some(longest_track.map_or(d, |l| l.max(d)));
            }
        }
        let Some(stsd) = &track.stsd else { continue };
        let Some(entry) = stsd.descriptions.first() else {
            continue;
        };
        match entry {
            mp4parse::SampleEntry::Video(video) if info.video_codec.is_none() => {
                info.video_codec = mp4_codec_name(&video.codec_type).map(str::to_owned);
                let (tkhd_w, tkhd_h) = track
                    .tkhd
                    .as_ref()
                    .map_or((0, 0), |t| (t.width >> 16, t.height >> 16));
                info.width = nonzero(u32::from(video.width)).or(nonzero(tkhd_w));
                info.height = nonzero(u32::from(video.height)).or(nonzero(tkhd_h));
            }
            mp4parse::SampleEntry::Audio(audio) if info.audio_codec.is_none() => {
                info.audio_codec = mp4_codec_name(&audio.codec_type).map(str::to_owned);
            }
            _ => {}
        }
    }
    info.duration = movie_duration.or(longest_track);
    info.bitrate = average_bitrate(len, info.duration);
    Ok(info)
}

/// Checks, in the children of `moov` and the boxes inside them, that every sample table
/// (`stts`, `ctts`, `stsc`, `stsz`, `stz2`, `stco`, `co64`, `stss`, `elst`, `stsd`, `pssh`)
/// declares no more entries than its payload holds, and that every box mp4parse reads whole
/// fits inside its parent: mp4parse reserves declared counts and declared box sizes up front,
/// so a few-KB file declaring a 2.6 GB `avcC` or `data` box would ask for 2.6 GB. The boxes it
/// reads whole live in sample entries (`avcC`, `esds`, `sinf`, `wave`, ...) and in the
/// metadata list (`udta` > `meta` > `ilst` > item > `data`); both are walked here the way
/// mp4parse reads them. Bounded: the boxes nest at most [`MAX_BOX_DEPTH`] deep and the walk
/// never leaves `children`.
fn check_sample_tables(children: &[u8]) -> Result<(), String> {
    check_boxes(children, 0, BoxContext::Movie)
}

/// Deepest nesting walked below `moov` (trak/mdia/minf/stbl/stsd/encv/sinf/schi/tenc is nine).
const MAX_BOX_DEPTH: usize = 12;

/// Where a run of sibling boxes sits, which decides how their payloads are read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BoxContext {
    /// moov's children and the track boxes below them.
    Movie,
    /// The entries of an `stsd`, in a track whose handlers (`hdlr`) say how mp4parse reads them.
    SampleEntries(TrackKinds),
    /// Boxes inside a sample entry (`avcC`, `esds`, `sinf` > `schi` > `tenc`, `wave`, ...).
    InSampleEntry,
    /// `ilst`'s items and their `data` boxes.
    MetadataItems,
}

/// The sample-entry layouts a track's `hdlr` boxes ask for: mp4parse reads entries of video
/// (`vide`, `pict`, `auxv`) and audio (`soun`) tracks and skips all others.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
struct TrackKinds {
    video: bool,
    audio: bool,
}

/// Where a visual sample entry's child boxes start in its payload (ISO/IEC 14496-12 §12.1.3:
/// 8 bytes of SampleEntry, then 70 of VisualSampleEntry).
const VISUAL_ENTRY_FIELDS: usize = 8 + 70;

/// Where an audio sample entry's child boxes start in its payload: 28 bytes, plus 16 for a
/// QuickTime version 1 entry and 36 for version 2 (as mp4parse reads them); `None` for a
/// version mp4parse refuses.
fn audio_entry_fields(payload: &[u8]) -> Option<usize> {
    let version = payload
        .get(8..10)
        .map(|v| u16::from_be_bytes([v[0], v[1]]))?;
    match version {
        0 => Some(28),
        1 => Some(28 + 16),
        2 => Some(28 + 36),
        _ => None,
    }
}

/// The handler types among `mdia`'s children.
fn track_kinds(mdia_children: &[u8]) -> TrackKinds {
    let mut kinds = TrackKinds::default();
    for hdlr in children_named(mdia_children, *b"hdlr") {
        match hdlr.get(8..12) {
            Some(b"vide" | b"pict" | b"auxv") => kinds.video = true,
            Some(b"soun") => kinds.audio = true,
            _ => {}
        }
    }
    kinds
}

/// The payloads of `parent`'s child boxes of type `wanted`.
fn children_named(parent: &[u8], wanted: [u8; 4]) -> impl Iterator<Item = &[u8]> {
    let mut rest = parent;
    std::iter::from_fn(move || {
        while let Some((kind, payload, size)) = next_box(rest) {
            rest = &rest[size..];
            if kind == wanted {
                return Some(payload);
            }
        }
        None
    })
}

/// The first box of `rest`, as (type, payload, size), or `None` when `rest` holds no whole
/// box (the walk in [`check_boxes`] reports why).
fn next_box(rest: &[u8]) -> Option<([u8; 4], &[u8], usize)> {
    match box_extent(rest) {
        Ok(Some((kind, header, size))) => Some((kind, &rest[header..size], size)),
        _ => None,
    }
}

/// The first box header of `rest`: (type, header length, size), checked to fit in `rest`.
fn box_extent(rest: &[u8]) -> Result<Option<([u8; 4], usize, usize)>, String> {
    if rest.len() < 8 {
        return Ok(None);
    }
    let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let kind = [rest[4], rest[5], rest[6], rest[7]];
    let (size, header) = match size32 {
        0 => (rest.len(), 8),
        1 => {
            let Some(large) = rest.get(8..16) else {
                return Err("truncated box header".into());
            };
            let large = u64::from_be_bytes(large.try_into().unwrap_or([0; 8]));
            (usize::try_from(large).unwrap_or(usize::MAX), 16)
        }
        n => (n as usize, 8),
    };
    if size < header || size > rest.len() {
        return Err(format!("box {} runs past its parent", fourcc(kind)));
    }
    Ok(Some((kind, header, size)))
}

fn check_boxes(mut rest: &[u8], depth: usize, context: BoxContext) -> Result<(), String> {
    if depth > MAX_BOX_DEPTH {
        return Err("boxes nested too deep".into());
    }
    while let Some((kind, header, size)) = box_extent(rest)? {
        let payload = &rest[header..size];
        let inner = depth + 1;
        match (context, &kind) {
            (BoxContext::Movie, b"mdia") => {
                let kinds = track_kinds(payload);
                check_boxes(payload, inner, BoxContext::Movie)?;
                check_track_descriptions(payload, inner, kinds)?;
            }
            (
                BoxContext::Movie,
                b"trak" | b"minf" | b"stbl" | b"edts" | b"mvex" | b"dinf" | b"udta",
            ) => check_boxes(payload, inner, BoxContext::Movie)?,
            // A full box: version and flags, then children.
            (BoxContext::Movie, b"meta") => {
                check_boxes(payload.get(4..).unwrap_or(&[]), inner, BoxContext::Movie)?
            }
            (BoxContext::Movie, b"ilst") => check_boxes(payload, inner, BoxContext::MetadataItems)?,
            (BoxContext::Movie, table) => check_table(table, payload)?,
            (BoxContext::SampleEntries(kinds), _) => {
                if kinds.video {
                    let children = payload.get(VISUAL_ENTRY_FIELDS..).unwrap_or(&[]);
                    check_boxes(children, inner, BoxContext::InSampleEntry)?;
                }
                if let Some(fields) = audio_entry_fields(payload).filter(|_| kinds.audio) {
                    let children = payload.get(fields..).unwrap_or(&[]);
                    check_boxes(children, inner, BoxContext::InSampleEntry)?;
                }
            }
            (BoxContext::InSampleEntry, b"sinf" | b"schi" | b"wave") => {
                check_boxes(payload, inner, BoxContext::InSampleEntry)?
            }
            (BoxContext::InSampleEntry, table) => check_table(table, payload)?,
            // An item is a box of boxes (`data`, `mean`, `name`); `data` is read whole.
            (BoxContext::MetadataItems, b"data") => {}
            (BoxContext::MetadataItems, _) => {
                check_boxes(payload, inner, BoxContext::MetadataItems)?
            }
        }
        rest = &rest[size..];
    }
    Ok(())
}

/// The sample entries of each `stsd` below `mdia` > `minf` > `stbl`, read with the layouts the
/// track's handlers ask for.
fn check_track_descriptions(mdia: &[u8], depth: usize, kinds: TrackKinds) -> Result<(), String> {
    for minf in children_named(mdia, *b"minf") {
        for stbl in children_named(minf, *b"stbl") {
            for stsd in children_named(stbl, *b"stsd") {
                // version/flags, entry count, then the entries.
                let entries = stsd.get(8..).unwrap_or(&[]);
                check_boxes(entries, depth + 3, BoxContext::SampleEntries(kinds))?;
            }
        }
    }
    Ok(())
}

/// One table box's full-box payload: its declared entries must fit in it.
fn check_table(kind: &[u8; 4], payload: &[u8]) -> Result<(), String> {
    let word = |at: usize| {
        payload
            .get(at..at + 4)
            .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
    };
    let version = payload.first().copied().unwrap_or(0);
    // (offset of the entry count, bytes per entry, offset of the first entry)
    let layout = match kind {
        b"stts" | b"ctts" => Some((4, 8, 8)),
        b"stsc" => Some((4, 12, 8)),
        b"stco" | b"stss" => Some((4, 4, 8)),
        b"co64" => Some((4, 8, 8)),
        b"elst" => Some((4, if version == 1 { 20 } else { 12 }, 8)),
        // Sample descriptions are boxes: at least a header each.
        b"stsd" => Some((4, 8, 8)),
        // Version 1 lists key IDs, 16 bytes each, after the system ID.
        b"pssh" if version >= 1 => Some((20, 16, 24)),
        // A constant sample size (non-zero) has no table at all.
        b"stsz" if word(4) == Some(0) => Some((8, 4, 12)),
        b"stz2" => {
            let bits = u64::from(payload.get(7).copied().unwrap_or(0));
            let count = word(8).ok_or("truncated stz2")?;
            let needed = (count * bits).div_ceil(8);
            if needed > payload.len().saturating_sub(12) as u64 {
                return Err("stz2 claims more samples than it holds".into());
            }
            None
        }
        _ => None,
    };
    if let Some((count_at, entry, first)) = layout {
        let count = word(count_at).ok_or_else(|| format!("truncated {}", fourcc(*kind)))?;
        if count.saturating_mul(entry) > payload.len().saturating_sub(first) as u64 {
            return Err(format!(
                "{} claims {count} entries, more than it holds",
                fourcc(*kind)
            ));
        }
    }
    Ok(())
}

/// The movie's duration from its `mvhd` (ISO/IEC 14496-12 §8.2.2), which mp4parse reads but
/// does not expose: the first child box of `moov` of that type. `children` is moov's content.
fn mvhd_duration(children: &[u8]) -> Option<Duration> {
    let mut offset = 0u64;
    let len = children.len() as u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        let header = read_box_header(children, offset, len).ok()??;
        if &header.kind == b"mvhd" {
            let start = (offset + header.header_len) as usize;
            let body = children.get(start..(offset + header.size) as usize)?;
            let field = |at: usize, width: usize| -> Option<u64> {
                let bytes = body.get(at..at + width)?;
                Some(bytes.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)))
            };
            // version(1) flags(3), then v0: creation(4) modification(4) timescale(4)
            // duration(4); v1: creation(8) modification(8) timescale(4) duration(8).
            let (timescale, duration) = match body.first()? {
                0 => (field(12, 4)?, field(16, 4)?),
                1 => (field(20, 4)?, field(24, 8)?),
                _ => return None,
            };
            // All ones means "unknown" (§8.2.2.3).
            if duration == u64::MAX || duration == u64::from(u32::MAX) {
                return None;
            }
            return scaled(duration, timescale).filter(|d| !d.is_zero());
        }
        offset = offset.checked_add(header.size).filter(|&n| n <= len)?;
    }
    None
}

fn scaled(units: u64, per_second: u64) -> Option<Duration> {
    if per_second == 0 {
        return None;
    }
    let seconds = units / per_second;
    let nanos = (u128::from(units % per_second) * 1_000_000_000 / u128::from(per_second)) as u32;
    Some(Duration::new(seconds, nanos))
}

fn nonzero(n: u32) -> Option<u32> {
    (n > 0).then_some(n)
}

fn average_bitrate(len: u64, duration: Option<Duration>) -> Option<u64> {
    let seconds = duration?.as_secs_f64();
    if seconds < 0.001 {
        return None;
    }
    let bits = len as f64 * 8.0 / seconds;
    (bits.is_finite() && bits >= 1.0).then_some(bits as u64)
}

fn mp4_codec_name(codec: &mp4parse::CodecType) -> Option<&'static str> {
    use mp4parse::CodecType as C;
    Some(match codec {
        C::H264 => "h264",
        C::MP4V => "mpeg4",
        C::AV1 => "av1",
        C::VP9 => "vp9",
        C::VP8 => "vp8",
        C::H263 => "h263",
        C::AAC => "aac",
        C::MP3 => "mp3",
        C::FLAC => "flac",
        C::Opus => "opus",
        C::ALAC => "alac",
        C::LPCM => "pcm",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Matroska / WebM

/// A `Read + Seek` view of a [`ReadAt`] source for the demuxer, bounded as the module says: it
/// fetches at most [`MAX_MATROSKA_BYTES`] from the source (in 64 KiB blocks, so the demuxer's
/// many small reads are not one syscall each), and `SeekFrom::End` finds the end at most
/// [`MAX_ELEMENT_BYTES`] past the current position, which is what the demuxer checks declared
/// element sizes against before allocating.
pub struct BoundedSource<'a, S: ReadAt + ?Sized> {
    source: &'a S,
    len: u64,
    position: u64,
    block: Vec<u8>,
    block_offset: u64,
    fetched: u64,
    /// Reads and seeks so far: a parser that goes round in circles (a seek table pointing at
    /// itself) is stopped after [`MAX_OPERATIONS`], however few bytes each one moves.
    operations: u32,
}

const BLOCK_BYTES: usize = 64 * 1024;

/// Reads and seeks one probe may make. A real file's headers take a few hundred.
const MAX_OPERATIONS: u32 = 100_000;

impl<'a, S: ReadAt + ?Sized> BoundedSource<'a, S> {
    /// A view of the `len` bytes of `source`.
    pub fn new(source: &'a S, len: u64) -> Self {
        BoundedSource {
            source,
            len,
            position: 0,
            block: Vec::new(),
            block_offset: 0,
            fetched: 0,
            operations: 0,
        }
    }

    /// Counts one read or seek; an error once there have been too many.
    fn count_operation(&mut self) -> io::Result<()> {
        self.operations += 1;
        if self.operations > MAX_OPERATIONS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the parser went round in circles: more reads and seeks than any real file needs",
            ));
        }
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.fetched >= MAX_MATROSKA_BYTES {
            return Err(io::Error::other(
                "metadata read limit reached: the file's header is too large or loops",
            ));
        }
        let want = (self.len - self.position).min(BLOCK_BYTES as u64) as usize;
        self.block.resize(want, 0);
        let mut done = 0;
        while done < want {
            match self
                .source
                .read_at(&mut self.block[done..], self.position + done as u64)
            {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.block.truncate(done);
        self.block_offset = self.position;
        self.fetched += done as u64;
        Ok(())
    }
}

impl<S: ReadAt + ?Sized> Read for BoundedSource<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.count_operation()?;
        if self.position >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let in_block = self.position >= self.block_offset
            && self.position < self.block_offset + self.block.len() as u64;
        if !in_block {
            self.fill()?;
            if self.block.is_empty() {
                return Ok(0);
            }
        }
        let start = (self.position - self.block_offset) as usize;
        let available = &self.block[start..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl<S: ReadAt + ?Sized> Seek for BoundedSource<'_, S> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.count_operation()?;
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
            SeekFrom::End(delta) => {
                let end = self
                    .len
                    .min(self.position.saturating_add(MAX_ELEMENT_BYTES));
                end.checked_add_signed(delta)
            }
        };
        let target =
            target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before 0"))?;
        self.position = target;
        Ok(target)
    }
}

fn probe_matroska<S: ReadAt + ?Sized>(source: &S, len: u64) -> ProbeResult {
    let file = matroska_demuxer::MatroskaFile::open(BoundedSource::new(source, len))
        .map_err(|error| format!("matroska-demuxer: {error}"))?;
    let info = file.info();
    let duration = info.duration().and_then(|units| {
        let seconds = units * info.timestamp_scale().get() as f64 / 1e9;
        (seconds.is_finite() && seconds > 0.0 && seconds < 1e9)
            .then(|| Duration::from_secs_f64(seconds))
    });
    let mut media = MediaInfo {
        duration,
        bitrate: average_bitrate(len, duration),
        ..MediaInfo::unknown()
    };
    for track in file.tracks() {
        match track.track_type() {
            matroska_demuxer::TrackType::Video if media.video_codec.is_none() => {
                media.video_codec = Some(matroska_codec_name(track.codec_id()));
                if let Some(video) = track.video() {
                    media.width = u32::try_from(video.pixel_width().get()).ok();
                    media.height = u32::try_from(video.pixel_height().get()).ok();
                }
            }
            matroska_demuxer::TrackType::Audio if media.audio_codec.is_none() => {
                media.audio_codec = Some(matroska_codec_name(track.codec_id()));
            }
            _ => {}
        }
    }
    Ok(media)
}

/// Matroska codec IDs (`V_VP9`, `A_OPUS`, ...) as ffprobe names the codecs.
fn matroska_codec_name(codec_id: &str) -> String {
    let known = match codec_id {
        "V_VP8" => "vp8",
        "V_VP9" => "vp9",
        "V_AV1" => "av1",
        "V_MPEG4/ISO/AVC" => "h264",
        "V_MPEGH/ISO/HEVC" => "hevc",
        "V_THEORA" => "theora",
        "A_OPUS" => "opus",
        "A_VORBIS" => "vorbis",
        "A_FLAC" => "flac",
        "A_MPEG/L3" => "mp3",
        "A_AC3" => "ac3",
        "A_EAC3" => "eac3",
        id if id.starts_with("A_AAC") => "aac",
        // Anything else: the ID itself, lower-cased and without its kind prefix.
        id => {
            let bare = id.split_once('_').map_or(id, |(_, rest)| rest);
            return bare
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(32)
                .collect::<String>()
                .to_ascii_lowercase();
        }
    };
    known.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `size` (32-bit) + `kind` + `payload`.
    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    /// trak > mdia > minf > stbl > `table`.
    fn in_sample_table(table: Vec<u8>) -> Vec<u8> {
        let stbl = mp4_box(b"stbl", &table);
        let minf = mp4_box(b"minf", &stbl);
        let mdia = mp4_box(b"mdia", &minf);
        mp4_box(b"trak", &mdia)
    }

    /// A full box: version 0, no flags, then `rest`.
    fn full_box(kind: &[u8; 4], rest: &[u8]) -> Vec<u8> {
        mp4_box(kind, &[&[0u8; 4][..], rest].concat())
    }

    #[test]
    fn sample_tables_must_hold_the_entries_they_declare() {
        // Found by the fuzzer: an stsc declaring ~2^31 entries made mp4parse reserve tens of
        // GiB before reading any.
        let hostile = full_box(b"stsc", &0x7fff_ffffu32.to_be_bytes());
        assert!(check_sample_tables(&in_sample_table(hostile)).is_err());
        let two_entries = [&2u32.to_be_bytes()[..], &[0u8; 24][..]].concat();
        let honest = full_box(b"stsc", &two_entries);
        assert_eq!(check_sample_tables(&in_sample_table(honest)), Ok(()));
        let too_few = full_box(b"stco", &[&3u32.to_be_bytes()[..], &[0u8; 8][..]].concat());
        assert!(check_sample_tables(&in_sample_table(too_few.clone())).is_err());
        let descriptions = full_box(b"stsd", &0x0fff_ffffu32.to_be_bytes());
        assert!(check_sample_tables(&in_sample_table(descriptions)).is_err());
        // stsz with a constant sample size has no table, whatever its count.
        let constant = full_box(
            b"stsz",
            &[&512u32.to_be_bytes()[..], &1_000_000u32.to_be_bytes()[..]].concat(),
        );
        assert_eq!(check_sample_tables(&in_sample_table(constant)), Ok(()));
        // A box that claims to run past its parent is refused too.
        let mut overlong = mp4_box(b"trak", &[0u8; 8]);
        overlong[3] = 200;
        assert!(check_sample_tables(&overlong).is_err());
    }

    /// mdia (with an `hdlr` of `handler`) > minf > stbl > stsd holding `entry`, in a trak.
    fn track_with_entry(handler: &[u8; 4], entry: Vec<u8>) -> Vec<u8> {
        let hdlr = full_box(b"hdlr", &[&[0u8; 4][..], handler, &[0u8; 13][..]].concat());
        let stsd = full_box(b"stsd", &[&1u32.to_be_bytes()[..], &entry].concat());
        let stbl = mp4_box(b"stbl", &stsd);
        let minf = mp4_box(b"minf", &stbl);
        let mdia = mp4_box(b"mdia", &[hdlr, minf].concat());
        mp4_box(b"trak", &mdia)
    }

    /// A box whose header declares `declared` bytes but which holds only `payload`.
    fn box_declaring(kind: &[u8; 4], declared: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = mp4_box(kind, payload);
        b[..4].copy_from_slice(&declared.to_be_bytes());
        b
    }

    /// Found by the fuzzer: a few-KB file whose `avcC`, inside an `avc1` entry, declared
    /// 2.6 GB; mp4parse reserved it all before reading. Boxes inside sample entries (read with
    /// the layout of the track's handler) and metadata items must fit their parents.
    #[test]
    fn boxes_in_sample_entries_and_metadata_must_fit_their_parents() {
        // A visual entry's fields are 78 bytes (8 of SampleEntry, 70 of VisualSampleEntry),
        // filled here with 0x11: children looked for at the wrong offset would read a size of
        // 0x11111111 and be refused.
        let visual_entry =
            |children: Vec<u8>| mp4_box(b"avc1", &[&[0x11u8; 78][..], &children].concat());
        let honest = visual_entry(mp4_box(b"avcC", &[1, 2, 3, 4]));
        let hostile = visual_entry(box_declaring(b"avcC", 0x9c00_0000, &[1, 2, 3, 4]));
        assert_eq!(
            check_sample_tables(&track_with_entry(b"vide", honest)),
            Ok(())
        );
        assert!(check_sample_tables(&track_with_entry(b"vide", hostile.clone())).is_err());
        // mp4parse reads a video layout only in video tracks; in a text track it skips the entry.
        assert_eq!(
            check_sample_tables(&track_with_entry(b"text", hostile)),
            Ok(())
        );

        // Audio: children after 28 bytes (version 0) or 44 (QuickTime version 1), also
        // inside `wave`.
        let audio_entry = |version: u16, children: Vec<u8>| {
            let mut fields = vec![0x11u8; if version == 1 { 44 } else { 28 }];
            fields[8..10].copy_from_slice(&version.to_be_bytes());
            mp4_box(b"mp4a", &[fields, children].concat())
        };
        let esds = full_box(b"esds", &[3, 0]);
        let honest = audio_entry(0, esds.clone());
        assert_eq!(
            check_sample_tables(&track_with_entry(b"soun", honest)),
            Ok(())
        );
        let honest_v1 = audio_entry(1, mp4_box(b"wave", &esds));
        assert_eq!(
            check_sample_tables(&track_with_entry(b"soun", honest_v1)),
            Ok(())
        );
        let hostile_v1 = audio_entry(
            1,
            mp4_box(b"wave", &box_declaring(b"esds", 1 << 31, &[0; 8])),
        );
        assert!(check_sample_tables(&track_with_entry(b"soun", hostile_v1)).is_err());

        // Encrypted video: sinf > schi > tenc, nine deep below moov.
        let tenc = full_box(b"tenc", &[0u8; 20]);
        let sinf = mp4_box(b"sinf", &mp4_box(b"schi", &tenc));
        let encrypted = mp4_box(b"encv", &[&[0x11u8; 78][..], &sinf].concat());
        assert_eq!(
            check_sample_tables(&track_with_entry(b"vide", encrypted)),
            Ok(())
        );

        // udta > meta > ilst > item > data: `data` is read whole.
        let metadata = |data: Vec<u8>| {
            let item = mp4_box(b"\xa9nam", &data);
            mp4_box(b"udta", &full_box(b"meta", &mp4_box(b"ilst", &item)))
        };
        let honest = metadata(full_box(b"data", b"\0\0\0\0Title"));
        assert_eq!(check_sample_tables(&honest), Ok(()));
        let hostile = metadata(box_declaring(
            b"data",
            0x7fff_0000,
            b"\0\0\0\0\0\0\0\0Title",
        ));
        assert!(check_sample_tables(&hostile).is_err());
    }

    /// Found by the fuzzer: 225 bytes that sent matroska-demuxer round in circles (seeks and
    /// reads without end). The view's operation budget stops it; the file is unknown.
    #[test]
    fn a_matroska_parser_going_round_in_circles_is_stopped() {
        const LOOPING: &[u8] = &[
            0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01, 0x42,
            0xf2, 0x81, 0x04, 0x42, 0xf3, 0x81, 0x08, 0x42, 0x82, 0x84, 0x77, 0x65, 0x62, 0x6d,
            0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02, 0x18, 0x53, 0x80, 0x67, 0x01, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x0f, 0x29, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf,
            0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf,
            0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf,
            0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf,
            0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf,
            0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf,
            0x11, 0x4d, 0x9b, 0x74, 0xba, 0x4d, 0xbb, 0x81, 0xa1, 0x4d, 0xbb, 0x8b, 0x53, 0xab,
            0x84, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01, 0x42,
            0xf2, 0x04, 0x00, 0x00, 0x00, 0x77, 0x00, 0x00, 0x84, 0x00, 0x00, 0x65, 0x62, 0x6d,
            0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02, 0x18, 0x53, 0x80, 0x67, 0x01, 0x00,
            0x00, 0x00, 0x00, 0x00, 0xbb, 0x8c, 0x81, 0x00, 0x22, 0xb5, 0x9c, 0x83, 0x75, 0x6e,
            0xcf, 0x88, 0x81, 0x00, 0x86, 0x85, 0x56, 0x5f, 0x56, 0x8f, 0x4d, 0xbb, 0x8c, 0x53,
            0xab, 0x84, 0x1c, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02, 0x18, 0x53, 0x80, 0x67, 0x01,
            0x00,
        ];
        let started = std::time::Instant::now();
        assert!(try_probe(LOOPING, LOOPING.len() as u64, Container::Matroska).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn the_bounded_view_refuses_endless_seeking() {
        let bytes = [0u8; 16];
        let mut view = BoundedSource::new(&bytes[..], 16);
        let mut refused = false;
        for _ in 0..=MAX_OPERATIONS {
            if view.seek(SeekFrom::Start(0)).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }

    #[test]
    fn faststart_is_read_from_box_order() {
        let moov = mp4_box(b"moov", &[]);
        let mdat = mp4_box(b"mdat", &[0; 32]);
        let ftyp = mp4_box(b"ftyp", b"isom\0\0\0\0isom");
        let fast = [ftyp.clone(), moov.clone(), mdat.clone()].concat();
        let slow = [ftyp, mdat, moov].concat();
        let layout = walk_top_level(&fast[..], fast.len() as u64).unwrap();
        assert!(layout.moov.unwrap().offset < layout.first_mdat.unwrap());
        let layout = walk_top_level(&slow[..], slow.len() as u64).unwrap();
        assert!(layout.moov.unwrap().offset > layout.first_mdat.unwrap());
        let cut = &fast[..fast.len() - 1];
        assert!(walk_top_level(cut, cut.len() as u64).is_err());
    }

    #[test]
    fn random_and_empty_bytes_are_unknown() {
        assert_eq!(probe_bytes(&[]), MediaInfo::unknown());
        let noise: Vec<u8> = (0..10_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(probe_bytes(&noise), MediaInfo::unknown());
        let mut ebml_noise = vec![0x1A, 0x45, 0xDF, 0xA3];
        ebml_noise.extend_from_slice(&noise);
        assert_eq!(probe_bytes(&ebml_noise), MediaInfo::unknown());
    }

    #[test]
    fn a_huge_declared_moov_is_refused_without_reading_it() {
        // 64-bit size claiming 1 TiB: refused by size, never allocated.
        let mut file = 1u32.to_be_bytes().to_vec();
        file.extend_from_slice(b"moov");
        file.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(probe_bytes(&file), MediaInfo::unknown());
    }

    #[test]
    fn box_sizes_below_the_header_are_errors_not_loops() {
        let mut file = 4u32.to_be_bytes().to_vec();
        file.extend_from_slice(b"free");
        assert!(read_box_header(&file[..], 0, file.len() as u64).is_err());
        assert_eq!(probe_bytes(&file), MediaInfo::unknown());
    }

    #[test]
    fn mvhd_duration_versions_0_and_1() {
        let mut v0 = vec![0u8; 4];
        v0.extend_from_slice(&[0; 8]);
        v0.extend_from_slice(&1000u32.to_be_bytes());
        v0.extend_from_slice(&2500u32.to_be_bytes());
        assert_eq!(
            mvhd_duration(&mp4_box(b"mvhd", &v0)),
            Some(Duration::from_millis(2500))
        );
        let mut v1 = vec![1u8, 0, 0, 0];
        v1.extend_from_slice(&[0; 16]);
        v1.extend_from_slice(&90_000u32.to_be_bytes());
        v1.extend_from_slice(&(90_000u64 * 7).to_be_bytes());
        assert_eq!(
            mvhd_duration(&mp4_box(b"mvhd", &v1)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(mvhd_duration(&mp4_box(b"mvhd", &[0; 3])), None);
    }

    #[test]
    fn bounded_source_reports_a_near_end_and_stops_fetching() {
        let bytes = vec![7u8; (MAX_ELEMENT_BYTES * 3) as usize];
        let mut view = BoundedSource::new(&bytes[..], bytes.len() as u64);
        assert_eq!(view.seek(SeekFrom::End(0)).unwrap(), MAX_ELEMENT_BYTES);
        view.seek(SeekFrom::Start(0)).unwrap();
        let mut sink = Vec::new();
        let error = view.read_to_end(&mut sink).unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
        assert_eq!(sink.len() as u64, MAX_MATROSKA_BYTES);
    }

    #[test]
    fn codec_ids_map_to_ffprobe_names() {
        assert_eq!(matroska_codec_name("V_VP9"), "vp9");
        assert_eq!(matroska_codec_name("A_AAC/MPEG4/LC"), "aac");
        assert_eq!(matroska_codec_name("V_WEIRD<x>"), "weird<x>");
        assert_eq!(mp4_codec_name(&mp4parse::CodecType::H264), Some("h264"));
    }

    /// The fuzz target's seeds (real ffmpeg output, tiny) parse, and the hostile one does not.
    #[test]
    fn fuzz_seeds_are_read_or_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/media");
        let read = |name: &str| {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            probe_bytes(&bytes)
        };
        let fast = read("seed-faststart.mp4");
        assert_eq!(fast.faststart, Some(true));
        assert_eq!((fast.width, fast.height), (Some(32), Some(32)));
        assert_eq!(fast.video_codec.as_deref(), Some("h264"));
        assert_eq!(fast.audio_codec.as_deref(), Some("aac"));
        assert_eq!(read("seed-moov-last.mp4").faststart, Some(false));
        let webm = read("seed-vp9-opus.webm");
        assert_eq!(webm.video_codec.as_deref(), Some("vp9"));
        assert_eq!(webm.audio_codec.as_deref(), Some("opus"));
        assert!(webm.duration.is_some());
        assert_eq!(read("seed-huge-64bit-moov"), MediaInfo::unknown());
    }

    fn seed(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/corpus/media")
                .join(name),
        )
        .unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(200))]

        /// Real files, damaged: bytes overwritten and the end cut off. The parsers must answer
        /// (known or not), never panic (`try_probe` does not catch panics).
        #[test]
        fn damaged_real_files_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..16),
            keep in 0.0f64..=1.0,
        ) {
            let names = ["seed-faststart.mp4", "seed-moov-last.mp4", "seed-vp9-opus.webm"];
            let mut bytes = seed(names[which]);
            for (at, value) in edits {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            bytes.truncate((bytes.len() as f64 * keep) as usize);
            for container in [Container::Mp4, Container::Matroska] {
                let _ = try_probe(&bytes[..], bytes.len() as u64, container);
            }
        }
    }

    #[test]
    fn containers_by_extension() {
        assert_eq!(
            Container::from_path(Path::new("a.MOV")),
            Some(Container::Mp4)
        );
        assert_eq!(
            Container::from_path(Path::new("a.webm")),
            Some(Container::Matroska)
        );
        assert_eq!(Container::from_path(Path::new("a.vtt")), None);
    }
}
