//! OpenIGTLink codec: byte-exact vectors (verified against pyigtl 0.3.4, research note 3.5),
//! every modelled type round-tripped, and bad input rejected with the reason named.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use navigation::igtl::{
    Body, DataType, Decoder, DeviceName, FixedName, HeaderVersion, IgtlError, Message, MetaEntry, PointElement,
    Position, Status, StatusCode, StreamParams, Text, Timestamp, TrackingElement, TrackingKind, Transform,
};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn name(s: &str) -> DeviceName {
    DeviceName::new(s).unwrap()
}

/// Decodes all of `bytes` fed in one piece; panics on a fatal error.
fn decode_all(bytes: &[u8]) -> Vec<Result<Message, navigation::igtl::MessageError>> {
    let mut d = Decoder::default();
    d.feed(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        out.push(m);
    }
    out
}

const IDENTITY_BODY: &str =
    "3f800000 00000000 00000000 00000000 3f800000 00000000 00000000 00000000 3f800000 00000000 00000000 00000000";

#[test]
fn transform_v1_is_byte_exact() {
    let expected = hex(&format!(
        "0001 5452414e53464f524d000000 546f6f6c00000000000000000000000000000000 \
         0000000000000000 0000000000000030 b5a225f8f462b3d7 {IDENTITY_BODY}"
    ));
    let m = Message::new(name("Tool"), Body::Transform(Transform::IDENTITY));
    assert_eq!(m.encode().unwrap(), expected);
    let back = decode_all(&expected);
    assert_eq!(back, vec![Ok(m)]);
}

#[test]
fn transform_v2_with_metadata_is_byte_exact() {
    let m = Message {
        version: HeaderVersion::V2,
        message_id: 7,
        metadata: vec![MetaEntry { key: "k".into(), encoding: 3, value: "v".into() }],
        ..Message::new(name("Tool"), Body::Transform(Transform::IDENTITY))
    };
    let bytes = m.encode().unwrap();
    let body = hex(&format!("000c 000a 00000002 00000007 {IDENTITY_BODY} 0001 0001 0003 00000001 6b 76"));
    assert_eq!(&bytes[42..50], &72u64.to_be_bytes());
    assert_eq!(&bytes[50..58], &0xbb49_dca0_d65d_5678u64.to_be_bytes());
    assert_eq!(&bytes[58..], &body[..]);
    assert_eq!(decode_all(&bytes), vec![Ok(m.clone())]);
    assert_eq!(m.meta("k"), Some("v"));
}

#[test]
fn string_with_a_time_stamp_is_byte_exact() {
    let m =
        Message { timestamp: Timestamp::from_secs_f64(1.5), ..Message::new(name("S"), Body::Text(Text::new("hi"))) };
    let bytes = m.encode().unwrap();
    assert_eq!(&bytes[34..42], &hex("00000001 80000000")[..]);
    assert_eq!(&bytes[42..50], &6u64.to_be_bytes());
    assert_eq!(&bytes[50..58], &0xbedc_6b7e_4f0a_12d0u64.to_be_bytes());
    assert_eq!(&bytes[58..], &hex("0003 0002 6869")[..]);
    assert_eq!(decode_all(&bytes), vec![Ok(m)]);
}

/// Every modelled type survives encode -> decode, in both header versions.
#[test]
fn every_type_round_trips() {
    let bodies = vec![
        Body::Transform(Transform([0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 10.5, -3.25, 100.0])),
        Body::Position(Position { position_mm: [1.0, 2.0, 3.0], quaternion_xyzw: Some([0.0, 0.0, 0.6, 0.8]) }),
        Body::Position(Position { position_mm: [1.0, 2.0, 3.0], quaternion_xyzw: None }),
        Body::TrackingData(vec![
            TrackingElement {
                name: FixedName::new("Guidewire").unwrap(),
                kind: TrackingKind::Instrument6D,
                transform: Transform::IDENTITY,
            },
            TrackingElement {
                name: FixedName::new("LeadTipSensor0123456").unwrap(),
                kind: TrackingKind::Instrument5D,
                transform: Transform::IDENTITY,
            },
        ]),
        Body::Status(Status {
            code: StatusCode::NotReady,
            subcode: -5,
            error_name: FixedName::new("WARMUP").unwrap(),
            message: "field generator warming up".into(),
        }),
        Body::Text(Text::new("ß ok")),
        Body::Points(vec![PointElement {
            name: FixedName::new("Fiducial-1").unwrap(),
            group: FixedName::new("Fiducial").unwrap(),
            rgba: [255, 0, 0, 255],
            position_mm: [1.5, -2.5, 30.0],
            diameter_mm: 2.0,
            owner: FixedName::new("Venogram").unwrap(),
        }]),
        Body::Get(DataType::Transform),
        Body::Get(DataType::TrackingData),
        Body::StartStream(
            DataType::TrackingData,
            Some(StreamParams { resolution_ms: 50, coordinate_name: FixedName::new("Patient").unwrap() }),
        ),
        Body::StopStream(DataType::TrackingData),
        Body::Ready(DataType::TrackingData, Some(0)),
        Body::Other { type_name: "NDARRAY".into(), content: vec![1, 2, 3] },
    ];
    for version in [HeaderVersion::V1, HeaderVersion::V2] {
        for body in &bodies {
            let m = Message {
                version,
                message_id: 3,
                timestamp: Timestamp::from_secs_f64(1_700_000_000.25),
                ..Message::new(name("T"), body.clone())
            };
            let m = if version == HeaderVersion::V1 { Message { message_id: 0, ..m } } else { m };
            assert_eq!(decode_all(&m.encode().unwrap()), vec![Ok(m.clone())], "{version:?} {body:?}");
        }
    }
}

