//! Frames: the unit of everything csp nodes send each other.
//!
//! A byte stream between two nodes (a QUIC stream) carries a sequence of
//! frames. Every frame is an 11-byte header followed by its payload:
//!
//! | offset | size | field | value |
//! | --- | --- | --- | --- |
//! | 0 | 4 | magic | [`MAGIC`], the bytes `CSPn` |
//! | 4 | 2 | version | [`PROTOCOL_VERSION`], little-endian `u16` |
//! | 6 | 1 | kind | what the payload is; opaque to this layer |
//! | 7 | 4 | length | payload length in bytes, little-endian `u32` |
//! | 11 | length | payload | the bytes themselves |
//!
//! The magic catches a peer that speaks another protocol (or a stream that
//! lost its place); the version lets two builds of csp refuse each other
//! clearly instead of misreading each other's messages. The *kind* byte is
//! passed through untouched: the message layer (see [`codec`](crate::codec))
//! decides which kinds exist and what their payloads contain.
//!
//! Sizes are untrusted input. A header that declares more than
//! [`Limits::max_frame_len`] payload bytes is refused as soon as the header
//! arrives, before a single payload byte is buffered; for an accepted frame,
//! the decoder reserves memory as the payload bytes arrive (at most twice
//! what arrived, for amortized growth), never on the word of the header, and
//! never more than the declared length.
//!
//! This module does no I/O. Reading bytes off a socket and writing them to
//! one is the caller's business; here bytes go in and frames come out
//! ([`FrameDecoder`], [`decode_frame`], [`split_frame`]), or frames go in and
//! bytes come out ([`encode_frame`], [`FrameHeader`]).
//!
//! # Example
//!
//! ```
//! use csp_netproto::frame::{FrameDecoder, encode_frame};
//!
//! // The sender appends frames to one buffer...
//! let mut wire = Vec::new();
//! encode_frame(1, b"hello", &mut wire)?;
//! encode_frame(2, b"", &mut wire)?;
//!
//! // ...and the receiver gets them back however the bytes were split up.
//! let mut decoder = FrameDecoder::new();
//! for chunk in wire.chunks(3) {
//!     decoder.push(chunk);
//! }
//! let first = decoder.next_frame()?.expect("a complete frame");
//! assert_eq!((first.kind, first.payload.as_slice()), (1, &b"hello"[..]));
//! let second = decoder.next_frame()?.expect("a complete frame");
//! assert_eq!((second.kind, second.payload.len()), (2, 0));
//! assert!(decoder.next_frame()?.is_none());
//! decoder.finish()?; // the stream ended cleanly, between two frames
//! # Ok::<(), csp_netproto::frame::FrameError>(())
//! ```

use std::collections::VecDeque;
use std::fmt;

// Payload lengths are `u32` on the wire and `usize` in memory: converting the
// first into the second with `as` must never truncate.
const _: () = assert!(usize::BITS >= 32);

/// The four bytes every frame starts with: `CSPn`.
pub const MAGIC: [u8; 4] = *b"CSPn";

/// The version of the wire protocol this build speaks and accepts.
///
/// It is written into every frame header. A decoder refuses a frame of any
/// other version with [`FrameError::UnsupportedVersion`], which names both
/// versions: the usual cause is two different builds of a program in one run.
pub const PROTOCOL_VERSION: u16 = 1;

/// The length of a frame header in bytes: magic (4), version (2), kind (1)
/// and payload length (4).
pub const HEADER_LEN: usize = 11;

/// The default for [`Limits::max_frame_len`]: 16 MiB.
///
/// Larger messages are not sent as one frame: the link layer cuts them into
/// chunks.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;

