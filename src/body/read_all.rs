//! `--mode read-all`: every file range of a response is read into memory before the response
//! starts, as Node's `fs.readFile` followed by `response.end(data)` does. The client waits for
//! the whole read, and the server holds the whole range in memory: the baseline this project
//! measures the other modes against.
//!
//! Holding whole ranges is only safe within a bound, so the buffers of all responses together
//! draw on one server-wide [`ReadAllBudget`] (`--read-all-budget`, default 512 MiB). A response
//! reserves its bytes before anything is allocated and releases them when its last buffer is
//! dropped (sent, or the client gone). A response that does not fit, or an allocation the
//! system refuses (`Vec::try_reserve_exact`), is refused with a retryable `503`
//! ([`ReadAllRefused`]); the process never aborts, whatever the file size.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::{file_shrank, Segment};

/// `--read-all-budget` when not given: 512 MiB.
pub const DEFAULT_BUDGET: u64 = 512 * 1024 * 1024;

/// The budget every read-all response of this process draws on. Process-wide because the binary
/// runs one server per process; [`crate::server::Server::bind`] sets its limit from the
/// configuration.
pub static BUDGET: ReadAllBudget = ReadAllBudget::new(DEFAULT_BUDGET);

/// A limit on the bytes that read-all buffers may hold at once, and what is reserved now.
#[derive(Debug)]
pub struct ReadAllBudget {
    limit: AtomicU64,
    reserved: AtomicU64,
}

impl ReadAllBudget {
    /// A budget of `limit` bytes, none reserved.
    pub const fn new(limit: u64) -> ReadAllBudget {
        ReadAllBudget {
            limit: AtomicU64::new(limit),
            reserved: AtomicU64::new(0),
        }
    }

    /// Sets the limit (at start-up; reservations already made are kept).
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Reserves `bytes`, or says why not. The reservation lasts until the returned value drops.
    pub fn try_reserve(&'static self, bytes: u64) -> Result<Reservation, ReadAllRefused> {
        let limit = self.limit();
        let mut reserved = self.reserved.load(Ordering::Relaxed);
        loop {
            let refused = ReadAllRefused {
                requested: bytes,
                free: limit.saturating_sub(reserved),
                budget: limit,
            };
            let total = reserved
                .checked_add(bytes)
                .filter(|&total| total <= limit)
                .ok_or(refused)?;
            match self.reserved.compare_exchange_weak(
                reserved,
                total,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Ok(Reservation {
                        budget: self,
                        bytes,
                    })
                }
                Err(now) => reserved = now,
            }
        }
    }
}

/// Bytes reserved in a [`ReadAllBudget`], given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: &'static ReadAllBudget,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.reserved.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Why a read-all response was refused: it needs `requested` bytes and only `free` of the
/// `budget` are. Carried inside an [`io::Error`]; [`crate::error`] renders it as a `503`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAllRefused {
    /// Bytes the response would hold in memory.
    pub requested: u64,
    /// Bytes of the budget free when it asked (0 when the system refused the allocation).
    pub free: u64,
    /// The whole budget (`--read-all-budget`).
    pub budget: u64,
}

impl fmt::Display for ReadAllRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (requested, free, budget) = (Size(self.requested), Size(self.free), Size(self.budget));
        if self.requested > self.budget {
            write!(
                f,
                "--mode read-all would hold this response's {requested} in memory, more than \
                 the server's whole read-all budget of {budget} (--read-all-budget); ask for a \
                 smaller range, or run the server with another --mode or a larger budget"
            )
        } else if self.free >= self.requested {
            write!(
                f,
                "--mode read-all could not allocate this response's {requested} (the system is \
                 out of memory); retry later or ask for a smaller range"
            )
        } else {
            write!(
                f,
                "--mode read-all would hold this response's {requested} in memory and only \
                 {free} of the server's {budget} read-all budget (--read-all-budget) is free \
                 now; retry later or ask for a smaller range"
            )
        }
    }
}

impl std::error::Error for ReadAllRefused {}

impl From<ReadAllRefused> for io::Error {
    fn from(refused: ReadAllRefused) -> io::Error {
        io::Error::new(io::ErrorKind::OutOfMemory, refused)
    }
}

