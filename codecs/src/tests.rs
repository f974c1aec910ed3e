use super::*;
#[cfg(any(feature = "json", feature = "bincode", feature = "msgpack"))]
use serde::Deserialize;

const CX: PayloadContext<'static> = PayloadContext::DETACHED;

#[cfg(any(feature = "json", feature = "bincode", feature = "msgpack"))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    amount_cents: i64,
    express: bool,
    items: Vec<u32>,
}

#[cfg(any(feature = "json", feature = "bincode", feature = "msgpack"))]
fn order() -> Order {
    Order {
        id: 42,
        customer: "ada".into(),
        amount_cents: -1999,
        express: true,
        items: vec![1, 2, 3],
    }
}

#[test]
fn contexts_bind_unambiguously() {
    let a = PayloadContext::new("ab", "c");
    let b = PayloadContext::new("a", "bc");
    assert_ne!(a.to_bytes(), b.to_bytes());
    assert_ne!(a.to_bytes(), a.with_kind(PayloadKind::ErrorData).to_bytes());
    assert_eq!(
        PayloadContext::with_operation_bytes("ab", b"c").to_bytes(),
        a.to_bytes()
    );
    assert_eq!(a.operation_id(), "c");
    assert!(CX.is_detached() && !a.is_detached());
    assert_eq!(
        PayloadContext::with_operation_bytes("x", &[0xff]).operation_id(),
        ""
    );
}

#[cfg(feature = "json")]
#[test]
fn plain_codecs_do_not_read_the_context() {
    assert!(!Json.binds_context());
    #[cfg(feature = "bincode")]
    assert!(!Bincode.binds_context());
    #[cfg(feature = "msgpack")]
    assert!(!MsgPack.binds_context());
    // A `&'static` codec answers for the codec it refers to.
    static JSON: Json = Json;
    let by_ref: &'static Json = &JSON;
    assert!(!<&'static Json as Codec>::binds_context(&by_ref));
}

#[cfg(feature = "json")]
#[test]
fn json_is_plain_text() {
    let p = to_payload(&Json, &order(), &CX).unwrap();
    assert!(p.starts_with("{\"id\":42"), "{p}");
    assert_eq!(from_payload::<_, Order>(&Json, &p, &CX).unwrap(), order());
}

#[cfg(feature = "bincode")]
#[test]
fn bincode_round_trip_is_tagged_base64() {
    let p = to_payload(&Bincode, &order(), &CX).unwrap();
    let (id, body) = split_tag(&p);
    assert_eq!(id, "bincode");
    assert!(BASE64.decode(body).is_ok());
    assert_eq!(
        from_payload::<_, Order>(&Bincode, &p, &CX).unwrap(),
        order()
    );
}

#[cfg(feature = "msgpack")]
#[test]
fn msgpack_round_trip_is_tagged_base64() {
    let p = to_payload(&MsgPack, &order(), &CX).unwrap();
    assert!(p.starts_with("msgpack:"));
    assert_eq!(
        from_payload::<_, Order>(&MsgPack, &p, &CX).unwrap(),
        order()
    );
}

#[cfg(all(feature = "msgpack", feature = "bincode"))]
#[test]
fn mismatch_names_both_codecs() {
    let p = to_payload(&MsgPack, &order(), &CX).unwrap();
    let err = from_payload::<_, Order>(&Bincode, &p, &CX).unwrap_err();
    assert_eq!(
        err,
        CodecError::Mismatch {
            recorded: "msgpack".into(),
            expected: "bincode".into()
        }
    );
    let json = to_payload(&Json, &order(), &CX).unwrap();
    let err = from_payload::<_, Order>(&MsgPack, &json, &CX).unwrap_err();
    assert!(err.to_string().contains("`json`") && err.to_string().contains("`msgpack`"));
}

#[cfg(all(feature = "bincode", feature = "msgpack"))]
#[test]
fn large_binary_payloads_round_trip() {
    let big: Vec<u64> = (0..5000).map(|i| i * 7919).collect();
    for p in [
        to_payload(&Bincode, &big, &CX).unwrap(),
        to_payload(&MsgPack, &big, &CX).unwrap(),
    ] {
        assert!(p.len() > 4 * SMALL_PAYLOAD);
    }
    let p = to_payload(&Bincode, &big, &CX).unwrap();
    assert_eq!(from_payload::<_, Vec<u64>>(&Bincode, &p, &CX).unwrap(), big);
    let p = to_payload(&MsgPack, &big, &CX).unwrap();
    assert_eq!(from_payload::<_, Vec<u64>>(&MsgPack, &p, &CX).unwrap(), big);
    // Exactly at the stack buffer's edge.
    let edge = vec![7u8; SMALL_PAYLOAD - 3];
    let p = to_payload(&Bincode, &edge, &CX).unwrap();
    assert_eq!(from_payload::<_, Vec<u8>>(&Bincode, &p, &CX).unwrap(), edge);
}

#[cfg(feature = "bincode")]
#[test]
fn bincode_rejects_trailing_bytes_and_garbage() {
    let mut bytes = Bincode.encode(&7u32, &CX).unwrap();
    bytes.push(0);
    assert!(matches!(
        Bincode.decode::<u32>(&bytes, &CX),
        Err(CodecError::Decode { .. })
    ));
    assert!(matches!(
        from_payload::<_, Order>(&Bincode, "bincode:!!!", &CX),
        Err(CodecError::Base64 { .. })
    ));
    assert!(from_payload::<_, Order>(&Bincode, "bincode://///w==", &CX).is_err());
}

#[test]
fn json_payloads_are_never_mistaken_for_tags() {
    for p in [
        "true",
        "null",
        "12",
        "-1.5e3",
        "\"a:b\"",
        "{\"a:b\":1}",
        " [1]",
    ] {
        assert_eq!(split_tag(p).0, JSON_ID, "{p}");
    }
    assert_eq!(split_tag("msgpack:"), ("msgpack", ""));
    // an id that is too long or malformed is not a tag
    assert_eq!(split_tag(&format!("{}:x", "a".repeat(40))).0, JSON_ID);
    assert_eq!(split_tag("Upper:x").0, JSON_ID);
}

/// A raw text codec: comma-separated numbers, as another tool writes them.
struct Csv;
impl Codec for Csv {
    fn id(&self) -> &str {
        "csv"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let v = serde_json::to_value(value).map_err(|e| CodecError::encode("csv", e))?;
        let items = v
            .as_array()
            .ok_or_else(|| CodecError::encode("csv", "not a list"))?;
        let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        Ok(parts.join(",").into_bytes())
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        _: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let text = std::str::from_utf8(bytes).map_err(|e| CodecError::decode("csv", e))?;
        serde_json::from_str(&format!("[{text}]")).map_err(|e| CodecError::decode("csv", e))
    }
    fn is_text(&self) -> bool {
        true
    }
    fn tagged(&self) -> bool {
        false
    }
}

#[test]
fn raw_codecs_write_and_read_untagged_payloads() {
    let p = to_payload(&Csv, &vec![1, 2, 3], &CX).unwrap();
    assert_eq!(p, "1,2,3");
    // A payload another tool wrote, with no tag.
    let v: Vec<u32> = from_payload(&Csv, "4,5", &CX).unwrap();
    assert_eq!(v, vec![4, 5]);
    // Mismatch detection is the codec's own: garbage fails to decode.
    assert!(from_payload::<_, Vec<u32>>(&Csv, "msgpack:gAA=", &CX).is_err());
}

#[test]
fn invalid_user_codec_id_is_rejected() {
    struct Bad;
    impl Codec for Bad {
        fn id(&self) -> &str {
            "Bad Codec"
        }
        fn encode<T: Serialize + ?Sized>(
            &self,
            _: &T,
            _: &PayloadContext<'_>,
        ) -> Result<Vec<u8>, CodecError> {
            Ok(vec![1])
        }
        fn decode<T: DeserializeOwned>(
            &self,
            _: &[u8],
            _: &PayloadContext<'_>,
        ) -> Result<T, CodecError> {
            Err(CodecError::decode("bad", "never"))
        }
    }
    assert_eq!(
        to_payload(&Bad, &1, &CX),
        Err(CodecError::InvalidId("Bad Codec".into()))
    );
}

/// Encodes another payload while it is itself being encoded.
#[cfg(feature = "json")]
struct Nested(u32);
#[cfg(feature = "json")]
impl Serialize for Nested {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let inner = with_payload(&Json, &[self.0, self.0 + 1], &CX, str::to_owned)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&inner)
    }
}

