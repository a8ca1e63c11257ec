//! Per-client connection limits (`--max-connections-per-ip`), as nginx's `limit_conn`: how many
//! connections one address may hold at once, so one client cannot take every
//! `--max-connections` slot.
//!
//! A client is an IPv4 address, or an IPv6 /64: one IPv6 host (or home) is usually given a
//! whole /64 and can pick a fresh address in it for every connection. An IPv4 client reached
//! through an IPv6 socket (`::ffff:a.b.c.d`) counts as its IPv4 address.
//!
//! This module only counts; the accept loop answers a refused connection with
//! [`crate::error::TOO_MANY_CONNECTIONS`] and closes it, without taking a `--max-connections` slot.
//! Not a rate limit: a client may open and close connections as fast as it likes, as long as it
//! holds no more than the limit at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::signed_link::unmap;

/// Who counts as one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address.
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6Net64(u64),
}

impl ClientKey {
    /// The client an address belongs to.
    pub fn of(ip: IpAddr) -> ClientKey {
        match unmap(ip) {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6Net64((u128::from(v6) >> 64) as u64),
        }
    }
}

/// Counts open connections per client.
#[derive(Debug)]
pub struct ClientLimiter {
    limit: usize,
    open: Mutex<HashMap<ClientKey, usize>>,
}

impl ClientLimiter {
    /// A limiter allowing `limit` connections per client; `None` for 0 (no limit).
    pub fn new(limit: u32) -> Option<Arc<ClientLimiter>> {
        (limit > 0).then(|| {
            Arc::new(ClientLimiter {
                limit: limit as usize,
                open: Mutex::new(HashMap::new()),
            })
        })
    }

    /// A place for one more connection from `ip`, held until the guard is dropped; `None` if
    /// that client already holds the limit.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ClientGuard> {
        let key = ClientKey::of(ip);
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientGuard {
            limiter: Arc::clone(self),
            key,
        })
    }

    /// Connections `ip`'s client holds now.
    pub fn open_for(&self, ip: IpAddr) -> usize {
        self.lock().get(&ClientKey::of(ip)).copied().unwrap_or(0)
    }

    /// The map, even if a thread panicked while holding it (the counts stay consistent: every
    /// change is one statement).
    fn lock(&self) -> MutexGuard<'_, HashMap<ClientKey, usize>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One connection's place in its client's count; released on drop. The map forgets clients
/// with no connection, so it holds at most one entry per open connection.
#[derive(Debug)]
pub struct ClientGuard {
    limiter: Arc<ClientLimiter>,
    key: ClientKey,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_limit_holds_per_client_and_frees_on_drop() {
        let limiter = ClientLimiter::new(2).unwrap();
        let a = limiter.try_acquire(ip("10.0.0.1")).unwrap();
        let _b = limiter.try_acquire(ip("10.0.0.1")).unwrap();
        assert!(limiter.try_acquire(ip("10.0.0.1")).is_none());
        assert!(
            limiter.try_acquire(ip("10.0.0.2")).is_some(),
            "another client is not affected"
        );
        drop(a);
        assert!(limiter.try_acquire(ip("10.0.0.1")).is_some());
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        let limiter = ClientLimiter::new(1).unwrap();
        let _held = limiter.try_acquire(ip("2001:db8:0:1::1")).unwrap();
        assert!(limiter.try_acquire(ip("2001:db8:0:1:ffff::9")).is_none());
        assert!(limiter.try_acquire(ip("2001:db8:0:2::1")).is_some());
    }

    #[test]
    fn mapped_ipv4_is_the_same_client() {
        let limiter = ClientLimiter::new(1).unwrap();
        let _held = limiter.try_acquire(ip("192.0.2.1")).unwrap();
        assert!(limiter.try_acquire(ip("::ffff:192.0.2.1")).is_none());
    }

    #[test]
    fn zero_means_no_limit_and_the_map_empties() {
        assert!(ClientLimiter::new(0).is_none());
        let limiter = ClientLimiter::new(3).unwrap();
        let guards: Vec<_> = (0..3)
            .map(|_| limiter.try_acquire(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(limiter.open_for(ip("10.0.0.1")), 3);
        drop(guards);
        assert_eq!(limiter.open_for(ip("10.0.0.1")), 0);
        assert!(limiter.lock().is_empty());
    }
}
