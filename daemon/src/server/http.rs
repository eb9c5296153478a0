//! Small HTTP helpers shared by the endpoint files: bodies in, JSON out,
//! errors as `{"error": {...}}`.

use ::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use ::http::{Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tether_api::error::ErrorBody;
use tether_api::files::query_value;
use zeroize::Zeroizing;

use crate::config::Limits;
use crate::error::Error;

/// Every response body: a whole JSON document or a stream of file bytes.
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;
pub type Resp = Response<Body>;

pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A body fed through a channel of `depth` chunks, and the sender that
/// feeds it: the feeding task waits while the caller is slow, so a download
/// never piles up in memory; `abort` ends the body with an error.
pub type BodySender = http_body_util::channel::Sender<Bytes, std::io::Error>;

pub fn channel_body(depth: usize) -> (BodySender, Body) {
    let (tx, body) = http_body_util::channel::Channel::new(depth);
    (tx, body.boxed())
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        ::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// How long a client has to hand a descriptor over once upgraded.
pub const HANDOVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The Unix socket under an upgraded connection, and what the client sent
/// past its request; `None` for any other transport.
pub fn upgraded_socket(
    upgraded: hyper::upgrade::Upgraded,
) -> Option<(tokio::net::UnixStream, Bytes)> {
    let parts = upgraded
        .downcast::<hyper_util::rt::TokioIo<tokio::net::UnixStream>>()
        .ok()?;
    Some((parts.io.into_inner(), parts.read_buf))
}

/// The descriptor a client hands over first on an upgraded connection
/// (`what` names it in errors), within [`HANDOVER_TIMEOUT`].
pub async fn received_fd(
    stream: &tokio::net::UnixStream,
    early: &[u8],
    what: &str,
) -> Result<std::os::fd::OwnedFd, Error> {
    if !early.is_empty() {
        return Err(Error::BadRequest(format!("data came before {what}")));
    }
    tokio::time::timeout(HANDOVER_TIMEOUT, tether_api::agent::recv_fd(stream))
        .await
        .map_err(|_| Error::RequestTimeout(HANDOVER_TIMEOUT.as_secs()))?
        .map_err(|e| Error::BadRequest(format!("no {what} came: {e}")))
}

/// Whether the request asks to upgrade to `protocol`.
pub fn wants_upgrade(request: &::http::Request<hyper::body::Incoming>, protocol: &str) -> bool {
    request
        .headers()
        .get(::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(protocol))
}

/// `101 Switching Protocols` to `protocol`.
pub fn switching(protocol: &'static str) -> Resp {
    use ::http::HeaderValue;
    use ::http::header::{CONNECTION, UPGRADE};
    let mut response = empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static(protocol));
    response
}

pub fn empty(status: StatusCode) -> Resp {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = status;
    response
}

pub fn error(error: &Error) -> Resp {
    let api = error.to_api();
    let status =
        StatusCode::from_u16(api.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &ErrorBody { error: api })
}

/// `error` as a whole HTTP/1.1 response, for a connection that is answered
/// without being served (see `turn_away`).
pub fn raw_error(error: &Error) -> Vec<u8> {
    let api = error.to_api();
    let status = api.code.status();
    let body = serde_json::to_vec(&ErrorBody { error: api }).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Reads a whole request body within the size and time limits, into a buffer
/// that is wiped on drop (bodies may carry a secret).
pub async fn read_body(
    body: Incoming,
    headers: &::http::HeaderMap,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let too_large = || {
        Error::PayloadTooLarge(format!(
            "the request body is over {} bytes",
            limits.max_body_bytes
        ))
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_body_bytes as u64) {
        return Err(too_large());
    }
    let mut out = Zeroizing::new(Vec::new());
    let mut body = Limited::new(body, limits.max_body_bytes);
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    too_large()
                } else {
                    Error::BadRequest("the request body could not be read".into())
                }
            })?;
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
            }
        }
        Ok::<_, Error>(())
    };
    tokio::time::timeout(limits.body_timeout(), read)
        .await
        .map_err(|_| Error::RequestTimeout(limits.body_timeout_secs))??;
    Ok(out)
}

/// A query parameter that must be a number, if given.
pub fn query_number(query: &str, key: &str) -> Result<Option<u64>, Error> {
    match query_value(query, key).map_err(Error::BadRequest)? {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("{key} must be a number"))),
    }
}

/// Reads a request's body within the limits and parses it as JSON; the
/// body's buffer is wiped as soon as it is parsed.
pub async fn read_json<T: DeserializeOwned>(
    request: Request<Incoming>,
    limits: &Limits,
) -> Result<T, Error> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, &parts.headers, limits).await?;
    parse_json(&body)
}

/// Parses a JSON body; no body is `null` (so `()` and `Option` take it).
/// The message says which field is missing or unknown, but never echoes a
/// value: a value may be a secret sent with a wrong type.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let body: &[u8] = match body.iter().all(u8::is_ascii_whitespace) {
        true => b"null",
        false => body,
    };
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let safe = [
            "missing field",
            "unknown field",
            "unknown variant",
            "duplicate field",
        ]
        .iter()
        .any(|prefix| text.starts_with(prefix));
        let what = if safe {
            text.split(" at line").next().unwrap_or("").to_owned()
        } else {
            match e.classify() {
                serde_json::error::Category::Data => {
                    "a field has the wrong type or value".to_owned()
                }
                serde_json::error::Category::Eof => "the JSON body ends too early".to_owned(),
                _ => "the body is not valid JSON".to_owned(),
            }
        };
        Error::BadRequest(format!("{what} (line {}, column {})", e.line(), e.column()))
    })
}

/// How long a refused request's body is still read, so that the client sees
/// the answer rather than a broken pipe.
pub const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads and drops `body` in the background (bounded by [`DRAIN_LIMIT`]),
/// while the answer to a request refused before its body was read goes out.
pub fn drain_in_background(mut body: Incoming) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(DRAIN_LIMIT, async {
            while let Some(Ok(_)) = body.frame().await {}
        })
        .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        password: String,
    }

    #[test]
    fn parse_errors_name_fields_but_not_values() {
        let err = parse_json::<Body>(br#"{"name":"a"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `password`"), "{err}");
        let err = parse_json::<Body>(br#"{"name":"a","password":123456789}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("123456789"), "{err}");
        assert!(err.contains("wrong type"), "{err}");
        let err = parse_json::<Body>(b"{nope").unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
