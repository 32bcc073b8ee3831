//! Property tests of the frame layer and the codec: round trips through
//! arbitrary chunking, round trips of representative messages, and garbage
//! that must come out as errors, never as panics or large allocations.

use std::collections::BTreeMap;

use csp_netproto::codec::{self, CodecError, Payload, PayloadRef};
use csp_netproto::frame::{
    DEFAULT_MAX_FRAME_LEN, Frame, FrameDecoder, FrameError, FrameHeader, FrameRef, HEADER_LEN,
    Limits, decode_frame, encode_frame, split_frame,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Cuts `bytes` into chunks of the sizes in `sizes` (cycled), as a stream
/// read might.
fn chunked<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Pushes `chunks` into a decoder and takes every frame out, with the way the
/// stream ended.
fn decode_stream(limits: Limits, chunks: &[&[u8]]) -> (Vec<Frame>, Result<(), FrameError>) {
    let mut decoder = FrameDecoder::with_limits(limits);
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Err(e)),
            }
        }
    }
    let end = decoder.finish();
    (frames, end)
}

fn frames_strategy() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(
        (
            any::<u8>(),
            prop_oneof![
                3 => prop::collection::vec(any::<u8>(), 0..64),
                1 => prop::collection::vec(any::<u8>(), 0..5000),
            ],
        ),
        0..12,
    )
}

fn splits_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..20, 1usize..3000], 1..20)
}