/// Size limits on frames received from a peer.
///
/// Every length read off the wire is checked against these limits before any
/// memory is reserved for it, so a peer cannot make a node allocate more than
/// the limits allow, whatever it sends.
///
/// ```
/// use csp_netproto::frame::{DEFAULT_MAX_FRAME_LEN, Limits};
///
/// assert_eq!(Limits::default().max_frame_len, DEFAULT_MAX_FRAME_LEN);
/// let small = Limits::default().with_max_frame_len(64 * 1024);
/// assert_eq!(small.max_frame_len, 65_536);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// The largest payload, in bytes, that one frame may declare (the header
    /// is not counted). A frame declaring more is refused with
    /// [`FrameError::FrameTooLong`]. Default: [`DEFAULT_MAX_FRAME_LEN`].
    pub max_frame_len: u32,
}

impl Limits {
    /// Returns these limits with `max_frame_len` set to `max_frame_len` bytes.
    ///
    /// ```
    /// use csp_netproto::frame::Limits;
    ///
    /// let limits = Limits::default().with_max_frame_len(1024);
    /// assert!(limits.check_frame_len(1024).is_ok());
    /// assert!(limits.check_frame_len(1025).is_err());
    /// ```
    #[must_use]
    pub const fn with_max_frame_len(mut self, max_frame_len: u32) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// Checks that a payload of `len` bytes fits these limits.
    ///
    /// Decoders call this on every declared length. A sender can call it
    /// before encoding, so that it never sends a frame its peer (configured
    /// with the same limits) will refuse.
    ///
    /// # Errors
    ///
    /// [`FrameError::FrameTooLong`] if `len` is above
    /// [`max_frame_len`](Self::max_frame_len).
    pub fn check_frame_len(&self, len: usize) -> Result<(), FrameError> {
        if len > self.max_frame_len as usize {
            return Err(FrameError::FrameTooLong {
                len: len as u64,
                limit: u64::from(self.max_frame_len),
            });
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// Why bytes could not be decoded into frames, or a frame could not be
/// encoded.
///
/// Every decoding error means the byte stream cannot be trusted any more:
/// the right reaction is to close the connection (and report the error),
/// not to skip ahead, because frame boundaries are only known from headers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The stream does not start with [`MAGIC`] where a frame header should
    /// start: the peer speaks another protocol, or the stream lost its place.
    BadMagic {
        /// The bytes found where the magic should be (up to four; fewer if
        /// the mismatch was seen before all four arrived).
        found: Vec<u8>,
    },
    /// The frame was written by a different version of the protocol.
    UnsupportedVersion {
        /// The version in the frame header.
        found: u16,
        /// The version this build speaks ([`PROTOCOL_VERSION`]).
        supported: u16,
    },
    /// The payload length is above the limit.
    FrameTooLong {
        /// The payload length declared by the header (or, when encoding, the
        /// length of the payload given).
        len: u64,
        /// The largest length allowed: [`Limits::max_frame_len`] when
        /// decoding, `u32::MAX` (what the header can hold) when encoding.
        limit: u64,
    },
    /// The input ended in the middle of a frame.
    Truncated {
        /// How many bytes the frame needs: the header length if the header
        /// itself is incomplete, otherwise header plus declared payload.
        expected: usize,
        /// How many bytes of the frame were there.
        received: usize,
    },
    /// [`decode_frame`] was given more bytes than one frame.
    TrailingBytes {
        /// The length of the frame found at the start, header included.
        frame_len: usize,
        /// How many bytes followed it.
        extra: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic { found } => {
                write!(
                    f,
                    "not a csp-netproto frame: expected the magic bytes {} (\"{}\") at the start \
                     of a frame, found {} (\"{}\"); the peer speaks another protocol or the \
                     stream lost its place, so close the connection",
                    Hex(&MAGIC),
                    MAGIC.escape_ascii(),
                    Hex(found),
                    found.escape_ascii(),
                )
            }
            FrameError::UnsupportedVersion { found, supported } => write!(
                f,
                "the peer speaks version {found} of the csp-netproto protocol, this build speaks \
                 only version {supported}; run the same build of the program on every node"
            ),
            FrameError::FrameTooLong { len, limit } => write!(
                f,
                "a frame of {len} payload bytes is over the limit of {limit} bytes; send large \
                 messages in chunks, or raise `Limits::max_frame_len` on both ends"
            ),
            FrameError::Truncated { expected, received } => write!(
                f,
                "the input ended inside a frame: got {received} of its {expected} bytes; the \
                 peer closed the stream mid-frame, or the buffer given was cut short"
            ),
            FrameError::TrailingBytes { frame_len, extra } => write!(
                f,
                "{extra} unexpected bytes follow a complete frame of {frame_len} bytes; to \
                 decode several frames from one buffer, use `split_frame` or `FrameDecoder`"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Formats bytes as space-separated hex pairs.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Checks the bytes seen so far where a magic should be.
fn check_magic_prefix(prefix: &[u8]) -> Result<(), FrameError> {
    let n = prefix.len().min(MAGIC.len());
    let seen = &prefix[..n];
    if seen == &MAGIC[..n] {
        Ok(())
    } else {
        Err(FrameError::BadMagic {
            found: seen.to_vec(),
        })
    }
}

/// A frame header: the kind of the payload and its length.
///
/// Build one with [`FrameHeader::new`] to send a payload in pieces: write the
/// header's [`to_bytes`](Self::to_bytes) first, then exactly
/// [`payload_len`](Self::payload_len) payload bytes, in as many writes as
/// suits the caller. The receiver cannot tell the difference from a frame
/// written with [`encode_frame`].
///
/// ```
/// use csp_netproto::frame::{FrameHeader, Limits, decode_frame, encode_frame};
///
/// let header = FrameHeader::new(9, 10)?;
/// let mut wire = header.to_bytes().to_vec();
/// wire.extend_from_slice(b"01234"); // the payload may come in pieces...
/// wire.extend_from_slice(b"56789"); // ...as long as they add up to 10 bytes.
///
/// let mut whole = Vec::new();
/// encode_frame(9, b"0123456789", &mut whole)?;
/// assert_eq!(wire, whole);
///
/// let frame = decode_frame(&wire, &Limits::default())?;
/// assert_eq!(frame.payload, b"0123456789");
/// # Ok::<(), csp_netproto::frame::FrameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// What the payload is. Opaque to the frame layer.
    pub kind: u8,
    /// The payload length in bytes.
    pub payload_len: u32,
}

impl FrameHeader {
    /// Makes the header of a frame of `kind` carrying `payload_len` bytes.
    ///
    /// # Errors
    ///
    /// [`FrameError::FrameTooLong`] if `payload_len` does not fit the header's
    /// 32-bit length field. (Checking against a peer's [`Limits`] is
    /// [`Limits::check_frame_len`].)
    pub fn new(kind: u8, payload_len: usize) -> Result<Self, FrameError> {
        match u32::try_from(payload_len) {
            Ok(payload_len) => Ok(FrameHeader { kind, payload_len }),
            Err(_) => Err(FrameError::FrameTooLong {
                len: payload_len as u64,
                limit: u64::from(u32::MAX),
            }),
        }
    }

    /// The header as it goes on the wire.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[..4].copy_from_slice(&MAGIC);
        bytes[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        bytes[6] = self.kind;
        bytes[7..].copy_from_slice(&self.payload_len.to_le_bytes());
        bytes
    }

    /// Reads a header from the first [`HEADER_LEN`] bytes of `bytes` (any
    /// bytes after them are ignored), checking magic, version and `limits`.
    ///
    /// ```
    /// use csp_netproto::frame::{FrameError, FrameHeader, Limits};
    ///
    /// let bytes = FrameHeader::new(3, 1000)?.to_bytes();
    /// let header = FrameHeader::parse(&bytes, &Limits::default())?;
    /// assert_eq!((header.kind, header.payload_len), (3, 1000));
    ///
    /// let tight = Limits::default().with_max_frame_len(999);
    /// assert!(matches!(
    ///     FrameHeader::parse(&bytes, &tight),
    ///     Err(FrameError::FrameTooLong { len: 1000, limit: 999 })
    /// ));
    /// # Ok::<(), FrameError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FrameError::BadMagic`], [`FrameError::UnsupportedVersion`],
    /// [`FrameError::FrameTooLong`], or [`FrameError::Truncated`] if `bytes`
    /// is shorter than a header (after checking the magic bytes present).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, FrameError> {
        check_magic_prefix(bytes)?;
        let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(FrameError::Truncated {
                expected: HEADER_LEN,
                received: bytes.len(),
            });
        };
        let version = u16::from_le_bytes([header[4], header[5]]);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion {
                found: version,
                supported: PROTOCOL_VERSION,
            });
        }
        let kind = header[6];
        let payload_len = u32::from_le_bytes([header[7], header[8], header[9], header[10]]);
        limits.check_frame_len(payload_len as usize)?;
        Ok(FrameHeader { kind, payload_len })
    }

