//! Rendering: a decided [`Plan`] (or generated content) becomes a hyper response whose body
//! produces file bytes by the connection's [`FileStrategy`]. This is where the doing starts:
//! `read-all` reads here, before the response; every other strategy reads (or maps) while hyper
//! polls the body.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::Response;

use crate::body::{
    read_all, BufferBudget, FileSource, FileStrategy, MappedRegistry, ResponseBody, Segment,
};
use crate::conditional::MethodKind;
use crate::error::ServeError;
use crate::plan::Plan;
use crate::representation::{Content, Representation};
use crate::stats::{ConnectionStats, ServerStats};

/// How one connection produces file bytes: fixed when the connection is accepted.
#[derive(Debug, Clone)]
pub struct FileSending {
    /// The connection's strategy (from `--mode` and its transport).
    pub strategy: FileStrategy,
    /// The connection's mapped regions, for the zero-copy writer.
    pub registry: Arc<MappedRegistry>,
    /// The server's counters.
    pub stats: Arc<ConnectionStats>,
    /// The connection's share of the buffer budget (strategies that fill buffers).
    pub budget: Option<BufferBudget>,
}

/// The response for `plan` about `representation`. Not an `async fn`, whose future would keep
/// the plan twice (argument and local); this future is part of every request's. The plan stays
/// whole until the end for the same reason.
#[allow(clippy::manual_async_fn)] // see above: `async fn` would make the future larger
pub fn render<'a>(
    mut plan: Plan,
    representation: &'a Representation,
    sending: &'a FileSending,
) -> impl Future<Output = Result<Response<ResponseBody>, ServeError>> + Send + 'a {
    async move {
        let body = match plan.body.take() {
            None => ResponseBody::empty(),
            Some(segments) => match &representation.content {
                Content::Static(bytes) => ResponseBody::from_segments(
                    segments
                        .into_iter()
                        .map(|segment| match segment {
                            Segment::File { offset, len } => Segment::Bytes(
                                bytes.slice(offset as usize..(offset + len) as usize),
                            ),
                            bytes => bytes,
                        })
                        .collect(),
                    None,
                    None,
                ),
                Content::File(file) if sending.strategy == FileStrategy::ReadAll => {
                    // Boxed: no other strategy waits here.
                    Box::pin(read_whole(file, segments, sending)).await?
                }
                Content::File(file) => ResponseBody::from_segments(
                    segments,
                    Some(FileSource {
                        file: Arc::clone(file),
                        key: representation.file_key,
                        strategy: sending.strategy,
                        registry: Arc::clone(&sending.registry),
                        budget: sending.budget.clone(),
                    }),
                    Some(Arc::clone(&sending.stats)),
                ),
            },
        };
        let mut response = Response::new(body);
        *response.status_mut() = plan.status;
        *response.headers_mut() = plan.headers;
        Ok(response)
    }
}

/// `read-all`: the body read into memory before the response starts, as `fs.readFile` does.
async fn read_whole(
    file: &Arc<std::fs::File>,
    segments: std::collections::VecDeque<Segment>,
    sending: &FileSending,
) -> Result<ResponseBody, ServeError> {
    let copied: u64 = segments
        .iter()
        .map(|s| match s {
            Segment::File { len, .. } => *len,
            Segment::Bytes(_) => 0,
        })
        .sum();
    let read = read_all::read_segments(Arc::clone(file), segments).await?;
    ServerStats::add(&sending.stats.bytes_copied, copied);
    Ok(ResponseBody::from_segments(read, None, None))
}

/// A response for content made on the fly (API JSON, listings): no validators, no ranges.
pub fn render_generated(
    method: MethodKind,
    content: Bytes,
    content_type: &'static str,
    policy: Option<&'static str>,
) -> Response<ResponseBody> {
    let len = content.len();
    let body = if method == MethodKind::Head {
        ResponseBody::empty()
    } else {
        ResponseBody::bytes(content)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(policy) = policy {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    response
}
