//! [`Payload`]: the checkpointed payloads, cheap to clone, `null` shared.

use std::fmt;
use std::sync::{Arc, LazyLock};

use durable_yield_codecs::{Codec, CodecError, PayloadContext, with_payload};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A checkpointed payload: an opaque string to the service, cheap to clone.
///
/// `null` (the JSON of `()`, `None` and a unit result: one in every step of
/// many workflows) is one shared allocation, not one per payload.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Payload(Arc<str>);

impl Payload {
    /// A payload holding `text`.
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        Payload(text.into())
    }
    /// The payload text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the payload is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `value` encoded with `codec` for the record `cx` names: the wire
    /// payload text in one shared allocation (a JSON one is written into a
    /// buffer the thread reuses, see [`with_payload`]).
    pub(crate) fn encode<C: Codec + ?Sized, T: Serialize + ?Sized>(
        codec: &C,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Self, CodecError> {
        with_payload(codec, value, cx, |text| Payload::from(text))
    }

    /// The JSON `null`, shared.
    fn null() -> Self {
        static NULL: LazyLock<Payload> = LazyLock::new(|| Payload(Arc::from("null")));
        NULL.clone()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        if s == "null" {
            return Payload::null();
        }
        Payload(s.into())
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        if s == "null" {
            return Payload::null();
        }
        Payload(s.into())
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Payload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Payload, E> {
                Ok(Payload::from(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Payload, E> {
                Ok(Payload::from(v))
            }
            // As `String` does: UTF-8 bytes are a string too.
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Payload, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => Ok(Payload::from(s)),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
                match String::from_utf8(v) {
                    Ok(s) => Ok(Payload::from(s)),
                    Err(e) => Err(E::invalid_value(de::Unexpected::Bytes(e.as_bytes()), &self)),
                }
            }
        }
        d.deserialize_string(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_payloads_share_one_allocation_and_read_as_any_other() {
        let a = Payload::from(String::from("null"));
        let b = Payload::from("null");
        let c: Payload = serde_json::from_str("\"null\"").unwrap();
        let d: Payload = serde_json::from_reader("\"null\"".as_bytes()).unwrap();
        for p in [&b, &c, &d] {
            assert!(Arc::ptr_eq(&a.0, &p.0));
            assert_eq!(p, &Payload::new("null"));
        }
        assert_eq!(a.as_str(), "null");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"null\"");
        let other: Payload = serde_json::from_str("\"nul\\u006c!\"").unwrap();
        assert_eq!(other.as_str(), "null!");
        assert!(!Arc::ptr_eq(&a.0, &Payload::from("{}").0));
        assert!(serde_json::from_str::<Payload>("3").is_err());
        // Formats that hand strings over as bytes read the same.
        let bytes = serde::de::value::BytesDeserializer::<serde::de::value::Error>::new(b"null");
        assert!(Arc::ptr_eq(&a.0, &Payload::deserialize(bytes).unwrap().0));
        let bytes = serde::de::value::BytesDeserializer::<serde::de::value::Error>::new(b"\xff");
        assert!(Payload::deserialize(bytes).is_err());
    }
}
