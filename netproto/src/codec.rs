//! Messages on frames: `postcard` over `serde`.
//!
//! A message is any `serde` type. [`encode`] serializes it with `postcard`
//! straight into the payload of a [`frame`](crate::frame) (no intermediate
//! buffer), and [`decode`] turns a frame's payload back into the message,
//! refusing payloads with bytes left over. The frame's *kind* byte says which
//! message type the payload holds; this layer carries it and leaves the
//! choice of kinds to the caller.
//!
//! Bytes that are data (a serialized user message, a chunk of a large one)
//! should be held in a [`Payload`] (or borrowed in a [`PayloadRef`]) rather
//! than a `Vec<u8>`: `serde` sees a `Vec<u8>` as a sequence of integers and
//! handles it one byte at a time, where a `Payload` is one block of bytes,
//! copied whole. Both take the same space on the wire (`postcard` writes a
//! `u8` as one byte), but the sequence is many times slower to encode and
//! decode (see `benches/codec.rs`).
//!
//! Why `postcard`: it is compact, maintained, and has no unsafe surprises for
//! untrusted input; `bincode` is unmaintained (RUSTSEC-2025-0141). See
//! `DESIGN.md` §6.
//!
//! # Example
//!
//! ```
//! use csp_netproto::codec::{self, Payload};
//! use csp_netproto::frame::{FrameDecoder, Limits, decode_frame};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Deliver {
//!     channel: u64,
//!     message: Payload,
//! }
//! const DELIVER: u8 = 4;
//!
//! let msg = Deliver { channel: 12, message: Payload::from(vec![0xAB; 1000]) };
//! let mut wire = Vec::new();
//! codec::encode(DELIVER, &msg, &mut wire)?;
//!
//! // One frame in a buffer: decode it in place...
//! let frame = decode_frame(&wire, &Limits::default())?;
//! assert_eq!(frame.kind, DELIVER);
//! assert_eq!(codec::decode::<Deliver>(frame)?, msg);
//!
//! // ...or frames from a stream, through a `FrameDecoder`.
//! let mut decoder = FrameDecoder::new();
//! decoder.push(&wire);
//! let frame = decoder.next_frame()?.expect("one whole frame");
//! assert_eq!(codec::decode::<Deliver>(&frame)?, msg);
//! # Ok::<(), codec::CodecError>(())
//! ```
//!
//! # Untrusted input
//!
//! Decoding never panics and never allocates in proportion to a length it
//! has not checked against the bytes actually present: `postcard` checks
//! every declared string or byte length against the remaining payload, and
//! `serde` caps the capacity it reserves ahead for sequences. The payload
//! itself is bounded by [`Limits`](crate::frame::Limits). Two things remain
//! the message type's business: a *recursive* type (an enum that contains
//! itself through a `Box`) can be nested deep enough by a hostile peer to
//! overflow the stack, since `postcard` has no depth limit; and a sequence
//! of zero-sized values (`Vec<()>`) can declare billions of elements that
//! take no bytes. Wire messages should have neither.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::frame::{FrameError, FrameHeader, FrameRef};

/// Why a message could not be encoded into a frame or decoded from one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The frame layer refused the bytes (or the encoded message).
    Frame(FrameError),
    /// The message could not be serialized.
    Encode {
        /// The kind of frame being written.
        kind: u8,
        /// What `postcard` reported.
        source: postcard::Error,
    },
    /// The payload is not a valid encoding of the expected message type.
    Decode {
        /// The kind of the frame.
        kind: u8,
        /// The payload length in bytes.
        payload_len: usize,
        /// What `postcard` reported.
        source: postcard::Error,
    },
    /// The message ended before the payload did.
    TrailingBytes {
        /// The kind of the frame.
        kind: u8,
        /// The payload length in bytes.
        payload_len: usize,
        /// How many payload bytes were left after the message.
        extra: usize,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Frame(e) => e.fmt(f),
            CodecError::Encode { kind, source } => write!(
                f,
                "could not encode a message of kind {kind}: {source}; its `Serialize` \
                 implementation failed, or asked for something postcard cannot do (such as a \
                 sequence of unknown length)"
            ),
            CodecError::Decode {
                kind,
                payload_len,
                source,
            } => write!(
                f,
                "could not decode the {payload_len}-byte payload of a kind {kind} frame as the \
                 expected message type: {source}; the sender encoded another type (the kind byte \
                 and the expected type disagree, or the nodes run different builds)"
            ),
            CodecError::TrailingBytes {
                kind,
                payload_len,
                extra,
            } => write!(
                f,
                "the message in a kind {kind} frame ended {extra} bytes before its \
                 {payload_len}-byte payload did; the sender encoded another type (the kind byte \
                 and the expected type disagree, or the nodes run different builds)"
            ),
        }
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CodecError::Frame(e) => Some(e),
            CodecError::Encode { source, .. } | CodecError::Decode { source, .. } => Some(source),
            CodecError::TrailingBytes { .. } => None,
        }
    }
}

