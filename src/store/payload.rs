//! Payloads as stored: LZ4-compressed when that makes them smaller. Forge webhooks are JSON
//! that repeats its keys and URLs (a 10 KB `issue_comment` stores in about 2.7 KB), so a
//! delivery fits in one database page instead of three, and each costs fewer bytes of WAL,
//! checkpoint and disk. The codec is stored beside the payload: rows written before (or by
//! hand, as the benchmarks' prefill does) read as they are.

use std::borrow::Cow;

/// The payload as received.
pub const JSON: &str = "json";
/// LZ4 block format, the uncompressed length prepended (little-endian `u32`).
pub const LZ4: &str = "lz4";

/// Payloads shorter than this are stored as they are: the saving would be a few bytes.
const COMPRESS_FROM: usize = 256;

/// The longest payload a stored LZ4 block may claim to expand to: the largest body intake
/// accepts, with room to spare. A damaged row cannot make a worker allocate more.
const MAX_EXPANDED: usize = 32 * 1024 * 1024;

/// A payload ready to store, and how it is encoded.
#[derive(Debug, Clone)]
pub struct Encoded<'a> {
    pub bytes: Cow<'a, [u8]>,
    pub codec: &'static str,
}

/// Compresses `payload` when it is long enough and compression pays.
pub fn encode(payload: &[u8]) -> Encoded<'_> {
    if payload.len() >= COMPRESS_FROM {
        let packed = lz4_flex::block::compress_prepend_size(payload);
        if packed.len() < payload.len() {
            return Encoded {
                bytes: Cow::Owned(packed),
                codec: LZ4,
            };
        }
    }
    Encoded {
        bytes: Cow::Borrowed(payload),
        codec: JSON,
    }
}

/// The payload as received, from what is stored under `codec`.
pub fn decode(codec: &str, stored: Vec<u8>) -> Result<Vec<u8>, PayloadDecodeError> {
    match codec {
        JSON => Ok(stored),
        LZ4 => {
            let claimed = stored
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or(PayloadDecodeError::Damaged(
                    "shorter than its length".into(),
                ))?;
            if claimed > MAX_EXPANDED {
                return Err(PayloadDecodeError::Damaged(format!(
                    "claims {claimed} bytes"
                )));
            }
            let payload = lz4_flex::block::decompress_size_prepended(&stored)
                .map_err(|e| PayloadDecodeError::Damaged(e.to_string()))?;
            if payload.len() != claimed {
                return Err(PayloadDecodeError::Damaged(format!(
                    "{} bytes where {claimed} were stored",
                    payload.len()
                )));
            }
            Ok(payload)
        }
        other => Err(PayloadDecodeError::UnknownCodec(other.to_owned())),
    }
}

/// A stored payload that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum PayloadDecodeError {
    #[error("stored payload is damaged: {0}")]
    Damaged(String),
    #[error("stored payload has an unknown codec {0:?}")]
    UnknownCodec(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_only_compress_when_it_pays() {
        let json = format!(
            "{{\"items\":[{}]}}",
            (0..200)
                .map(|i| format!("{{\"url\":\"https://api.github.com/repos/acme/widgets/{i}\"}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let e = encode(json.as_bytes());
        assert_eq!(e.codec, LZ4);
        assert!(
            e.bytes.len() * 3 < json.len(),
            "{} of {}",
            e.bytes.len(),
            json.len()
        );
        assert_eq!(
            decode(e.codec, e.bytes.into_owned()).expect("decodes"),
            json.as_bytes()
        );

        let short = br#"{"zen":"Keep it logically awesome."}"#;
        let e = encode(short);
        assert_eq!((e.codec, e.bytes.as_ref()), (JSON, &short[..]));

        // Noise does not compress: stored as it came.
        let noise: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
        assert_eq!(encode(&noise).codec, JSON);
    }

    #[test]
    fn damaged_or_unknown_payloads_are_errors_not_allocations() {
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"\x10x");
        assert!(matches!(
            decode(LZ4, huge),
            Err(PayloadDecodeError::Damaged(_))
        ));
        assert!(matches!(
            decode(LZ4, vec![1, 0]),
            Err(PayloadDecodeError::Damaged(_))
        ));
        let mut truncated = encode(&[b'a'; 1000]).bytes.into_owned();
        truncated.truncate(6);
        assert!(decode(LZ4, truncated).is_err());
        assert!(matches!(
            decode("zstd", vec![]),
            Err(PayloadDecodeError::UnknownCodec(_))
        ));
    }
}
