//! A few bytes on the stack, filled by pushing.
//!
//! For the small values built on every request or response that would otherwise cost an
//! allocation: a file's entity tag (`conditional::OpaqueTag`), and the numbers and the client
//! address of an access-log line.

use std::io;

/// At most `N` bytes (`N` ≤ 255), held inline. A push that does not fit is refused and changes
/// nothing, so the contents are always a prefix of what was pushed.
#[derive(Clone, Copy)]
pub struct InlineBytes<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> InlineBytes<N> {
    /// No bytes yet.
    pub const EMPTY: InlineBytes<N> = {
        assert!(N <= u8::MAX as usize, "the length is kept in a u8");
        InlineBytes {
            len: 0,
            bytes: [0; N],
        }
    };

    /// The bytes pushed so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Appends `more` whole; false (and nothing appended) when it does not fit.
    pub fn push_slice(&mut self, more: &[u8]) -> bool {
        let start = usize::from(self.len);
        match self.bytes.get_mut(start..start + more.len()) {
            Some(room) => {
                room.copy_from_slice(more);
                // At most N ≤ 255 (see `EMPTY`).
                self.len += more.len() as u8;
                true
            }
            None => false,
        }
    }

    /// Appends `byte`; false (and nothing appended) when full.
    pub fn push(&mut self, byte: u8) -> bool {
        self.push_slice(&[byte])
    }
}

impl<const N: usize> std::fmt::Debug for InlineBytes<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_bytes().escape_ascii().to_string())
    }
}

impl<const N: usize> Default for InlineBytes<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// Equal when the bytes pushed are, whatever lies past them.
impl<const N: usize> PartialEq for InlineBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for InlineBytes<N> {}

/// Writing past the end is an error (`WriteZero` from `write_all`), never a silent cut.
impl<const N: usize> io::Write for InlineBytes<N> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = N - usize::from(self.len);
        let n = bytes.len().min(room);
        self.push_slice(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn pushes_that_do_not_fit_change_nothing() {
        let mut bytes = InlineBytes::<4>::EMPTY;
        assert!(bytes.push_slice(b"abc"));
        assert!(!bytes.push_slice(b"de"));
        assert_eq!(bytes.as_bytes(), b"abc");
        assert!(bytes.push(b'd'));
        assert!(!bytes.push(b'e'));
        assert_eq!(bytes.as_bytes(), b"abcd");
    }

    #[test]
    fn writing_past_the_end_is_an_error() {
        let mut bytes = InlineBytes::<4>::EMPTY;
        bytes.write_all(b"ab").unwrap();
        let error = bytes.write_all(b"cde").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
        assert_eq!(bytes.as_bytes(), b"abcd");
    }

    #[test]
    fn equality_is_of_the_bytes_pushed() {
        let mut a = InlineBytes::<8>::EMPTY;
        a.push_slice(b"xy");
        let mut b = InlineBytes::<8>::EMPTY;
        b.push_slice(b"xy");
        assert_eq!(a, b);
        b.push(b'z');
        assert_ne!(a, b);
    }
}