impl From<FrameError> for CodecError {
    fn from(e: FrameError) -> Self {
        CodecError::Frame(e)
    }
}

/// A `postcard` output that appends to a caller's `Vec`, stopping once the
/// payload would not fit a frame header.
struct FrameFlavor<'a> {
    out: &'a mut Vec<u8>,
    /// The length `out` may grow to: payload start plus `u32::MAX`.
    max_len: usize,
}

impl postcard::ser_flavors::Flavor for FrameFlavor<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() > self.max_len - self.out.len() {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.out.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.out.len() >= self.max_len {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.out.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends one frame of `kind` whose payload is `msg`, serialized with
/// `postcard`, to `out`.
///
/// The message is serialized straight into `out`, after a header whose
/// length field is filled in once the length is known: the payload is never
/// copied. Nothing is appended if an error is returned.
///
/// ```
/// use csp_netproto::codec;
/// use csp_netproto::frame::{HEADER_LEN, Limits, decode_frame};
///
/// let mut out = Vec::new();
/// codec::encode(1, &("ping", 42u32), &mut out)?;
/// assert_eq!(out.len(), HEADER_LEN + 6); // "ping" takes 1 + 4 bytes, 42 takes 1
///
/// let frame = decode_frame(&out, &Limits::default())?;
/// let (word, n): (String, u32) = codec::decode(frame)?;
/// assert_eq!((word.as_str(), n), ("ping", 42));
/// # Ok::<(), codec::CodecError>(())
/// ```
///
/// # Errors
///
/// [`CodecError::Encode`] if serialization fails, and
/// [`CodecError::Frame`] with [`FrameError::FrameTooLong`] if the encoded
/// message is longer than a frame can declare (`u32::MAX` bytes). As with
/// [`encode_frame`](crate::frame::encode_frame), a payload longer than the
/// peer's [`Limits`](crate::frame::Limits) is not refused here.
pub fn encode<M: Serialize + ?Sized>(
    kind: u8,
    msg: &M,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = out.len();
    let placeholder = FrameHeader {
        kind,
        payload_len: 0,
    };
    out.extend_from_slice(&placeholder.to_bytes());
    let payload_start = out.len();
    let flavor = FrameFlavor {
        max_len: payload_start.saturating_add(u32::MAX as usize),
        out,
    };
    if let Err(source) = postcard::serialize_with_flavor(msg, flavor) {
        out.truncate(start);
        return Err(match source {
            postcard::Error::SerializeBufferFull => CodecError::Frame(FrameError::FrameTooLong {
                // Serialization stopped here; the whole message is longer.
                len: u64::from(u32::MAX) + 1,
                limit: u64::from(u32::MAX),
            }),
            source => CodecError::Encode { kind, source },
        });
    }
    let header = match FrameHeader::new(kind, out.len() - payload_start) {
        Ok(header) => header,
        Err(e) => {
            out.truncate(start);
            return Err(e.into());
        }
    };
    out[start..payload_start].copy_from_slice(&header.to_bytes());
    Ok(())
}

/// Decodes the payload of `frame` as a message of type `M`.
///
/// Accepts a [`FrameRef`] or a `&`[`Frame`](crate::frame::Frame). The whole
/// payload must be the message: bytes left over are an error, since they
/// mean the sender encoded some other type.
///
/// ```
/// use csp_netproto::codec::{self, CodecError};
/// use csp_netproto::frame::FrameRef;
///
/// let mut out = Vec::new();
/// codec::encode(2, &7u16, &mut out)?;
/// let payload = &out[csp_netproto::frame::HEADER_LEN..];
///
/// assert_eq!(codec::decode::<u16>(FrameRef::new(2, payload))?, 7);
/// // A u8 takes only the first byte of the payload: the rest is left over.
/// let mut two_bytes = Vec::new();
/// codec::encode(2, &300u16, &mut two_bytes)?;
/// assert!(matches!(
///     codec::decode::<u8>(FrameRef::new(2, &two_bytes[csp_netproto::frame::HEADER_LEN..])),
///     Err(CodecError::TrailingBytes { extra: 1, .. })
/// ));
/// # Ok::<(), CodecError>(())
/// ```
///
/// # Errors
///
/// [`CodecError::Decode`] if the payload is not a valid encoding of `M`, and
/// [`CodecError::TrailingBytes`] if it holds more than one.
pub fn decode<'a, M: DeserializeOwned>(frame: impl Into<FrameRef<'a>>) -> Result<M, CodecError> {
    decode_borrowed(frame.into())
}

/// Decodes the payload of `frame` as a message of type `M` that may borrow
/// from it, such as a message holding a [`PayloadRef`] or a `&str`: the
/// zero-copy form of [`decode`].
///
/// ```
/// use csp_netproto::codec::{self, PayloadRef};
/// use csp_netproto::frame::{Limits, decode_frame};
///
/// let mut out = Vec::new();
/// codec::encode(3, &(PayloadRef::new(b"big data"), "label"), &mut out)?;
///
/// let frame = decode_frame(&out, &Limits::default())?;
/// let (data, label): (PayloadRef<'_>, &str) = codec::decode_borrowed(frame)?;
/// assert_eq!((&*data, label), (&b"big data"[..], "label"));
/// # Ok::<(), codec::CodecError>(())
/// ```
///
/// # Errors
///
/// As [`decode`].
pub fn decode_borrowed<'de, M: Deserialize<'de>>(frame: FrameRef<'de>) -> Result<M, CodecError> {
    let payload_len = frame.payload.len();
    match postcard::take_from_bytes::<M>(frame.payload) {
        Ok((msg, [])) => Ok(msg),
        Ok((_, rest)) => Err(CodecError::TrailingBytes {
            kind: frame.kind,
            payload_len,
            extra: rest.len(),
        }),
        Err(source) => Err(CodecError::Decode {
            kind: frame.kind,
            payload_len,
            source,
        }),
    }
}

/// Owned bytes that serialize as one block of bytes.
///
/// `serde` treats a `Vec<u8>` as a sequence of integers, handled one at a
/// time; a `Payload` goes through `serialize_bytes`, which `postcard` (and
/// most formats) copy as a whole. Use it for any field that is data rather
/// than a list of numbers: a serialized user message, a chunk of a large one.
/// It dereferences to `Vec<u8>`, and converts to and from it for free.
///
/// ```
/// use csp_netproto::codec::Payload;
///
/// let mut p = Payload::from(vec![1, 2, 3]);
/// p.push(4); // a `Payload` is a `Vec<u8>` to use
/// assert_eq!(p.len(), 4);
/// assert_eq!(postcard::to_stdvec(&p).unwrap(), [4, 1, 2, 3, 4]); // length, then bytes
/// let v: Vec<u8> = p.into_vec();
/// assert_eq!(v, [1, 2, 3, 4]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    /// Makes a payload of `bytes`.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Payload(bytes)
    }

    /// Gives back the bytes.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// Borrows the bytes as a [`PayloadRef`].
    #[must_use]
    pub fn as_payload_ref(&self) -> PayloadRef<'_> {
        PayloadRef(&self.0)
    }
}

