//! The codecs built in: JSON (the default), bincode 2 and MessagePack,
//! each behind its cargo feature.

#[cfg(any(feature = "json", feature = "bincode", feature = "msgpack"))]
use serde::Serialize;
#[cfg(any(feature = "json", feature = "bincode", feature = "msgpack"))]
use serde::de::DeserializeOwned;

#[cfg(feature = "json")]
use crate::JSON_ID;
#[cfg(any(feature = "json", feature = "bincode", feature = "msgpack"))]
use crate::{Codec, CodecError, PayloadContext};

/// The JSON codec (serde_json): the default, readable in the AWS console,
/// tolerant of schema changes.
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    fn id(&self) -> &str {
        JSON_ID
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::encode(JSON_ID, e))
    }
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _: &PayloadContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        serde_json::to_writer(out, value).map_err(|e| CodecError::encode(JSON_ID, e))
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        _: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::decode(JSON_ID, e))
    }
    fn is_text(&self) -> bool {
        true
    }
    fn binds_context(&self) -> bool {
        false
    }
}

/// The bincode 2 codec (standard configuration, through bincode's serde
/// support): the smallest and fastest, for types you control.
///
/// bincode is not self-describing: it cannot decode `skip_serializing_if`
/// fields, untagged or internally tagged enums, `#[serde(flatten)]`,
/// `serde_json::Value`, nor bytes written before a field was added. Use it
/// only for plain structs and enums whose shape will not change while
/// executions that recorded them are alive.
#[cfg(feature = "bincode")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bincode;

/// Upper bound on what bincode may allocate while decoding one payload.
#[cfg(feature = "bincode")]
const BINCODE_LIMIT: usize = 8 * 1024 * 1024;

#[cfg(feature = "bincode")]
impl Codec for Bincode {
    fn id(&self) -> &str {
        "bincode"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let config = bincode::config::standard().with_limit::<BINCODE_LIMIT>();
        bincode::serde::encode_to_vec(value, config).map_err(|e| CodecError::encode("bincode", e))
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        _: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let config = bincode::config::standard().with_limit::<BINCODE_LIMIT>();
        let (value, used) = bincode::serde::decode_from_slice(bytes, config)
            .map_err(|e| CodecError::decode("bincode", e))?;
        if used != bytes.len() {
            return Err(CodecError::decode(
                "bincode",
                format_args!("{} trailing bytes after the value", bytes.len() - used),
            ));
        }
        Ok(value)
    }
    fn binds_context(&self) -> bool {
        false
    }
}

/// The MessagePack codec (rmp-serde, structs as maps with field names):
/// compact, binary, and as tolerant of schema changes as JSON.
#[cfg(feature = "msgpack")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgPack;

#[cfg(feature = "msgpack")]
impl Codec for MsgPack {
    fn id(&self) -> &str {
        "msgpack"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        rmp_serde::to_vec_named(value).map_err(|e| CodecError::encode("msgpack", e))
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        _: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        rmp_serde::from_slice(bytes).map_err(|e| CodecError::decode("msgpack", e))
    }
    fn binds_context(&self) -> bool {
        false
    }
}