proptest! {
    #[test]
    fn frames_survive_any_chunking(frames in frames_strategy(), splits in splits_strategy()) {
        let mut wire = Vec::new();
        for (kind, payload) in &frames {
            encode_frame(*kind, payload, &mut wire).unwrap();
        }
        let (got, end) = decode_stream(Limits::default(), &chunked(&wire, &splits));
        prop_assert_eq!(end, Ok(()));
        let got: Vec<(u8, Vec<u8>)> = got.into_iter().map(|f| (f.kind, f.payload)).collect();
        prop_assert_eq!(&got, &frames);

        // The one-shot decoder agrees.
        let mut rest = &wire[..];
        for (kind, payload) in &frames {
            let (frame, tail) = split_frame(rest, &Limits::default()).unwrap();
            prop_assert_eq!((frame.kind, frame.payload), (*kind, &payload[..]));
            rest = tail;
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn header_then_streamed_payload_equals_encode_frame(
        kind in any::<u8>(),
        payload in prop::collection::vec(any::<u8>(), 0..3000),
        splits in splits_strategy(),
    ) {
        let mut streamed = FrameHeader::new(kind, payload.len()).unwrap().to_bytes().to_vec();
        for piece in chunked(&payload, &splits) {
            streamed.extend_from_slice(piece);
        }
        let mut whole = Vec::new();
        encode_frame(kind, &payload, &mut whole).unwrap();
        prop_assert_eq!(&streamed, &whole);
        let frame = decode_frame(&streamed, &Limits::default()).unwrap();
        prop_assert_eq!((frame.kind, frame.payload), (kind, &payload[..]));
    }

    #[test]
    fn a_cut_stream_reports_truncation(
        frames in frames_strategy().prop_filter("not empty", |f| !f.is_empty()),
        cut in any::<prop::sample::Index>(),
        splits in splits_strategy(),
    ) {
        let mut wire = Vec::new();
        for (kind, payload) in &frames {
            encode_frame(*kind, payload, &mut wire).unwrap();
        }
        let cut = cut.index(wire.len()); // strictly inside the stream
        let (got, end) = decode_stream(Limits::default(), &chunked(&wire[..cut], &splits));
        // Whole frames before the cut come out; the cut one is reported.
        let mut boundary = 0;
        let mut whole = 0;
        for (_, payload) in &frames {
            if boundary + HEADER_LEN + payload.len() > cut {
                break;
            }
            boundary += HEADER_LEN + payload.len();
            whole += 1;
        }
        prop_assert_eq!(got.len(), whole);
        if cut == boundary {
            prop_assert_eq!(end, Ok(()));
        } else {
            let is_truncated = matches!(end, Err(FrameError::Truncated { received, .. }) if received == cut - boundary);
            prop_assert!(is_truncated, "{:?}", end);
        }
    }

    #[test]
    fn random_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..4000),
        splits in splits_strategy(),
    ) {
        codec::fuzzing::frame_decode(&data);
        let (frames, end) = decode_stream(Limits::default(), &chunked(&data, &splits));
        // Random bytes rarely start with the magic: expect an error, and
        // whatever frames came first to be real frames.
        prop_assert!(end.is_err() || data.is_empty() || !frames.is_empty());
        let _ = decode_frame(&data, &Limits::default());
    }

    #[test]
    fn random_payloads_behind_valid_headers_never_panic(
        kind in any::<u8>(),
        payload in prop::collection::vec(any::<u8>(), 0..600),
        extra in prop::collection::vec(any::<u8>(), 0..30),
    ) {
        let mut wire = Vec::new();
        encode_frame(kind, &payload, &mut wire).unwrap();
        wire.extend_from_slice(&extra);
        codec::fuzzing::frame_decode(&wire);
        let frame = decode_frame(&wire[..HEADER_LEN + payload.len()], &Limits::default()).unwrap();
        let _ = codec::decode::<Message>(frame);
        let _ = codec::decode::<Payload>(frame);
        let _ = codec::decode::<Vec<String>>(frame);
    }

    #[test]
    fn damaged_messages_are_errors_not_panics(
        msg in message_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = Vec::new();
        codec::encode(7, &msg, &mut wire).unwrap();
        let payload_len = wire.len() - HEADER_LEN;
        let mut damaged = wire[HEADER_LEN..].to_vec();
        for (at, byte) in &flips {
            if !damaged.is_empty() {
                let i = at.index(damaged.len());
                damaged[i] = *byte;
            }
        }
        let _ = codec::decode::<Message>(FrameRef::new(7, &damaged));
        // A message cut short never decodes as the same type.
        let short = &wire[HEADER_LEN..HEADER_LEN + cut.index(payload_len)];
        let r = codec::decode::<Message>(FrameRef::new(7, short));
        prop_assert!(r.is_err());
    }

    #[test]
    fn messages_round_trip(msgs in prop::collection::vec(message_strategy(), 1..5), splits in splits_strategy()) {
        let mut wire = Vec::new();
        for (i, msg) in msgs.iter().enumerate() {
            codec::encode(i as u8, msg, &mut wire).unwrap();
        }
        let (frames, end) = decode_stream(Limits::default(), &chunked(&wire, &splits));
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(frames.len(), msgs.len());
        for (i, (frame, msg)) in frames.iter().zip(&msgs).enumerate() {
            prop_assert_eq!(frame.kind, i as u8);
            let back: Message = codec::decode(frame).unwrap();
            prop_assert_eq!(&back, msg);
        }
    }

    #[test]
    fn payload_and_vec_u8_take_the_same_bytes_but_decode_alike(data in prop::collection::vec(any::<u8>(), 0..2000)) {
        let as_payload = postcard::to_stdvec(&Payload::from(data.clone())).unwrap();
        let as_vec = postcard::to_stdvec(&data).unwrap();
        prop_assert_eq!(&as_payload, &as_vec);
        let mut wire = Vec::new();
        codec::encode(0, &PayloadRef::new(&data), &mut wire).unwrap();
        let frame = decode_frame(&wire, &Limits::default()).unwrap();
        prop_assert_eq!(codec::decode::<Payload>(frame).unwrap().into_vec(), data.clone());
        prop_assert_eq!(codec::decode_borrowed::<PayloadRef<'_>>(frame).unwrap().0, &data[..]);
    }

    #[test]
    fn declared_lengths_over_the_limit_are_refused_at_once(
        limit in 0u32..100_000,
        over in 1u64..=u64::from(u32::MAX),
    ) {
        let declared = (u64::from(limit) + over).min(u64::from(u32::MAX));
        prop_assume!(declared > u64::from(limit));
        let header = FrameHeader { kind: 0, payload_len: declared as u32 }.to_bytes();
        let limits = Limits::default().with_max_frame_len(limit);
        let mut decoder = FrameDecoder::with_limits(limits);
        decoder.push(&header);
        decoder.push(&[0; 64]);
        prop_assert_eq!(
            decoder.next_frame(),
            Err(FrameError::FrameTooLong { len: declared, limit: u64::from(limit) })
        );
        prop_assert_eq!(decoder.partial_capacity(), 0);
        prop_assert_eq!(decoder.partial_len(), 0);
        let refused = matches!(split_frame(&header, &limits), Err(FrameError::FrameTooLong { .. }));
        prop_assert!(refused);
    }

    #[test]
    fn allowed_lengths_reserve_only_what_arrived(
        received in prop::collection::vec(1usize..5000, 1..10),
    ) {
        // A header declaring the maximum, followed by a trickle of bytes.
        let header = FrameHeader::new(0, DEFAULT_MAX_FRAME_LEN as usize).unwrap().to_bytes();
        let mut decoder = FrameDecoder::new();
        decoder.push(&header);
        prop_assert_eq!(decoder.partial_capacity(), 0);
        let mut total = 0;
        for n in received {
            decoder.push(&vec![0xEE; n]);
            total += n;
            prop_assert_eq!(decoder.partial_len(), HEADER_LEN + total);
            prop_assert!(decoder.partial_capacity() <= 2 * total);
        }
        let is_truncated = matches!(decoder.finish(), Err(FrameError::Truncated { .. }));
        prop_assert!(is_truncated);
    }
}

/// A representative protocol message: nested structs and enums, options,
/// sequences, maps, strings and byte payloads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Message {
    Ping,
    Offer(Offer),
    Deliver {
        channel: ChannelId,
        data: Payload,
        trailer: Option<Vec<u8>>,
    },
    Batch(Vec<Message2>),
    Text(String, Option<char>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ChannelId {
    node: u32,
    local: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Offer {
    id: u128,
    channel: ChannelId,
    epoch: i32,
    guards: Vec<(bool, Option<ChannelId>)>,
    labels: BTreeMap<String, f64>,
}

/// A second level of nesting (wire messages must not be recursive).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Message2 {
    Ack(u64),
    Data(Payload),
    Named { name: String, values: Vec<i64> },
}

fn channel_strategy() -> impl Strategy<Value = ChannelId> {
    (any::<u32>(), any::<u64>()).prop_map(|(node, local)| ChannelId { node, local })
}

fn payload_strategy() -> impl Strategy<Value = Payload> {
    prop::collection::vec(any::<u8>(), 0..300).prop_map(Payload::from)
}

fn message_strategy() -> impl Strategy<Value = Message> {
    let offer = (
        any::<u128>(),
        channel_strategy(),
        any::<i32>(),
        prop::collection::vec((any::<bool>(), prop::option::of(channel_strategy())), 0..4),
        // Finite floats only: NaN is not equal to itself.
        prop::collection::btree_map(".{0,8}", -1e300f64..1e300, 0..4),
    )
        .prop_map(|(id, channel, epoch, guards, labels)| Offer {
            id,
            channel,
            epoch,
            guards,
            labels,
        });
    let inner = prop_oneof![
        any::<u64>().prop_map(Message2::Ack),
        payload_strategy().prop_map(Message2::Data),
        (".{0,12}", prop::collection::vec(any::<i64>(), 0..5))
            .prop_map(|(name, values)| Message2::Named { name, values }),
    ];
    prop_oneof![
        Just(Message::Ping),
        offer.prop_map(Message::Offer),
        (
            channel_strategy(),
            payload_strategy(),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20))
        )
            .prop_map(|(channel, data, trailer)| Message::Deliver {
                channel,
                data,
                trailer
            }),
        prop::collection::vec(inner, 0..5).prop_map(Message::Batch),
        (".{0,20}", prop::option::of(any::<char>())).prop_map(|(s, c)| Message::Text(s, c)),
    ]
}