/// The reference library sends `GET_TRANS`; the spec's table says `GET_TRANSFOR`: both are
/// a transform query. A v2 header-only query carries the 12-byte extended header and the
/// 2-byte metadata count (body 14 bytes).
#[test]
fn both_spellings_of_the_transform_query_are_accepted() {
    let mut raw = Message::new(name("Tool"), Body::Get(DataType::Transform)).encode().unwrap();
    assert_eq!(&raw[2..14], b"GET_TRANS\0\0\0");
    assert_eq!(&raw[42..50], &0u64.to_be_bytes());
    assert_eq!(&raw[50..58], &0u64.to_be_bytes(), "an empty body's CRC is 0");
    raw[2..14].copy_from_slice(b"GET_TRANSFOR");
    assert_eq!(decode_all(&raw)[0].as_ref().unwrap().body, Body::Get(DataType::Transform));
    let v2 = Message { version: HeaderVersion::V2, ..Message::new(name("Tool"), Body::Get(DataType::Transform)) };
    assert_eq!(&v2.encode().unwrap()[42..50], &14u64.to_be_bytes());
}

/// POSITION's 24-byte form implies w; the 12-byte form carries no orientation. STATUS is
/// sent with the message's trailing NUL, as the reference library does.
#[test]
fn short_position_forms_and_the_status_terminator() {
    let mut content = Vec::new();
    for v in [1.0f32, 2.0, 3.0, 0.0, 0.6, 0.0] {
        content.extend_from_slice(&v.to_be_bytes());
    }
    let m = Body::read_content("POSITION", &content).unwrap();
    let Body::Position(p) = m else { panic!("{m:?}") };
    assert!((p.quaternion_xyzw.unwrap()[3] - 0.8).abs() < 1e-6);
    let m = Body::read_content("POSITION", &content[..12]).unwrap();
    assert_eq!(m, Body::Position(Position { position_mm: [1.0, 2.0, 3.0], quaternion_xyzw: None }));
    let err = Body::read_content("POSITION", &content[..20]).unwrap_err();
    assert!(err.to_string().contains("POSITION content of 20 bytes"), "{err}");

    let status = Message::new(
        name("Tracker"),
        Body::Status(Status {
            code: StatusCode::Ok,
            subcode: 0,
            error_name: FixedName::default(),
            message: "ok".into(),
        }),
    );
    let raw = status.encode().unwrap();
    assert_eq!(raw.len(), 58 + 30 + 2 + 1);
    assert_eq!(*raw.last().unwrap(), 0);
}

/// A message split at every possible byte boundary decodes the same.
#[test]
fn messages_decode_from_any_split() {
    let a = Message::new(name("A"), Body::Transform(Transform::IDENTITY)).encode().unwrap();
    let b = Message { version: HeaderVersion::V2, ..Message::new(name("B"), Body::Text(Text::new("xyz"))) }
        .encode()
        .unwrap();
    let stream: Vec<u8> = [a, b].concat();
    for cut in 0..stream.len() {
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for part in [&stream[..cut], &stream[cut..]] {
            d.feed(part);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m.unwrap().device_name.to_string());
            }
        }
        assert_eq!(got, ["A", "B"], "cut at {cut}");
        assert_eq!(d.buffered(), 0);
    }
}