impl Deref for Payload {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Payload {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload(bytes)
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Self {
        Payload(bytes.to_vec())
    }
}

impl From<Payload> for Vec<u8> {
    fn from(payload: Payload) -> Self {
        payload.0
    }
}

impl fmt::Debug for Payload {
    /// Shows the length and the first bytes (a payload can be megabytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({:?})", self.as_payload_ref())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(PayloadVisitor)
    }
}

/// Builds a [`Payload`] from whatever form a format hands bytes over in.
struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Payload, E> {
        Ok(Payload(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Payload, E> {
        Ok(Payload(v.as_bytes().to_vec()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Payload, E> {
        Ok(Payload(v.into_bytes()))
    }

    /// For formats that write bytes as a list of numbers (JSON, say).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        // Reserve no more than 64 KiB ahead on the word of the input.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Ok(Payload(bytes))
    }
}

/// Borrowed bytes that serialize as one block of bytes: the borrowed form of
/// [`Payload`], with the same encoding.
///
/// Encode from a slice without copying it into a `Vec` first, or decode
/// without copying out of the frame (with [`decode_borrowed`]).
///
/// ```
/// use csp_netproto::codec::{Payload, PayloadRef};
///
/// let data = [9u8; 3];
/// let borrowed = postcard::to_stdvec(&PayloadRef::new(&data)).unwrap();
/// let owned = postcard::to_stdvec(&Payload::from(data.to_vec())).unwrap();
/// assert_eq!(borrowed, owned);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PayloadRef<'a>(pub &'a [u8]);

impl<'a> PayloadRef<'a> {
    /// Makes a payload that borrows `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        PayloadRef(bytes)
    }

    /// Copies the bytes into an owned [`Payload`].
    #[must_use]
    pub fn to_payload(&self) -> Payload {
        Payload(self.0.to_vec())
    }
}

impl Deref for PayloadRef<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0
    }
}

impl AsRef<[u8]> for PayloadRef<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl<'a> From<&'a [u8]> for PayloadRef<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        PayloadRef(bytes)
    }
}

