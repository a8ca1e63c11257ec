//! `--mode read-all`: every file range of a response is read into memory before the response
//! starts, as Node's `fs.readFile` followed by `response.end(data)` does. The client waits for
//! the whole read, and the server holds the whole range in memory: the baseline this project
//! measures the other modes against.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

use super::{chunked::read_chunk, file_shrank, Segment};

/// Replaces every file segment with its bytes, read on the blocking pool. Fails if the file is
/// shorter than a segment says.
pub async fn read_segments(
    file: Arc<File>,
    segments: VecDeque<Segment>,
) -> io::Result<VecDeque<Segment>> {
    tokio::task::spawn_blocking(move || {
        segments
            .into_iter()
            .map(|segment| match segment {
                Segment::File { offset, len } => {
                    let len = usize::try_from(len).map_err(io::Error::other)?;
                    let bytes: Bytes = read_chunk(&file, offset, len)?;
                    if bytes.len() < len {
                        return Err(file_shrank());
                    }
                    Ok(Segment::Bytes(bytes))
                }
                bytes => Ok(bytes),
            })
            .collect()
    })
    .await
    .map_err(io::Error::other)?
}
