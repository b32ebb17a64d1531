//! The HTTP side: accept loop on 127.0.0.1, one hyper HTTP/1.1 connection task per socket.
//!
//! Each request is timed into the in-flight count, delayed by the configured latency, given a
//! [`Slot`] for the s3s hooks, served by the s3s service, and logged with its status. A request
//! whose fault asked for it is answered by closing the connection instead (hyper drops a
//! connection whose service returns an error), which a client sees as a dropped connection.
//! A successful answer whose fault damages bodies is rewritten here ([`crate::body_fault`]):
//! cut short with a matching `Content-Length`, or sent in part under the whole body's
//! `Content-Length` before the connection breaks (the body stream ends in an error, so hyper
//! closes the connection).

use crate::body_fault;
use crate::control::{Control, FaultKind, RequestRecord, Slot};
use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use s3s::service::S3Service;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serve until `shutdown` turns true (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    service: S3Service,
    control: Arc<Control>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of file descriptors or similar: back off briefly instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        // Without this every request on a kept-alive connection waits for delayed ACKs.
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let control = control.clone();
        connections.spawn(async move {
            let handler = service_fn(move |req| handle(req, service.clone(), control.clone()));
            // Errors here are clients going away or injected drops: nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler)
                .await;
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}

fn bucket_and_key(path: &str) -> (Option<String>, Option<String>) {
    let path = path.trim_start_matches('/');
    match path.split_once('/') {
        None if path.is_empty() => (None, None),
        None => (Some(path.to_string()), None),
        Some((b, k)) => (Some(b.to_string()), Some(k.to_string())),
    }
}

async fn handle(
    req: Request<Incoming>,
    service: S3Service,
    control: Arc<Control>,
) -> Result<Response<s3s::Body>, std::io::Error> {
    let _in_flight = control.enter();
    let latency = control.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let slot = Slot::default();
    let mut req = req;
    req.extensions_mut().insert(slot.clone());
    let result = Service::call(&service, req).await;
    let (operation, bucket, key, dropped, damage) = {
        let data = slot.lock();
        let (bucket, key) = match &data.operation {
            Some(_) => (data.bucket.clone(), data.key.clone()),
            None => bucket_and_key(&path),
        };
        let damage = data.damage_body;
        (
            data.operation.clone(),
            bucket,
            key,
            data.drop_connection,
            damage,
        )
    };
    let result = match (result, damage) {
        (Ok(resp), Some(kind)) if resp.status().is_success() => damage_body(resp, kind).await,
        (result, _) => result,
    };
    let status = match (&result, dropped) {
        (Ok(resp), false) => Some(resp.status().as_u16()),
        _ => None,
    };
    control.record(RequestRecord {
        operation: operation.unwrap_or_else(|| "Unrouted".to_string()),
        method,
        bucket,
        key,
        status,
    });
    match result {
        Ok(resp) if !dropped => Ok(resp),
        Ok(_) => Err(std::io::Error::other("injected fault: connection dropped")),
        Err(e) => Err(std::io::Error::other(format!("s3s: {e:?}"))),
    }
}

/// Largest body a fault reads into memory to damage it.
const MAX_DAMAGED_BODY: usize = 64 << 20;

/// `resp` with its body damaged by `kind` (see the module documentation).
async fn damage_body(
    resp: Response<s3s::Body>,
    kind: FaultKind,
) -> Result<Response<s3s::Body>, s3s::HttpError> {
    let (mut parts, mut body) = resp.into_parts();
    let Ok(whole) = body.store_all_limited(MAX_DAMAGED_BODY).await else {
        // Unreadable or huge: answer undamaged (the body was kept by `store_all_limited`).
        return Ok(Response::from_parts(parts, body));
    };
    let (announced, body) = match kind {
        FaultKind::CloseMidBody(at) => {
            let sent = whole.slice(..body_fault::cut_len(&whole, at));
            let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
                Ok(Frame::data(sent)),
                Err(std::io::Error::other("injected fault: body cut short")),
            ];
            let stream = http_body_util::StreamBody::new(futures::stream::iter(frames));
            (whole.len(), s3s::Body::http_body(stream))
        }
        kind => {
            let damaged = body_fault::damaged(&whole, kind);
            (damaged.len(), s3s::Body::from(damaged))
        }
    };
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(announced));
    Ok(Response::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_bucket_and_key() {
        assert_eq!(bucket_and_key("/"), (None, None));
        assert_eq!(bucket_and_key("/b"), (Some("b".into()), None));
        assert_eq!(
            bucket_and_key("/b/k/x"),
            (Some("b".into()), Some("k/x".into()))
        );
    }
}
