//! Reading a request body within its limits: the wire size and the decompressed size
//! are both capped by `max_request_bytes`, and a compressed body is inflated through a
//! bounded reader, so a gzip bomb is cut off at the limit and never inflated whole.
//! A compressed body may also inflate to at most [`MAX_INFLATE_RATIO`] times its wire
//! size: real SDK batches compress 5–30×, bombs hundreds to thousands of times.

use std::future::{poll_fn, Future};
use std::io::Read;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::answer::IngestError;

/// How a body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// deflate: zlib-wrapped as HTTP says, or raw as some clients send it.
    Deflate,
}

/// Reads the `Content-Encoding` header.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let Some(value) = headers.get(http::header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let value = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match value.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "Content-Encoding `{other}` is not supported; use gzip, deflate or none"
        ))),
    }
}

/// Reads the whole body (within `max` bytes and `timeout`) and decompresses it.
pub async fn read(
    body: Incoming,
    headers: &HeaderMap,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, IngestError> {
    let encoding = encoding(headers)?;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    // A body that arrived with its head (most do) is taken without starting a timer:
    // creating and dropping one costs every request a trip to the runtime's timer.
    let mut collect = std::pin::pin!(Limited::new(body, max).collect());
    let collected = match poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await {
        Poll::Ready(collected) => collected,
        Poll::Pending => tokio::time::timeout(timeout, collect)
            .await
            .map_err(|_| IngestError::RequestTimeout)?,
    };
    let raw = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large(max)),
        Err(e) => {
            return Err(IngestError::BadRequest(format!(
                "the request body could not be read: {e}"
            )))
        }
    };
    decode(raw, encoding, max)
}

/// How many times its compressed size a body may inflate to. JSON event batches from
/// SDKs (unique messageIds and timestamps in every event) compress 5–30×; 100 leaves
/// room for very repetitive legitimate batches while a body of padding or of a
/// thousand copies of one tiny event, which costs the sender nothing and the gateway
/// CPU and disk, is refused.
pub const MAX_INFLATE_RATIO: usize = 100;

/// Inflates `raw` if it is compressed, refusing output beyond `max` bytes or beyond
/// [`MAX_INFLATE_RATIO`] times the compressed size.
pub fn decode(raw: Bytes, encoding: Encoding, max: usize) -> Result<Bytes, IngestError> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(raw),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw.as_ref())),
        Encoding::Deflate if looks_like_zlib(&raw) => {
            Box::new(flate2::read::ZlibDecoder::new(raw.as_ref()))
        }
        Encoding::Deflate => Box::new(flate2::read::DeflateDecoder::new(raw.as_ref())),
    };
    let by_ratio = raw.len().saturating_mul(MAX_INFLATE_RATIO);
    let limit = max.min(by_ratio);
    let mut out = Vec::with_capacity((raw.len() * 4).min(limit + 1));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadRequest(format!("the compressed body is corrupt: {e}")))?;
    if out.len() > max {
        return Err(too_large(max));
    }
    if out.len() > by_ratio {
        return Err(IngestError::PayloadTooLarge(format!(
            "the compressed body inflates to more than {MAX_INFLATE_RATIO} times its size"
        )));
    }
    Ok(Bytes::from(out))
}

/// A zlib stream starts with CMF/FLG bytes whose 16-bit value is a multiple of 31.
fn looks_like_zlib(raw: &[u8]) -> bool {
    raw.len() >= 2 && raw[0] & 0x0f == 8 && (u16::from(raw[0]) << 8 | u16::from(raw[1])) % 31 == 0
}

fn too_large(max: usize) -> IngestError {
    IngestError::PayloadTooLarge(format!(
        "the request body is over the limit of {max} bytes (after decompression)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn gzip_and_both_deflates_round_trip() {
        let data = b"{\"batch\":[]}".repeat(10);
        assert_eq!(decode(gzip(&data), Encoding::Gzip, 1000).unwrap(), data);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&data).unwrap();
        let z = Bytes::from(z.finish().unwrap());
        assert_eq!(decode(z, Encoding::Deflate, 1000).unwrap(), data);
        let mut d = DeflateEncoder::new(Vec::new(), Compression::default());
        d.write_all(&data).unwrap();
        let d = Bytes::from(d.finish().unwrap());
        assert_eq!(decode(d, Encoding::Deflate, 1000).unwrap(), data);
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10_000_000]);
        assert!(bomb.len() < 20_000);
        let err = decode(bomb, Encoding::Gzip, 512_000).unwrap_err();
        assert!(matches!(err, IngestError::PayloadTooLarge(_)));
    }

    #[test]
    fn inflation_beyond_the_ratio_is_refused() {
        // Padding: 200 KB of spaces around one event, about 250 bytes of gzip.
        let padded = format!("{{\"batch\":[{{}}]{}}}", " ".repeat(200_000));
        let body = gzip(padded.as_bytes());
        assert!(body.len() * MAX_INFLATE_RATIO < padded.len());
        let err = decode(body, Encoding::Gzip, 512_000).unwrap_err();
        assert!(matches!(err, IngestError::PayloadTooLarge(m) if m.contains("times")));
        // A realistic batch is far below it.
        let events: Vec<String> = (0..100)
            .map(|i| format!("{{\"type\":\"track\",\"userId\":\"u{i}\",\"messageId\":\"{}\",\"event\":\"Order Completed\"}}", uuid::Uuid::new_v4()))
            .collect();
        let batch = format!("{{\"batch\":[{}]}}", events.join(","));
        assert_eq!(
            decode(gzip(batch.as_bytes()), Encoding::Gzip, 512_000)
                .unwrap()
                .len(),
            batch.len()
        );
    }

    #[test]
    fn corrupt_gzip_is_a_bad_request() {
        let err = decode(Bytes::from_static(b"\x1f\x8bnot gzip"), Encoding::Gzip, 100).unwrap_err();
        assert!(matches!(err, IngestError::BadRequest(_)));
    }

    #[test]
    fn unknown_encoding_is_unsupported() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", "br".parse().unwrap());
        assert!(matches!(
            encoding(&h),
            Err(IngestError::UnsupportedMediaType(_))
        ));
    }
}