    /// The length of the whole frame, header included.
    #[must_use]
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }
}

/// A decoded frame that owns its payload, as [`FrameDecoder`] yields.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Frame {
    /// What the payload is. Opaque to the frame layer.
    pub kind: u8,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Makes a frame of `kind` carrying `payload`.
    #[must_use]
    pub fn new(kind: u8, payload: Vec<u8>) -> Self {
        Frame { kind, payload }
    }

    /// Borrows this frame as a [`FrameRef`].
    #[must_use]
    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        FrameRef {
            kind: self.kind,
            payload: &self.payload,
        }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_frame_ref().fmt(f)
    }
}

/// A decoded frame whose payload borrows from the input, as
/// [`decode_frame`] and [`split_frame`] return.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct FrameRef<'a> {
    /// What the payload is. Opaque to the frame layer.
    pub kind: u8,
    /// The payload bytes.
    pub payload: &'a [u8],
}

impl<'a> FrameRef<'a> {
    /// Makes a frame of `kind` carrying `payload`.
    #[must_use]
    pub fn new(kind: u8, payload: &'a [u8]) -> Self {
        FrameRef { kind, payload }
    }

    /// Copies the payload into an owned [`Frame`].
    #[must_use]
    pub fn to_frame(&self) -> Frame {
        Frame::new(self.kind, self.payload.to_vec())
    }
}