/// A byte count for people: `512 MiB`, `60 GiB`, `1.5 KiB`, `100 bytes`.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        if self.0 < 1024 {
            return write!(f, "{} bytes", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if value.fract() == 0.0 {
            write!(f, "{value} {}", UNITS[unit])
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

/// Replaces every file segment with its bytes, read on the blocking pool, within [`BUDGET`].
/// Fails with a [`ReadAllRefused`] inside the error when the bytes do not fit, and if the file
/// is shorter than a segment says.
pub async fn read_segments(
    file: Arc<File>,
    segments: VecDeque<Segment>,
) -> io::Result<VecDeque<Segment>> {
    read_segments_within(&BUDGET, file, segments).await
}

/// [`read_segments`] drawing on `budget`.
pub async fn read_segments_within(
    budget: &'static ReadAllBudget,
    file: Arc<File>,
    segments: VecDeque<Segment>,
) -> io::Result<VecDeque<Segment>> {
    let total = segments
        .iter()
        .map(|segment| match segment {
            Segment::File { len, .. } => *len,
            Segment::Bytes(_) => 0,
        })
        .fold(0u64, u64::saturating_add);
    // Reserved before the blocking pool is asked, so a refusal costs no thread hop.
    let reservation = Arc::new(budget.try_reserve(total)?);
    tokio::task::spawn_blocking(move || {
        segments
            .into_iter()
            .map(|segment| match segment {
                Segment::File { offset, len } => {
                    read_range(&file, offset, len, &reservation).map(Segment::Bytes)
                }
                bytes => Ok(bytes),
            })
            .collect()
    })
    .await
    .map_err(io::Error::other)?
}

/// A buffer whose bytes count against a reservation until the last [`Bytes`] viewing it drops.
struct Reserved {
    buffer: Vec<u8>,
    _reservation: Arc<Reservation>,
}

impl AsRef<[u8]> for Reserved {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

/// Reads exactly `len` bytes at `offset` into one buffer tied to `reservation`. Blocking.
fn read_range(
    file: &File,
    offset: u64,
    len: u64,
    reservation: &Arc<Reservation>,
) -> io::Result<Bytes> {
    let refused = || ReadAllRefused {
        requested: len,
        free: reservation.budget.limit(),
        budget: reservation.budget.limit(),
    };
    let len = usize::try_from(len).map_err(|_| refused())?;
    let mut buffer = Vec::new();
    // The infallible allocation (`vec![0; len]`) would abort the process when it fails.
    buffer.try_reserve_exact(len).map_err(|_| refused())?;
    buffer.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        match read_at(file, &mut buffer[filled..], offset + filled as u64) {
            Ok(0) => return Err(file_shrank()),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(Bytes::from_owner(Reserved {
        buffer,
        _reservation: Arc::clone(reservation),
    }))
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: u64) -> &'static ReadAllBudget {
        Box::leak(Box::new(ReadAllBudget::new(limit)))
    }

    fn file_with(content: &[u8]) -> Arc<File> {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, content).unwrap();
        Arc::new(file)
    }

    fn ranges(spans: &[(u64, u64)]) -> VecDeque<Segment> {
        spans
            .iter()
            .map(|&(offset, len)| Segment::File { offset, len })
            .collect()
    }

    fn refusal(error: &io::Error) -> Option<ReadAllRefused> {
        error.get_ref()?.downcast_ref::<ReadAllRefused>().copied()
    }

    #[tokio::test]
    async fn ranges_within_the_budget_are_read_and_released_when_dropped() {
        let budget = budget(10);
        let file = file_with(b"0123456789");
        let read = read_segments_within(budget, file, ranges(&[(0, 4), (6, 4)]))
            .await
            .unwrap();
        assert_eq!(budget.reserved(), 8);
        let bytes: Vec<Bytes> = read
            .into_iter()
            .map(|segment| match segment {
                Segment::Bytes(bytes) => bytes,
                Segment::File { .. } => panic!("a file segment was left unread"),
            })
            .collect();
        assert_eq!(bytes, [&b"0123"[..], &b"6789"[..]]);
        let kept = bytes[1].slice(1..);
        drop(bytes);
        // A slice still views a buffer: its bytes stay reserved.
        assert_eq!(budget.reserved(), 8);
        drop(kept);
        assert_eq!(budget.reserved(), 0);
    }

    #[tokio::test]
    async fn a_response_larger_than_the_budget_is_refused_before_any_allocation() {
        let budget = budget(1024);
        // Larger than any machine's memory: an attempt to allocate it would abort the test.
        let huge = ranges(&[(0, 60 << 30)]);
        let error = read_segments_within(budget, file_with(b""), huge)
            .await
            .unwrap_err();
        let refused = refusal(&error).expect("a ReadAllRefused inside the error");
        assert_eq!(
            refused,
            ReadAllRefused {
                requested: 60 << 30,
                free: 1024,
                budget: 1024
            }
        );
        assert!(refused.to_string().contains("60 GiB"), "{refused}");
        assert!(refused.to_string().contains("1 KiB"), "{refused}");
        assert_eq!(budget.reserved(), 0);
    }

    #[tokio::test]
    async fn a_full_budget_refuses_until_bytes_are_released() {
        let budget = budget(8);
        let file = file_with(b"0123456789");
        let first = read_segments_within(budget, Arc::clone(&file), ranges(&[(0, 6)]))
            .await
            .unwrap();
        let error = read_segments_within(budget, Arc::clone(&file), ranges(&[(0, 6)]))
            .await
            .unwrap_err();
        let refused = refusal(&error).unwrap();
        assert_eq!((refused.requested, refused.free), (6, 2));
        assert!(refused.to_string().contains("retry later"), "{refused}");
        drop(first);
        assert!(read_segments_within(budget, file, ranges(&[(0, 6)]))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_range_fails_and_releases_its_reservation() {
        let budget = budget(100);
        let error = read_segments_within(budget, file_with(b"abc"), ranges(&[(0, 10)]))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(Size(100).to_string(), "100 bytes");
        assert_eq!(Size(1536).to_string(), "1.5 KiB");
        assert_eq!(Size(512 << 20).to_string(), "512 MiB");
        assert_eq!(Size(60 << 30).to_string(), "60 GiB");
    }
}