/// Calls itself JSON, but is not serde_json: `with_payload` must use its
/// own encoding.
#[cfg(feature = "json")]
struct NotSerdeJson;
#[cfg(feature = "json")]
impl Codec for NotSerdeJson {
    fn id(&self) -> &str {
        JSON_ID
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        _: &T,
        _: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        Ok(b"\"always this\"".to_vec())
    }
    fn decode<T: DeserializeOwned>(
        &self,
        _: &[u8],
        _: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        Err(CodecError::decode(JSON_ID, "never"))
    }
    fn is_text(&self) -> bool {
        true
    }
}

#[cfg(feature = "json")]
#[test]
fn with_payload_hands_over_what_to_payload_returns() {
    fn same<C: Codec, T: Serialize + ?Sized>(codec: &C, value: &T) {
        let made = with_payload(codec, value, &CX, str::to_owned);
        assert_eq!(made, to_payload(codec, value, &CX), "codec {}", codec.id());
    }
    same(&Json, &order());
    same(&Json, &());
    same(&Json, &"a \"quoted\" string, and é");
    same(&Json, &vec![order(); 200]);
    same(&Csv, &vec![1, 2, 3]);
    same(&NotSerdeJson, &order());
    #[cfg(feature = "bincode")]
    same(&Bincode, &order());
    #[cfg(feature = "msgpack")]
    same(&MsgPack, &order());

    // A value encoded while another is: each gets its own buffer.
    same(&Json, &[Nested(1), Nested(7)]);
    let outer = with_payload(&Json, &Nested(3), &CX, str::to_owned).unwrap();
    assert_eq!(outer, "\"[3,4]\"");

    // A failed encoding leaves nothing behind for the next one.
    let mut bad = std::collections::BTreeMap::new();
    bad.insert(vec![1u8], 2u8);
    let failed = with_payload(&Json, &bad, &CX, str::to_owned);
    assert!(failed.is_err());
    assert_eq!(failed, to_payload(&Json, &bad, &CX));
    same(&Json, &[5, 6]);
    assert_eq!(with_payload(&Json, &[5, 6], &CX, str::len), Ok(5));
}