impl fmt::Debug for PayloadRef<'_> {
    /// Shows the length and the first bytes (a payload can be megabytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        write!(f, "{} bytes [", self.0.len())?;
        for (i, b) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > SHOWN {
            f.write_str(" …")?;
        }
        f.write_str("]")
    }
}

impl Serialize for PayloadRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for PayloadRef<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(PayloadRefVisitor)
    }
}

/// Builds a [`PayloadRef`]; only formats that can lend their input can.
struct PayloadRefVisitor;

impl<'de> Visitor<'de> for PayloadRefVisitor {
    type Value = PayloadRef<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string borrowed from the input (decode into `Payload` instead)")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<PayloadRef<'de>, E> {
        Ok(PayloadRef(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<PayloadRef<'de>, E> {
        Ok(PayloadRef(v.as_bytes()))
    }
}

/// The code shared by the fuzz target (`netproto/fuzz`) and the test that
/// replays its saved inputs (`netproto/tests/fuzz_corpus.rs`). Not part of
/// the API.
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::{Payload, PayloadRef, decode, decode_borrowed, encode};
    use crate::frame::{
        Frame, FrameDecoder, FrameError, FrameRef, HEADER_LEN, Limits, decode_frame, split_frame,
    };

    /// The frame limit used while fuzzing: small, so that "too long" is
    /// reachable.
    pub const MAX_FRAME_LEN: u32 = 4096;

    /// The frame kind seed inputs use for [`FuzzMessage`]. Every kind is
    /// tried as a [`FuzzMessage`] anyway.
    pub const FUZZ_KIND: u8 = 1;

