//! The budget for file bytes held in user-space buffers: a server-wide total and a per-connection
//! share, so that clients who request much and read nothing cannot make the server hold memory
//! without bound.
//!
//! Every chunk that `pread` fills (`--mode chunked`, and every streaming mode over HTTPS) reserves
//! its size from the connection's share and then from the server's total *before* the read, and
//! gives it back when hyper (or h2) drops the chunk after writing it. A body that finds the
//! budget spent waits, which is what a slow reader's body should do; the stall is bounded by the
//! send timeout like any other (see `crate::watchdog` for HTTP/2 streams). Mapped chunks
//! (`sendfile`, `mmap` on plain HTTP) hold no buffer and reserve nothing.
//!
//! Bounds: at most [`SERVER_BUFFER_BUDGET`] of chunk buffers in the whole server, and at most
//! [`CONNECTION_BUFFER_SHARE`] (or two chunks, if larger) per connection, however many HTTP/2
//! streams it opens.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of chunk buffers the whole server may hold at once: with the per-connection share,
/// 64 connections that read nothing hold at most this, far under the 128 MiB a server this size
/// should ever need.
pub const SERVER_BUFFER_BUDGET: usize = 64 * 1024 * 1024;

/// Bytes of chunk buffers one connection may hold at once, all its streams together: eight
/// 128 KiB HTTPS chunks, enough to keep a fast client's pipe full while the next chunk is read.
pub const CONNECTION_BUFFER_SHARE: usize = 1024 * 1024;

/// Budget units are KiB, so a u32 permit count covers any chunk size.
const UNIT: usize = 1024;

fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

/// The server's total, shared by every connection.
#[derive(Debug, Clone)]
pub struct ServerBudget(Arc<Semaphore>);

impl ServerBudget {
    /// A total of [`SERVER_BUFFER_BUDGET`], or four chunks of `largest_chunk` if that is more
    /// (so a connection's share always fits).
    pub fn new(largest_chunk: usize) -> ServerBudget {
        let bytes = SERVER_BUFFER_BUDGET.max(4 * largest_chunk);
        ServerBudget(Arc::new(Semaphore::new(units(bytes) as usize)))
    }

    /// Bytes not reserved at the moment.
    pub fn available(&self) -> usize {
        self.0.available_permits() * UNIT
    }
}

/// One connection's share of the server's budget.
#[derive(Debug, Clone)]
pub struct BufferBudget {
    server: Arc<Semaphore>,
    connection: Arc<Semaphore>,
}

/// Bytes reserved for one chunk; given back when dropped.
#[derive(Debug)]
pub struct BufferPermit {
    _connection: OwnedSemaphorePermit,
    _server: OwnedSemaphorePermit,
}

/// A reservation that had to wait.
pub type PendingReservation = Pin<Box<dyn Future<Output = Option<BufferPermit>> + Send + Sync>>;

impl BufferBudget {
    /// A new connection's share of `server`, for chunks of at most `chunk` bytes.
    pub fn for_connection(server: &ServerBudget, chunk: usize) -> BufferBudget {
        let share = CONNECTION_BUFFER_SHARE.max(2 * chunk);
        BufferBudget {
            server: Arc::clone(&server.0),
            connection: Arc::new(Semaphore::new(units(share) as usize)),
        }
    }

    /// Reserves `bytes` now if both the connection's share and the server's total allow it.
    pub fn try_reserve(&self, bytes: usize) -> Option<BufferPermit> {
        let n = units(bytes);
        let connection = Arc::clone(&self.connection)
            .try_acquire_many_owned(n)
            .ok()?;
        let server = Arc::clone(&self.server).try_acquire_many_owned(n).ok()?;
        Some(BufferPermit {
            _connection: connection,
            _server: server,
        })
    }

    /// Reserves `bytes` when the budget allows: the connection's share first, so a connection
    /// never holds server budget while it waits for its own.
    pub fn reserve(&self, bytes: usize) -> PendingReservation {
        let n = units(bytes);
        let (connection, server) = (Arc::clone(&self.connection), Arc::clone(&self.server));
        Box::pin(async move {
            let connection = connection.acquire_many_owned(n).await.ok()?;
            let server = server.acquire_many_owned(n).await.ok()?;
            Some(BufferPermit {
                _connection: connection,
                _server: server,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_cannot_hold_more_than_its_share() {
        let server = ServerBudget::new(128 * 1024);
        let budget = BufferBudget::for_connection(&server, 128 * 1024);
        let held: Vec<BufferPermit> = std::iter::from_fn(|| budget.try_reserve(128 * 1024))
            .take(100)
            .collect();
        assert_eq!(held.len(), CONNECTION_BUFFER_SHARE / (128 * 1024));
        assert_eq!(
            server.available(),
            SERVER_BUFFER_BUDGET - CONNECTION_BUFFER_SHARE
        );
        drop(held);
        assert_eq!(server.available(), SERVER_BUFFER_BUDGET);
    }

    #[test]
    fn connections_together_cannot_hold_more_than_the_server_budget() {
        let server = ServerBudget::new(128 * 1024);
        let mut held = Vec::new();
        for _ in 0..200 {
            let budget = BufferBudget::for_connection(&server, 128 * 1024);
            held.extend(std::iter::from_fn(|| budget.try_reserve(128 * 1024)).take(8));
        }
        assert_eq!(held.len() * 128 * 1024, SERVER_BUFFER_BUDGET);
        assert_eq!(server.available(), 0);
    }

    #[test]
    fn the_share_always_fits_two_chunks() {
        let chunk = 4 * 1024 * 1024;
        let server = ServerBudget::new(chunk);
        let budget = BufferBudget::for_connection(&server, chunk);
        let first = budget.try_reserve(chunk);
        let second = budget.try_reserve(chunk);
        assert!(first.is_some() && second.is_some());
        assert!(budget.try_reserve(chunk).is_none());
    }

    #[tokio::test]
    async fn a_waiting_reservation_completes_when_a_chunk_is_dropped() {
        let server = ServerBudget::new(512 * 1024);
        let budget = BufferBudget::for_connection(&server, 512 * 1024);
        let first = budget.try_reserve(512 * 1024);
        let second = budget.try_reserve(512 * 1024);
        assert!(budget.try_reserve(1).is_none());
        let waiting = budget.reserve(512 * 1024);
        drop(first);
        assert!(waiting.await.is_some());
        drop(second);
    }
}