impl<'a> From<&'a Frame> for FrameRef<'a> {
    fn from(frame: &'a Frame) -> Self {
        frame.as_frame_ref()
    }
}

impl fmt::Debug for FrameRef<'_> {
    /// Shows the kind, the length and the first bytes of the payload (a
    /// payload can be megabytes long).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        let shown = &self.payload[..self.payload.len().min(SHOWN)];
        let more = if self.payload.len() > SHOWN {
            " …"
        } else {
            ""
        };
        write!(
            f,
            "Frame {{ kind: {}, payload: {} bytes [{}{more}] }}",
            self.kind,
            self.payload.len(),
            Hex(shown)
        )
    }
}

/// Appends one frame of `kind` carrying `payload` to `out`.
///
/// Nothing is appended if an error is returned.
///
/// ```
/// use csp_netproto::frame::{HEADER_LEN, Limits, decode_frame, encode_frame};
///
/// let mut out = Vec::new();
/// encode_frame(7, &[1, 2, 3], &mut out)?;
/// assert_eq!(out.len(), HEADER_LEN + 3);
/// assert_eq!(&out[..4], b"CSPn");
///
/// let frame = decode_frame(&out, &Limits::default())?;
/// assert_eq!((frame.kind, frame.payload), (7, &[1, 2, 3][..]));
/// # Ok::<(), csp_netproto::frame::FrameError>(())
/// ```
///
/// # Errors
///
/// [`FrameError::FrameTooLong`] if the payload is longer than a header can
/// declare (`u32::MAX` bytes). A payload longer than the peer's
/// [`Limits::max_frame_len`] is encoded, and refused by the peer: check it
/// first with [`Limits::check_frame_len`].
pub fn encode_frame(kind: u8, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let header = FrameHeader::new(kind, payload.len())?;
    out.reserve(header.frame_len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Decodes the one frame that `bytes` holds, exactly: no more, no less.
///
/// The payload borrows from `bytes`; nothing is copied or allocated.
///
/// ```
/// use csp_netproto::frame::{FrameError, Limits, decode_frame, encode_frame};
///
/// let mut wire = Vec::new();
/// encode_frame(4, b"abc", &mut wire)?;
/// let frame = decode_frame(&wire, &Limits::default())?;
/// assert_eq!((frame.kind, frame.payload), (4, &b"abc"[..]));
///
/// // One byte short, or one too many, is an error.
/// assert!(matches!(
///     decode_frame(&wire[..wire.len() - 1], &Limits::default()),
///     Err(FrameError::Truncated { expected: 14, received: 13 })
/// ));
/// wire.push(0);
/// assert!(matches!(
///     decode_frame(&wire, &Limits::default()),
///     Err(FrameError::TrailingBytes { frame_len: 14, extra: 1 })
/// ));
/// # Ok::<(), FrameError>(())
/// ```
///
/// # Errors
///
/// Any [`FrameError`] from [`split_frame`], and
/// [`FrameError::TrailingBytes`] if bytes follow the frame.
pub fn decode_frame<'a>(bytes: &'a [u8], limits: &Limits) -> Result<FrameRef<'a>, FrameError> {
    let (frame, rest) = split_frame(bytes, limits)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes {
            frame_len: bytes.len() - rest.len(),
            extra: rest.len(),
        });
    }
    Ok(frame)
}