    /// A message type with a bit of everything serde and postcard handle:
    /// enum variants, nested structs, options, sequences, maps, strings,
    /// chars, bools, signed and wide integers, and byte payloads.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum FuzzMessage {
        /// A unit variant.
        Empty,
        /// A struct variant.
        Hello {
            /// A plain integer.
            node: u64,
            /// A string.
            name: String,
            /// A sequence of strings.
            tags: Vec<String>,
        },
        /// Bytes with a header.
        Data {
            /// A small integer.
            channel: u32,
            /// A signed integer (zigzag-encoded).
            seq: i64,
            /// Bytes, as one block.
            payload: Payload,
            /// An optional string.
            note: Option<String>,
        },
        /// A sequence of structs.
        Batch(Vec<Item>),
        /// A tuple variant with a nested option.
        Pair(i16, Option<Item>),
    }

    /// A nested struct of [`FuzzMessage`].
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Item {
        /// A wide integer.
        pub id: u128,
        /// A bool and a char.
        pub flags: (bool, char),
        /// Options in a sequence.
        pub parts: Vec<Option<u32>>,
        /// A map.
        pub attrs: BTreeMap<String, i32>,
    }

    /// Representative [`FuzzMessage`]s, for seed inputs and tests.
    #[must_use]
    pub fn sample_messages() -> Vec<FuzzMessage> {
        let item = Item {
            id: u128::MAX - 7,
            flags: (true, 'λ'),
            parts: vec![Some(1), None, Some(u32::MAX)],
            attrs: BTreeMap::from([("a".to_string(), -1), ("bee".to_string(), i32::MAX)]),
        };
        vec![
            FuzzMessage::Empty,
            FuzzMessage::Hello {
                node: 7,
                name: "node-7.cluster".to_string(),
                tags: vec!["gpu".to_string(), String::new(), "ünïcode".to_string()],
            },
            FuzzMessage::Data {
                channel: 3,
                seq: -42,
                payload: Payload((0..=255).collect()),
                note: Some("chunk 1/1".to_string()),
            },
            FuzzMessage::Data {
                channel: u32::MAX,
                seq: i64::MIN,
                payload: Payload::default(),
                note: None,
            },
            FuzzMessage::Batch(vec![item.clone(), item.clone()]),
            FuzzMessage::Pair(-1, Some(item)),
            FuzzMessage::Pair(i16::MAX, None),
        ]
    }

    /// Feeds `data` to the frame layer as a byte stream, in several ways,
    /// and decodes every frame found as a [`FuzzMessage`].
    ///
    /// # Panics
    ///
    /// Only if the library breaks one of its own promises, which is what the
    /// fuzzer looks for: the decoders disagree about the same bytes, the
    /// decoder holds more memory than a header declared, or a decoded
    /// message does not survive re-encoding.
    pub fn frame_decode(data: &[u8]) {
        let limits = Limits::default().with_max_frame_len(MAX_FRAME_LEN);

        let reference = split_all(data, &limits);

        let whole = run_decoder(&limits, std::iter::once(data));
        same_outcome(&reference, &whole, "pushed whole");

        // Chunk sizes taken from the data itself, so the fuzzer steers them.
        let mut sizes = data.iter().map(|&b| usize::from(b % 31) + 1).cycle();
        let mut rest = data;
        let chunks = std::iter::from_fn(|| {
            if rest.is_empty() {
                return None;
            }
            let n = sizes.next().unwrap_or(1).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            Some(chunk)
        });
        let chunked = run_decoder(&limits, chunks);
        same_outcome(&reference, &chunked, "pushed in chunks");

        if data.len() <= 4096 {
            let bytewise = run_decoder(&limits, data.chunks(1));
            same_outcome(&reference, &bytewise, "pushed byte by byte");
        }

        if let Ok(frame) = decode_frame(data, &limits) {
            assert_eq!(Some(&frame.to_frame()), reference.0.first());
        }

        for frame in &reference.0 {
            check_message(frame.as_frame_ref());
        }
    }

    /// What the frame layer made of a stream: its frames, then how it ended.
    type Outcome = (Vec<Frame>, Result<(), FrameError>);

    /// Takes `data` apart with [`split_frame`].
    fn split_all(data: &[u8], limits: &Limits) -> Outcome {
        let mut frames = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            match split_frame(rest, limits) {
                Ok((frame, tail)) => {
                    frames.push(frame.to_frame());
                    rest = tail;
                }
                Err(e) => return (frames, Err(e)),
            }
        }
        (frames, Ok(()))
    }

    /// Takes a stream apart with a [`FrameDecoder`], fed `chunks`.
    fn run_decoder<'a>(limits: &Limits, chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
        let mut decoder = FrameDecoder::with_limits(*limits);
        let mut frames = Vec::new();
        let mut end = Ok(());
        for chunk in chunks {
            decoder.push(chunk);
            // Memory for a payload is at most twice what arrived of it (and
            // so at most the limit: it never exceeds the declared length).
            let received = decoder.partial_len().saturating_sub(HEADER_LEN);
            assert!(
                decoder.partial_capacity() <= (2 * received).min(limits.max_frame_len as usize),
                "the decoder reserved {} bytes for {received} payload bytes (limit {})",
                decoder.partial_capacity(),
                limits.max_frame_len
            );
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(e) => {
                        end = Err(e);
                        break;
                    }
                }
            }
            if end.is_err() {
                break;
            }
        }
        if end.is_ok() {
            end = decoder.finish();
        }
        (frames, end)
    }

    /// Checks that two ways of decoding one stream agree.
    fn same_outcome(reference: &Outcome, other: &Outcome, how: &str) {
        assert_eq!(reference.0, other.0, "frames differ when {how}");
        match (&reference.1, &other.1) {
            // A streaming decoder reports a wrong magic byte as soon as it
            // arrives, so it may have seen fewer of the four bytes.
            (Err(FrameError::BadMagic { found: a }), Err(FrameError::BadMagic { found: b })) => {
                assert!(
                    a.starts_with(b) || b.starts_with(a),
                    "magic bytes differ when {how}: {a:?} vs {b:?}"
                );
            }
            (a, b) => assert_eq!(a, b, "end of stream differs when {how}"),
        }
    }

    /// Decodes a frame as a message, and checks that the message survives
    /// encoding again.
    fn check_message(frame: FrameRef<'_>) {
        let _ = decode::<Payload>(frame);
        let _ = decode_borrowed::<(PayloadRef<'_>, &str)>(frame);
        let Ok(msg) = decode::<FuzzMessage>(frame) else {
            return;
        };
        let mut again = Vec::new();
        if let Err(e) = encode(frame.kind, &msg, &mut again) {
            panic!("a decoded message could not be encoded again: {e}");
        }
        let back = decode_frame(&again, &Limits::default())
            .map_err(super::CodecError::from)
            .and_then(decode::<FuzzMessage>);
        assert_eq!(
            back.as_ref(),
            Ok(&msg),
            "a message changed through encoding"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Limits, decode_frame};

    /// Counts how postcard hands bytes to its output.
    #[derive(Default)]
    struct Counting {
        pushes: usize,
        extends: usize,
    }

    impl postcard::ser_flavors::Flavor for &mut Counting {
        type Output = ();
        fn try_extend(&mut self, _: &[u8]) -> postcard::Result<()> {
            self.extends += 1;
            Ok(())
        }
        fn try_push(&mut self, _: u8) -> postcard::Result<()> {
            self.pushes += 1;
            Ok(())
        }
        fn finalize(self) -> postcard::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn payload_is_bytes_not_a_sequence() {
        // A `Payload` goes out as two blocks: its length, then its bytes...
        let mut bytes = Counting::default();
        postcard::serialize_with_flavor(&Payload::from(vec![7; 100]), &mut bytes).unwrap();
        assert_eq!((bytes.pushes, bytes.extends), (0, 2));
        // ...where a `Vec<u8>` goes out one integer at a time.
        let mut seq = Counting::default();
        postcard::serialize_with_flavor(&vec![7u8; 100], &mut seq).unwrap();
        assert_eq!((seq.pushes, seq.extends), (100, 1));
    }

    #[test]
    fn encode_leaves_nothing_behind_on_error() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut out = vec![1, 2, 3];
        let e = encode(5, &Fails, &mut out).unwrap_err();
        assert!(matches!(e, CodecError::Encode { kind: 5, .. }), "{e}");
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn encode_appends_after_existing_bytes() {
        let mut out = Vec::new();
        encode(1, "first", &mut out).unwrap();
        let first_len = out.len();
        encode(2, &Payload::from(vec![7; 300]), &mut out).unwrap();
        let (a, rest) = crate::frame::split_frame(&out, &Limits::default()).unwrap();
        assert_eq!(out.len() - rest.len(), first_len);
        assert_eq!(decode::<String>(a).unwrap(), "first");
        let b = decode_frame(rest, &Limits::default()).unwrap();
        assert_eq!(decode::<Payload>(b).unwrap().0, vec![7; 300]);
    }

    #[test]
    fn decode_errors_name_kind_and_length() {
        let e = decode::<String>(FrameRef::new(9, &[5, b'a'])).unwrap_err();
        assert!(matches!(
            e,
            CodecError::Decode {
                kind: 9,
                payload_len: 2,
                source: postcard::Error::DeserializeUnexpectedEnd
            }
        ));
        let msg = e.to_string();
        assert!(msg.contains("kind 9") && msg.contains("2-byte"), "{msg}");
    }

    #[test]
    fn payload_ref_and_payload_agree() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        encode(0, &PayloadRef::new(b"xyz"), &mut a).unwrap();
        encode(0, &Payload::from(&b"xyz"[..]), &mut b).unwrap();
        assert_eq!(a, b);
        let f = decode_frame(&a, &Limits::default()).unwrap();
        assert_eq!(decode_borrowed::<PayloadRef<'_>>(f).unwrap().0, b"xyz");
        assert_eq!(decode::<Payload>(f).unwrap().0, b"xyz");
    }

    #[test]
    fn samples_round_trip() {
        for msg in fuzzing::sample_messages() {
            let mut out = Vec::new();
            encode(fuzzing::FUZZ_KIND, &msg, &mut out).unwrap();
            let f = decode_frame(&out, &Limits::default()).unwrap();
            assert_eq!(decode::<fuzzing::FuzzMessage>(f).unwrap(), msg);
            fuzzing::frame_decode(&out);
        }
    }
}