#[test]
fn sample_messages_round_trip() {
    for msg in codec::fuzzing::sample_messages() {
        let mut wire = Vec::new();
        codec::encode(codec::fuzzing::FUZZ_KIND, &msg, &mut wire).unwrap();
        let frame = decode_frame(&wire, &Limits::default()).unwrap();
        assert_eq!(
            codec::decode::<codec::fuzzing::FuzzMessage>(frame).unwrap(),
            msg
        );
    }
}

#[test]
fn the_limit_itself_is_allowed() {
    let limits = Limits::default().with_max_frame_len(100);
    let mut wire = Vec::new();
    encode_frame(1, &[0; 100], &mut wire).unwrap();
    assert!(decode_frame(&wire, &limits).is_ok());
    wire.clear();
    encode_frame(1, &[0; 101], &mut wire).unwrap();
    assert_eq!(
        decode_frame(&wire, &limits).unwrap_err(),
        FrameError::FrameTooLong {
            len: 101,
            limit: 100
        }
    );
    assert!(limits.check_frame_len(101).is_err());
}

#[test]
fn wrong_type_is_a_clear_error() {
    let mut wire = Vec::new();
    codec::encode(3, &Message::Text("hi".into(), None), &mut wire).unwrap();
    let frame = decode_frame(&wire, &Limits::default()).unwrap();
    let e = codec::decode::<ChannelId>(frame).unwrap_err();
    assert!(
        matches!(
            e,
            CodecError::Decode { kind: 3, .. } | CodecError::TrailingBytes { kind: 3, .. }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("kind 3"), "{e}");
}

#[test]
fn codec_errors_chain_to_their_cause() {
    use std::error::Error;
    let e = CodecError::from(FrameError::UnsupportedVersion {
        found: 2,
        supported: 1,
    });
    assert!(e.source().is_some());
    assert_eq!(
        e.to_string(),
        "the peer speaks version 2 of the csp-netproto protocol, this build speaks only version 1; \
         run the same build of the program on every node"
    );
}