/// Decodes the frame at the start of `bytes`, and returns it with the bytes
/// that follow it.
///
/// Call it in a loop to take apart a buffer that holds whole frames:
///
/// ```
/// use csp_netproto::frame::{Limits, encode_frame, split_frame};
///
/// let mut wire = Vec::new();
/// for kind in 0..3 {
///     encode_frame(kind, &[kind; 2], &mut wire)?;
/// }
/// let mut rest = &wire[..];
/// let mut kinds = Vec::new();
/// while !rest.is_empty() {
///     let (frame, tail) = split_frame(rest, &Limits::default())?;
///     kinds.push(frame.kind);
///     rest = tail;
/// }
/// assert_eq!(kinds, [0, 1, 2]);
/// # Ok::<(), csp_netproto::frame::FrameError>(())
/// ```
///
/// # Errors
///
/// [`FrameError::BadMagic`], [`FrameError::UnsupportedVersion`] or
/// [`FrameError::FrameTooLong`] for a bad header, and
/// [`FrameError::Truncated`] if `bytes` ends before the frame does.
pub fn split_frame<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(FrameRef<'a>, &'a [u8]), FrameError> {
    let header = FrameHeader::parse(bytes, limits)?;
    let frame_len = header.frame_len();
    if bytes.len() < frame_len {
        return Err(FrameError::Truncated {
            expected: frame_len,
            received: bytes.len(),
        });
    }
    let (frame, rest) = bytes.split_at(frame_len);
    Ok((FrameRef::new(header.kind, &frame[HEADER_LEN..]), rest))
}

/// Where a [`FrameDecoder`] is inside the current frame.
#[derive(Debug)]
enum State {
    /// Collecting the header; `filled` bytes of it have arrived.
    Header {
        bytes: [u8; HEADER_LEN],
        filled: usize,
    },
    /// Collecting the payload of a frame whose header was accepted.
    Payload {
        header: FrameHeader,
        payload: Vec<u8>,
    },
    /// The stream is broken; every later call reports this error.
    Failed(FrameError),
}

impl State {
    fn empty_header() -> Self {
        State::Header {
            bytes: [0; HEADER_LEN],
            filled: 0,
        }
    }
}