/// A corrupted body is rejected naming the CRC, and the next message still decodes.
#[test]
fn a_crc_mismatch_rejects_that_message_only() {
    let mut a = Message::new(name("A"), Body::Transform(Transform::IDENTITY)).encode().unwrap();
    a[70] ^= 0x01;
    let b = Message::new(name("B"), Body::Text(Text::new("next"))).encode().unwrap();
    let out = decode_all(&[a, b].concat());
    assert_eq!(out.len(), 2);
    let err = out[0].as_ref().unwrap_err();
    assert!(matches!(err.error, IgtlError::CrcMismatch { .. }), "{err}");
    assert!(err.to_string().contains("TRANSFORM message from device \"A\" rejected: CRC-64 mismatch"), "{err}");
    assert_eq!(out[1].as_ref().unwrap().device_name.as_str(), "B");
    // With checking off (for peers that send no CRC) the message is taken.
    let mut a = Message::new(name("A"), Body::Transform(Transform::IDENTITY)).encode().unwrap();
    a[50..58].fill(0);
    let mut d = Decoder::new(1 << 20, false);
    d.feed(&a);
    assert!(d.next_message().unwrap().unwrap().is_ok());
}

/// A header claiming a 4 GB body is refused before anything is buffered, and the decoder
/// stays failed; so does a header version that is not OpenIGTLink's.
#[test]
fn a_huge_body_or_a_foreign_stream_is_fatal() {
    let mut raw = Message::new(name("A"), Body::Transform(Transform::IDENTITY)).encode().unwrap();
    raw[42..50].copy_from_slice(&(4u64 << 30).to_be_bytes());
    let mut d = Decoder::default();
    d.feed(&raw[..58]);
    let err = d.next_message().unwrap_err();
    assert!(err.to_string().contains("claims a 4294967296-byte body, over the 67108864-byte limit"), "{err}");
    assert_eq!(d.next_message().unwrap_err(), err);
    assert_eq!(d.buffered(), 0);
    assert_eq!(d.wanted(), 0);

    let mut d = Decoder::default();
    d.feed(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n................................");
    let err = d.next_message().unwrap_err();
    assert!(matches!(err, IgtlError::UnsupportedHeaderVersion(_)), "{err}");
}

/// A truncated message waits for more bytes; an unknown type is skipped by its size.
#[test]
fn truncated_waits_and_unknown_types_are_skipped() {
    let raw = Message::new(name("A"), Body::Transform(Transform::IDENTITY)).encode().unwrap();
    let mut d = Decoder::default();
    d.feed(&raw[..80]);
    assert_eq!(d.next_message().unwrap(), None);
    assert_eq!(d.wanted(), raw.len() - 80);

    let mut unknown = raw.clone();
    unknown[2..14].copy_from_slice(b"VIDEOMETA\0\0\0");
    let out = decode_all(&[unknown, raw].concat());
    assert!(
        matches!(&out[0].as_ref().unwrap().body, Body::Other { type_name, content } if type_name == "VIDEOMETA" && content.len() == 48)
    );
    assert!(matches!(out[1].as_ref().unwrap().body, Body::Transform(_)));
}

/// Bad v2 framing and bad content are rejected, named, without losing the stream.
#[test]
fn malformed_content_is_named() {
    let good = Message { version: HeaderVersion::V2, ..Message::new(name("A"), Body::Text(Text::new("ok"))) };
    let mut raw = good.encode().unwrap();
    // Metadata sizes that exceed the body.
    raw[58 + 4..58 + 8].copy_from_slice(&1000u32.to_be_bytes());
    let crc = navigation::igtl::crc64::crc64(&raw[58..]);
    raw[50..58].copy_from_slice(&crc.to_be_bytes());
    let out = decode_all(&raw);
    assert!(out[0].as_ref().unwrap_err().to_string().contains("metadata sizes exceed the body"));

    let mut content = vec![0u8, 3, 0, 10];
    content.extend_from_slice(b"short");
    let err = Body::read_content("STRING", &content).unwrap_err();
    assert!(err.to_string().contains("STRING content of 9 bytes is malformed"), "{err}");
    assert!(Body::read_content("TDATA", &[0; 69]).is_err());
    assert!(Body::read_content("TRANSFORM", &[0; 47]).is_err());
    assert!(DeviceName::new("a name that is too long for 20").is_err());
    assert!(DeviceName::new("tab\tname").is_err());
}

proptest! {
    /// Garbage never panics the decoder, and it never buffers more than a header plus the
    /// largest body it accepts.
    #[test]
    fn garbage_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20)) {
        let mut d = Decoder::new(4096, true);
        for c in chunks {
            d.feed(&c);
            while let Ok(Some(_)) = d.next_message() {}
            prop_assert!(d.buffered() <= 58 + 4096 + 200);
        }
    }

    /// Transforms and positions survive the wire bit for bit.
    #[test]
    fn random_transforms_round_trip(v in proptest::array::uniform12(-1e4f32..1e4), ts in 0.0f64..4e9, id in any::<u32>()) {
        let m = Message { version: HeaderVersion::V2, message_id: id, timestamp: Timestamp::from_secs_f64(ts), ..Message::new(name("Tool"), Body::Transform(Transform(v))) };
        prop_assert_eq!(decode_all(&m.encode().unwrap()), vec![Ok(m)]);
    }
}
