//! Reading requests: JSON bodies with their content type checked and errors that name the
//! field at fault, query parameters, path segments; and writing JSON answers.
//!
//! Bodies are bounded before they are read: each route group has a `RequestBodyLimitLayer`
//! (413 at once for a declared `Content-Length` over it, and a read error past it for a
//! chunked body), so parsing never sees more than the route allows.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;

/// The request's media type, lowercased and without parameters (`; charset=utf-8`).
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

/// The 415 answer, naming what the route takes.
pub(crate) fn unsupported_media_type(got: Option<&str>, accepted: &[&str]) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        415,
        format!(
            "HTTP 415 Unsupported Media Type: Content-Type {} is not accepted here; use {}",
            got.map_or("(none)".to_string(), |g| format!("{g:?}")),
            accepted.join(" or ")
        ),
    )
}

/// Reads the whole body (already bounded by the route's limit layer).
pub(crate) async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::status(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            ApiError::bad_field("body", rejection.body_text())
        }
    })
}

/// Parses JSON, naming the field at fault (`records[2].partition: invalid type ...`).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json says where; the path says which field ("." is the whole body).
        let field = if path == "." || path == "?" {
            "body".to_string()
        } else {
            path
        };
        ApiError::bad_field(&field, inner)
    })
}

/// A JSON request body (`Content-Type: application/json`) of type `T`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let media = media_type(req.headers());
        if media.as_deref() != Some("application/json") {
            return Err(unsupported_media_type(
                media.as_deref(),
                &["application/json"],
            ));
        }
        let bytes = read_body(req).await?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}

/// Path parameters (`T`: a tuple of `String`s), with axum's rejection (a segment that is not
/// valid UTF-8 once decoded) as the API's 400.
#[derive(Debug)]
pub(crate) struct PathParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathParams(t))
            .map_err(|rejection| ApiError::bad_field("path", rejection.body_text()))
    }
}

/// The base of the links in answers: `http://` and the host the client asked for (its
/// `Host` header), so links work through whatever name or port the client used.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// A JSON answer with a content type of the API's (`application/json` for v3,
/// `application/vnd.kafka.v2+json` for v2).
pub(crate) fn json_response<T: Serialize>(
    status: StatusCode,
    content_type: &'static str,
    body: &T,
) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            50001,
            format!("cannot encode the answer: {e}"),
        )
        .into_response(),
    }
}

/// The query parameters of a request, each named at most once and each one the route knows.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `query` (the part after `?`), allowing only the names in `known`.
    pub(crate) fn parse(query: Option<&str>, known: &[&str]) -> Result<Params, ApiError> {
        let mut out = HashMap::new();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| ApiError::bad_field("query", e))?;
        for (name, value) in pairs {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::bad_field(
                    &name,
                    format!(
                        "unknown query parameter (this route takes {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            if out.insert(name.clone(), value).is_some() {
                return Err(ApiError::bad_field(&name, "given more than once"));
            }
        }
        Ok(Params(out))
    }

    /// Whether `name` was given.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Parameter `name` as an integer in `range`, if given.
    pub(crate) fn int<N>(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<N>,
    ) -> Result<Option<N>, ApiError>
    where
        N: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.0.get(name) else {
            return Ok(None);
        };
        let n: N = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_field(name, format!("{raw:?} is not an integer")))?;
        if !range.contains(&n) {
            return Err(ApiError::bad_field(
                name,
                format!(
                    "{n} is out of range (from {} to {})",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(Some(n))
    }

    /// Parameter `name` as a boolean (`true`/`false`), if given.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name).map(String::as_str) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_field(
                name,
                format!("{other:?} is not true or false"),
            )),
        }
    }
}

/// A path segment that must be a partition id (or another non-negative 32-bit id).
pub(crate) fn path_id(name: &str, raw: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_field(name, format!("{raw:?} is not a non-negative integer")))
}

/// `s` percent-encoded for use as one URL path segment (RFC 3986 unreserved characters stay).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        records: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        partition: Option<i32>,
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Shape>(br#"{"records":[{"partition":1},{"partition":"x"}]}"#)
            .expect_err("bad partition");
        assert_eq!((e.status.as_u16(), e.error_code), (400, 40001));
        assert!(
            e.message.starts_with("records[1].partition: "),
            "{}",
            e.message
        );
        let e = parse_json::<Shape>(b"{not json").expect_err("not json");
        assert!(e.message.starts_with("body: "), "{}", e.message);
        let e = parse_json::<Shape>(br#"{"records":[{"partitoin":1}]}"#).expect_err("typo");
        assert!(e.message.contains("partitoin"), "{}", e.message);
    }

    #[test]
    fn params_are_known_single_and_in_range() {
        let p = Params::parse(Some("offset=5&max_records=10"), &["offset", "max_records"])
            .expect("parses");
        assert_eq!(p.int("offset", 0u64..=u64::MAX).expect("ok"), Some(5));
        let e = p.int("max_records", 1usize..=3).expect_err("range");
        assert!(
            e.message.starts_with("max_records: 10 is out of range"),
            "{}",
            e.message
        );
        let e = Params::parse(Some("ofset=5"), &["offset"]).expect_err("unknown");
        assert!(e.message.starts_with("ofset: unknown"), "{}", e.message);
        let e = Params::parse(Some("offset=1&offset=2"), &["offset"]).expect_err("twice");
        assert!(e.message.contains("more than once"), "{}", e.message);
        let p = Params::parse(Some("offset=x"), &["offset"]).expect("parses");
        assert!(p.int("offset", 0u64..=9).is_err());
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("orders.v1_x-y"), "orders.v1_x-y");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