/// Turns a byte stream, cut at arbitrary points, back into frames.
///
/// [`push`](Self::push) the bytes as they arrive, in chunks of any size and
/// split anywhere (as reads from a QUIC stream are); take the complete frames
/// out with [`next_frame`](Self::next_frame); at the end of the stream, call
/// [`finish`](Self::finish) to learn whether it ended cleanly between frames.
///
/// # Memory
///
/// The decoder holds the frames completed by the chunks pushed so far and
/// not yet taken, plus the part of the current frame received so far. A
/// header declaring more than [`Limits::max_frame_len`] payload bytes is
/// refused as soon as its 11 bytes arrive. The buffer for an accepted
/// payload grows with the bytes that actually arrive (doubling, so at most
/// twice what arrived), never beyond the declared length: a header that
/// declares 16 MiB and is followed by nothing costs nothing.
///
/// # Errors
///
/// Once the stream breaks (bad magic, unsupported version, frame too long),
/// the decoder ignores further input. [`next_frame`](Self::next_frame) first
/// returns every frame completed before the break, then the error, again on
/// every call.
///
/// ```
/// use csp_netproto::frame::{FrameDecoder, FrameError, encode_frame};
///
/// let mut wire = Vec::new();
/// encode_frame(1, b"fine", &mut wire)?;
/// wire.extend_from_slice(b"GET / HTTP/1.1\r\n");
///
/// let mut decoder = FrameDecoder::new();
/// decoder.push(&wire);
/// assert_eq!(decoder.next_frame()?.map(|f| f.payload), Some(b"fine".to_vec()));
/// assert!(matches!(decoder.next_frame(), Err(FrameError::BadMagic { .. })));
/// assert!(matches!(decoder.next_frame(), Err(FrameError::BadMagic { .. })));
/// # Ok::<(), FrameError>(())
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    limits: Limits,
    state: State,
    ready: VecDeque<Frame>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// Makes a decoder with the default [`Limits`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// Makes a decoder that enforces `limits`.
    ///
    /// ```
    /// use csp_netproto::frame::{FrameDecoder, FrameError, Limits, encode_frame};
    ///
    /// let mut decoder = FrameDecoder::with_limits(Limits::default().with_max_frame_len(4));
    /// let mut wire = Vec::new();
    /// encode_frame(0, b"too long", &mut wire)?;
    /// decoder.push(&wire);
    /// assert_eq!(
    ///     decoder.next_frame(),
    ///     Err(FrameError::FrameTooLong { len: 8, limit: 4 })
    /// );
    /// # Ok::<(), FrameError>(())
    /// ```
    #[must_use]
    pub fn with_limits(limits: Limits) -> Self {
        FrameDecoder {
            limits,
            state: State::empty_header(),
            ready: VecDeque::new(),
        }
    }

    /// The limits this decoder enforces.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes in the next bytes of the stream.
    ///
    /// Frames they complete become available from
    /// [`next_frame`](Self::next_frame). Errors are reported there too, in
    /// stream order, so `push` itself cannot fail. After an error, further
    /// bytes are ignored.
    pub fn push(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match &mut self.state {
                State::Failed(_) => return,
                State::Header { bytes, filled } => {
                    let take = (HEADER_LEN - *filled).min(chunk.len());
                    bytes[*filled..*filled + take].copy_from_slice(&chunk[..take]);
                    *filled += take;
                    chunk = &chunk[take..];
                    let (bytes, filled) = (*bytes, *filled);
                    if filled < HEADER_LEN {
                        // Report a wrong magic as soon as it shows.
                        if let Err(e) = check_magic_prefix(&bytes[..filled]) {
                            self.state = State::Failed(e);
                        }
                        continue;
                    }
                    self.state = match FrameHeader::parse(&bytes, &self.limits) {
                        Err(e) => State::Failed(e),
                        Ok(header) if header.payload_len == 0 => {
                            self.ready.push_back(Frame::new(header.kind, Vec::new()));
                            State::empty_header()
                        }
                        Ok(header) => State::Payload {
                            header,
                            payload: Vec::new(),
                        },
                    };
                }
                State::Payload { header, payload } => {
                    let declared = header.payload_len as usize;
                    let take = (declared - payload.len()).min(chunk.len());
                    reserve_bounded(payload, take, declared);
                    payload.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if payload.len() == declared {
                        let kind = header.kind;
                        let payload = std::mem::take(payload);
                        self.ready.push_back(Frame::new(kind, payload));
                        self.state = State::empty_header();
                    }
                }
            }
        }
    }

    /// Takes the next complete frame, if there is one.
    ///
    /// Returns `Ok(None)` when the bytes pushed so far hold no further
    /// complete frame: push more.
    ///
    /// # Errors
    ///
    /// Once every frame before a break in the stream has been taken, returns
    /// the [`FrameError`] that broke it (and keeps returning it).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.ready.pop_front() {
            return Ok(Some(frame));
        }
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            _ => Ok(None),
        }
    }

    /// Says whether the stream may end here: call it once the peer has
    /// finished sending (after taking the frames out).
    ///
    /// ```
    /// use csp_netproto::frame::{FrameDecoder, FrameError, encode_frame};
    ///
    /// let mut wire = Vec::new();
    /// encode_frame(0, b"payload", &mut wire)?;
    /// let mut decoder = FrameDecoder::new();
    /// decoder.push(&wire[..15]); // the last 3 bytes never come
    /// assert_eq!(decoder.next_frame(), Ok(None));
    /// assert_eq!(
    ///     decoder.finish(),
    ///     Err(FrameError::Truncated { expected: 18, received: 15 })
    /// );
    /// # Ok::<(), FrameError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FrameError::Truncated`] if the stream stopped inside a frame, or the
    /// error that broke the stream earlier.
    pub fn finish(&self) -> Result<(), FrameError> {
        match &self.state {
            State::Header { filled: 0, .. } => Ok(()),
            State::Header { filled, .. } => Err(FrameError::Truncated {
                expected: HEADER_LEN,
                received: *filled,
            }),
            State::Payload { header, payload } => Err(FrameError::Truncated {
                expected: header.frame_len(),
                received: HEADER_LEN + payload.len(),
            }),
            State::Failed(e) => Err(e.clone()),
        }
    }

    /// How many bytes of the current, incomplete frame have arrived (header
    /// included). Zero between frames.
    #[must_use]
    pub fn partial_len(&self) -> usize {
        match &self.state {
            State::Header { filled, .. } => *filled,
            State::Payload { payload, .. } => HEADER_LEN + payload.len(),
            State::Failed(_) => 0,
        }
    }

    /// How many bytes of memory the decoder has reserved for the payload of
    /// the current, incomplete frame. Never more than the length its header
    /// declared, so never more than [`Limits::max_frame_len`].
    #[must_use]
    pub fn partial_capacity(&self) -> usize {
        match &self.state {
            State::Payload { payload, .. } => payload.capacity(),
            State::Header { .. } | State::Failed(_) => 0,
        }
    }

    /// How many complete frames are waiting to be taken with
    /// [`next_frame`](Self::next_frame).
    #[must_use]
    pub fn ready_frames(&self) -> usize {
        self.ready.len()
    }
}

