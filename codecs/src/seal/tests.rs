use super::*;
use crate::{Json, from_payload, to_payload};

const ARN: &str = "arn:aws:lambda:us-east-1:1:function:f:1/durable-execution/a/1";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Card {
    holder: String,
    number: Sealed<String>,
    cvv: Option<Sealed<u16>>,
}

fn card() -> Card {
    Card {
        holder: "Ada".into(),
        number: Sealed::new("4111 1111 1111 1111".into()),
        cvv: Some(Sealed::new(123)),
    }
}

#[test]
fn only_sealing_codecs_bind_the_context() {
    let keys = || StaticKeyring::new("k1", [1; 32]);
    assert!(!Json.binds_context());
    assert!(Encrypted::new(Json, keys()).binds_context());
    assert!(SealedFields::new(Json, keys()).binds_context());
    #[cfg(feature = "compression")]
    {
        assert!(!crate::compress::Compressed::new(Json).binds_context());
        let sealed = crate::compress::Compressed::new(Encrypted::new(Json, keys()));
        assert!(sealed.binds_context());
    }
}

#[test]
fn envelope_names_its_key_and_rejects_truncation() {
    let keys = StaticKeyring::new("k1", [1; 32]);
    let sealed = seal(&keys, Purpose::Field, b"cx", b"hello").unwrap();
    assert_eq!(parse_header(&sealed).unwrap().0, b"k1");
    assert_eq!(sealed.len(), 3 + 2 + NONCE_LEN + 5 + TAG_LEN);
    for n in 0..sealed.len() {
        assert!(open(&keys, Purpose::Field, b"cx", &sealed[..n]).is_err());
    }
    assert_eq!(
        open(&keys, Purpose::Field, b"cx", &sealed).unwrap(),
        b"hello"
    );
    // Two seals of the same text differ (fresh nonce).
    assert_ne!(
        sealed,
        seal(&keys, Purpose::Field, b"cx", b"hello").unwrap()
    );
}

#[test]
fn sealed_outside_a_sealing_codec_is_refused() {
    let cx = PayloadContext::new(ARN, "op");
    let err = to_payload(&Json, &card(), &cx).unwrap_err();
    assert!(err.to_string().contains("outside a sealing codec"), "{err}");
    assert!(format!("{:?}", card()).contains("<redacted>"));
    assert!(!format!("{:?}", card()).contains("4111"));
}

#[test]
fn fields_round_trip_and_name_the_key_when_it_is_gone() {
    let keys = StaticKeyring::new("k1", [1; 32]);
    let cx = PayloadContext::new(ARN, "op");
    let codec = SealedFields::new(Json, keys);
    let payload = to_payload(&codec, &card(), &cx).unwrap();
    assert!(
        payload.starts_with(r#"{"holder":"Ada","number":"sealed:"#),
        "{payload}"
    );
    assert_eq!(
        from_payload::<_, Card>(&codec, &payload, &cx).unwrap(),
        card()
    );
    assert_eq!(referenced_key_ids(&payload), vec![b"k1".to_vec()]);
    let other = SealedFields::new(Json, StaticKeyring::new("k2", [2; 32]));
    match from_payload::<_, Card>(&other, &payload, &cx).unwrap_err() {
        CodecError::Open {
            key_id,
            cause,
            operation,
            ..
        } => {
            assert_eq!(key_id.as_deref(), Some("k1"));
            assert_eq!(cause, SealError::UnknownKey);
            assert_eq!(operation, "op");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn keys_never_show_their_bytes() {
    let key = StaticKeyring::new("k1", [0xab; 32]).current().unwrap();
    let shown = format!("{key:?}");
    assert_eq!(shown, r#"Key { id: "k1", secret: "<redacted>" }"#);
}

#[test]
fn printable_ids() {
    assert_eq!(printable_key_id(b"k-2026"), "k-2026");
    assert_eq!(printable_key_id(&[0, 1, 2]), "0x000102");
    assert_eq!(printable_key_id(&[0xab; 20]), "0xabababababababab…");
}

#[test]
fn keyring_text_errors_never_show_keys() {
    for bad in [
        "",
        "k1",
        "k1:notbase64!",
        "k1:AAAA",
        "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    ] {
        let err = StaticKeyring::parse(bad).unwrap_err().to_string();
        assert!(!err.contains("AQEB"), "{err}");
    }
    let keys = StaticKeyring::parse("a:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap();
    assert_eq!(
        format!("{keys:?}"),
        r#"StaticKeyring { current: "a", keys: ["a"] }"#
    );
}
