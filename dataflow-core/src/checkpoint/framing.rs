//! The frame of a metadata file (a checkpoint's or a savepoint's
//! `_metadata`): magic, format version, length, postcard body, CRC32C.

use crate::error::Error;
use serde::Serialize;

/// `value` framed as a metadata file: magic, format version, length,
/// postcard body, CRC32C of all that.
pub(crate) fn encode_framed<T: Serialize>(magic: &[u8; 8], version: u16, value: &T) -> Result<Vec<u8>, Error> {
    let body = postcard::to_stdvec(value).map_err(|e| Error::Internal(format!("encoding metadata: {e}")))?;
    let mut out = Vec::with_capacity(body.len() + 18);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32c::crc32c(&out).to_be_bytes());
    Ok(out)
}

/// The value of a metadata file [`encode_framed`] wrote, if it is whole and
/// of a format version up to `version` (a newer one says so).
pub(crate) fn decode_framed<T: serde::de::DeserializeOwned>(
    magic: &[u8; 8],
    version: u16,
    bytes: &[u8],
) -> Result<T, String> {
    let Some((framed, crc)) = bytes.split_last_chunk::<4>() else { return Err("truncated".into()) };
    if crc32c::crc32c(framed) != u32::from_be_bytes(*crc) {
        return Err("checksum mismatch (truncated or damaged)".into());
    }
    let Some((found, rest)) = framed.split_first_chunk::<8>() else { return Err("truncated".into()) };
    if found != magic {
        return Err(format!("not a {} file", String::from_utf8_lossy(magic).trim_end_matches('\0')));
    }
    let Some((v, rest)) = rest.split_first_chunk::<2>() else { return Err("truncated".into()) };
    let v = u16::from_be_bytes(*v);
    if v > version {
        return Err(format!("format version {v} is newer than this build reads ({version}): use a newer dataflow"));
    }
    // Older versions decode as the current one: every version so far is 1
    // (a later change of layout decodes older ones by their version here).
    let Some((len, body)) = rest.split_first_chunk::<4>() else { return Err("truncated".into()) };
    if u32::from_be_bytes(*len) as usize != body.len() {
        return Err("length mismatch".into());
    }
    postcard::from_bytes(body).map_err(|e| format!("cannot decode: {e}"))
}