/// Makes room in `payload` for `more` bytes, growing geometrically for
/// amortized appends, but never beyond `declared` bytes in all.
fn reserve_bounded(payload: &mut Vec<u8>, more: usize, declared: usize) {
    let needed = payload.len() + more;
    if needed <= payload.capacity() {
        return;
    }
    let target = needed
        .max(payload.capacity().saturating_mul(2))
        .min(declared);
    payload.reserve_exact(target - payload.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(kind, payload, &mut out).expect("small payload");
        out
    }

    #[test]
    fn header_layout_is_fixed() {
        let bytes = FrameHeader::new(0xAB, 0x0102_0304).unwrap().to_bytes();
        assert_eq!(
            bytes,
            [b'C', b'S', b'P', b'n', 1, 0, 0xAB, 0x04, 0x03, 0x02, 0x01]
        );
    }

    #[test]
    fn bad_magic_is_reported_on_first_wrong_byte() {
        let mut d = FrameDecoder::new();
        d.push(b"CX");
        assert_eq!(
            d.next_frame(),
            Err(FrameError::BadMagic {
                found: b"CX".to_vec()
            })
        );
        assert_eq!(d.partial_len(), 0);
    }

    #[test]
    fn version_mismatch_names_both_versions() {
        let mut bytes = frame_bytes(0, b"x");
        bytes[4] = 7;
        let e = decode_frame(&bytes, &Limits::default()).unwrap_err();
        assert_eq!(
            e,
            FrameError::UnsupportedVersion {
                found: 7,
                supported: PROTOCOL_VERSION
            }
        );
        let msg = e.to_string();
        assert!(
            msg.contains("version 7") && msg.contains("version 1"),
            "{msg}"
        );
    }

    #[test]
    fn too_long_is_refused_at_the_header() {
        let header = FrameHeader {
            kind: 0,
            payload_len: u32::MAX,
        }
        .to_bytes();
        let mut d = FrameDecoder::new();
        d.push(&header);
        assert_eq!(
            d.next_frame(),
            Err(FrameError::FrameTooLong {
                len: u64::from(u32::MAX),
                limit: u64::from(DEFAULT_MAX_FRAME_LEN)
            })
        );
        assert_eq!(d.partial_capacity(), 0);
    }

    #[test]
    fn declared_length_is_not_preallocated() {
        let header = FrameHeader::new(0, DEFAULT_MAX_FRAME_LEN as usize)
            .unwrap()
            .to_bytes();
        let mut d = FrameDecoder::new();
        d.push(&header);
        d.push(&[0; 100]);
        assert_eq!(d.partial_len(), HEADER_LEN + 100);
        assert!(d.partial_capacity() < 4096, "{}", d.partial_capacity());
    }

    #[test]
    fn payload_capacity_never_exceeds_declared() {
        let payload = vec![5; 1000];
        let wire = frame_bytes(1, &payload);
        let mut d = FrameDecoder::new();
        for chunk in wire[..wire.len() - 1].chunks(7) {
            d.push(chunk);
            assert!(d.partial_capacity() <= 1000);
        }
        d.push(&wire[wire.len() - 1..]);
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!(f.payload, payload);
        assert_eq!(f.payload.capacity(), 1000);
    }

    #[test]
    fn frames_before_an_error_are_delivered() {
        let mut wire = frame_bytes(1, b"a");
        wire.extend(frame_bytes(2, b"b"));
        wire.extend_from_slice(b"nope");
        wire.extend(frame_bytes(3, b"c"));
        let mut d = FrameDecoder::new();
        d.push(&wire);
        assert_eq!(d.ready_frames(), 2);
        assert_eq!(d.next_frame().unwrap().unwrap().kind, 1);
        assert_eq!(d.next_frame().unwrap().unwrap().kind, 2);
        assert!(matches!(d.next_frame(), Err(FrameError::BadMagic { .. })));
        assert!(matches!(d.finish(), Err(FrameError::BadMagic { .. })));
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let e = FrameError::BadMagic {
            found: b"HTTP".to_vec(),
        };
        assert_eq!(
            e.to_string(),
            "not a csp-netproto frame: expected the magic bytes 43 53 50 6e (\"CSPn\") at the \
             start of a frame, found 48 54 54 50 (\"HTTP\"); the peer speaks another protocol \
             or the stream lost its place, so close the connection"
        );
        let e = FrameError::FrameTooLong { len: 20, limit: 10 };
        assert!(e.to_string().contains("max_frame_len"));
    }

    #[test]
    fn debug_of_a_big_frame_is_short() {
        let f = Frame::new(1, vec![0xFF; 1 << 20]);
        let s = format!("{f:?}");
        assert!(s.len() < 200, "{s}");
        assert!(s.contains("1048576 bytes"));
    }
}
