//! The messages nodes send each other, and their frame kinds.
//!
//! One [`Message`] is one frame: its [`kind`](Message::kind) goes in the
//! frame header and the variant's body is the `postcard` payload (see
//! [`codec`]). Message values travel as opaque
//! [`Payload`] bytes: serializing a user's `T` is the driver's business.
//! `PROTOCOL.md` says what each message means and when it is sent.
//!
//! No message type is recursive and none holds a sequence of zero-sized
//! values, so decoding is bounded by the frame's size limit.
//!
//! ```
//! use csp_netproto::ids::{ChannelId, Epoch, GuardRef, NodeId, OfferId};
//! use csp_netproto::wire::{HomeOp, Message, ToHome};
//! use csp_netproto::frame::{decode_frame, Limits};
//!
//! let guard = GuardRef { offer: OfferId { node: NodeId(1), seq: 3 }, guard: 0 };
//! let msg = Message::ToHome(ToHome {
//!     channel: ChannelId { origin: NodeId(2), num: 0 },
//!     epoch: Epoch::FIRST,
//!     op: HomeOp::Read { guard, needs_claim: false, ack: false },
//! });
//! let mut bytes = Vec::new();
//! msg.encode(&mut bytes)?;
//! let frame = decode_frame(&bytes, &Limits::default())?;
//! assert_eq!(frame.kind, Message::TO_HOME);
//! assert_eq!(Message::decode(frame)?, msg);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, Payload};
use crate::frame::FrameRef;
use crate::home::{Failure, HomeState, Side};
use crate::ids::{ChannelId, Epoch, GuardRef, NodeId};

/// An operation addressed to a channel's home.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HomeOp {
    /// Queue a reader guard.
    Read {
        /// The guard.
        guard: GuardRef,
        /// True for an Alt guard: the home must claim it before committing it.
        needs_claim: bool,
        /// Answer with [`Message::Ack`] once handled (priority Alt).
        ack: bool,
    },
    /// Queue a writer guard with its message.
    Write {
        /// The guard.
        guard: GuardRef,
        /// As for `Read`.
        needs_claim: bool,
        /// As for `Read`.
        ack: bool,
        /// The message.
        value: Payload,
    },
    /// Remove a guard that is no longer wanted (its Alt committed another
    /// guard, or timed out). Harmless if the guard is not there.
    Withdraw {
        /// The guard.
        guard: GuardRef,
        /// Which queue it is in.
        side: Side,
    },
    /// A new end joins on `side`; answered with [`Completion::Done`].
    Join {
        /// The control operation (guard 0 of its offer).
        op: GuardRef,
        /// Which side.
        side: Side,
    },
    /// An end on `side` leaves; answered with [`Completion::Done`].
    Retire {
        /// The control operation.
        op: GuardRef,
        /// Which side.
        side: Side,
    },
    /// Poison through an end on `side`; answered with [`Completion::Done`].
    Poison {
        /// The control operation.
        op: GuardRef,
        /// Which side.
        side: Side,
    },
    /// Move the home to the node that owns `op`; answered (by the new home)
    /// with [`Completion::Done`] once it is home.
    BecomeHome {
        /// The control operation; its owner is the new home.
        op: GuardRef,
    },
}

impl HomeOp {
    /// Clears the `ack` request of a read or write post; returns whether it
    /// was set.
    pub fn take_ack(&mut self) -> bool {
        match self {
            HomeOp::Read { ack, .. } | HomeOp::Write { ack, .. } => std::mem::take(ack),
            _ => false,
        }
    }

    /// The guard or control operation this operation is about.
    pub fn guard(&self) -> GuardRef {
        match self {
            HomeOp::Read { guard, .. }
            | HomeOp::Write { guard, .. }
            | HomeOp::Withdraw { guard, .. } => *guard,
            HomeOp::Join { op, .. }
            | HomeOp::Retire { op, .. }
            | HomeOp::Poison { op, .. }
            | HomeOp::BecomeHome { op } => *op,
        }
    }
}

/// How a guard or control operation ended, as the home tells its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Completion {
    /// A reader guard received this message.
    Read(Payload),
    /// A writer guard's message was taken.
    Written,
    /// The channel failed; a writer's message comes back.
    Failed {
        /// Why.
        failure: Failure,
        /// The writer's message, if it was a writer.
        value: Option<Payload>,
    },
    /// A control operation (join, retire, poison, become-home) took effect.
    Done,
}

/// Owner → home: an operation on `channel`, sent to the node the sender
/// believes is the home at `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToHome {
    /// The channel.
    pub channel: ChannelId,
    /// The epoch of the home the sender addressed.
    pub epoch: Epoch,
    /// What to do.
    pub op: HomeOp,
}

/// Old home → sender: "the home of `channel` is now `home` at `epoch`;
/// send `op` there". Also acknowledges a post that asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The channel.
    pub channel: ChannelId,
    /// Its home as far as the old home knows.
    pub home: NodeId,
    /// The epoch of that home.
    pub epoch: Epoch,
    /// The operation that was not carried out here, to send again.
    pub op: HomeOp,
}

/// Home → owner: a posted guard was handled (matched, queued, or failed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The channel.
    pub channel: ChannelId,
    /// The guard.
    pub guard: GuardRef,
}

/// Home → owner: may `guard` commit to a match on `channel`? Answered with
/// [`ClaimReply`], at once or once the offer is free to decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The channel.
    pub channel: ChannelId,
    /// The guard.
    pub guard: GuardRef,
}

/// Owner → home: the answer to a [`Claim`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimReply {
    /// The channel.
    pub channel: ChannelId,
    /// The guard.
    pub guard: GuardRef,
    /// True: the offer is held for this match until [`Complete`] or
    /// [`Release`]. False: it has ended (or is gone); forget the guard.
    pub won: bool,
}

/// Home → owner: the match a won claim was for fell through; the offer is
/// free again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The channel.
    pub channel: ChannelId,
    /// The guard.
    pub guard: GuardRef,
}

/// Home → owner: `guard` ended with `outcome`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complete {
    /// The channel.
    pub channel: ChannelId,
    /// The guard or control operation.
    pub guard: GuardRef,
    /// How it ended.
    pub outcome: Completion,
}

/// Old home → new home: the channel's whole state; the receiver is its home
/// at `epoch` from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOver {
    /// The channel.
    pub channel: ChannelId,
    /// The new home's epoch.
    pub epoch: Epoch,
    /// The become-home operation this answers (completed by the new home).
    pub op: GuardRef,
    /// Buffer, counts, flags and queued guards (with writers' messages).
    pub state: HomeState<GuardRef, Payload>,
}

/// Old home → owners of handed-over guards: they now wait at `home`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// The channel.
    pub channel: ChannelId,
    /// The new home.
    pub home: NodeId,
    /// Its epoch.
    pub epoch: Epoch,
    /// The receiver's guards that moved.
    pub guards: Vec<GuardRef>,
}

/// Every message of the protocol. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// See [`ToHome`].
    ToHome(ToHome),
    /// See [`Redirect`].
    Redirect(Redirect),
    /// See [`Ack`].
    Ack(Ack),
    /// See [`Claim`].
    Claim(Claim),
    /// See [`ClaimReply`].
    ClaimReply(ClaimReply),
    /// See [`Release`].
    Release(Release),
    /// See [`Complete`].
    Complete(Complete),
    /// See [`HandOver`].
    HandOver(HandOver),
    /// See [`Moved`].
    Moved(Moved),
}

/// Why bytes from a peer are not a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The frame's kind is not one of [`Message::KINDS`].
    UnknownKind(u8),
    /// The payload is not a valid message of its kind.
    Codec(CodecError),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::UnknownKind(k) => write!(
                f,
                "frame kind {k} is not a protocol message (known kinds: 1 to {})",
                Message::KINDS.len()
            ),
            WireError::Codec(e) => write!(f, "bad protocol message: {e}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<CodecError> for WireError {
    fn from(e: CodecError) -> Self {
        WireError::Codec(e)
    }
}

impl Message {
    /// Frame kind of [`Message::ToHome`].
    pub const TO_HOME: u8 = 1;
    /// Frame kind of [`Message::Redirect`].
    pub const REDIRECT: u8 = 2;
    /// Frame kind of [`Message::Ack`].
    pub const ACK: u8 = 3;
    /// Frame kind of [`Message::Claim`].
    pub const CLAIM: u8 = 4;
    /// Frame kind of [`Message::ClaimReply`].
    pub const CLAIM_REPLY: u8 = 5;
    /// Frame kind of [`Message::Release`].
    pub const RELEASE: u8 = 6;
    /// Frame kind of [`Message::Complete`].
    pub const COMPLETE: u8 = 7;
    /// Frame kind of [`Message::HandOver`].
    pub const HAND_OVER: u8 = 8;
    /// Frame kind of [`Message::Moved`].
    pub const MOVED: u8 = 9;
    /// Every frame kind, with its name. Kinds are stable: a new message gets
    /// a new number, and a number is never reused.
    pub const KINDS: [(u8, &'static str); 9] = [
        (Self::TO_HOME, "ToHome"),
        (Self::REDIRECT, "Redirect"),
        (Self::ACK, "Ack"),
        (Self::CLAIM, "Claim"),
        (Self::CLAIM_REPLY, "ClaimReply"),
        (Self::RELEASE, "Release"),
        (Self::COMPLETE, "Complete"),
        (Self::HAND_OVER, "HandOver"),
        (Self::MOVED, "Moved"),
    ];

    /// The frame kind of this message.
    pub fn kind(&self) -> u8 {
        match self {
            Message::ToHome(_) => Self::TO_HOME,
            Message::Redirect(_) => Self::REDIRECT,
            Message::Ack(_) => Self::ACK,
            Message::Claim(_) => Self::CLAIM,
            Message::ClaimReply(_) => Self::CLAIM_REPLY,
            Message::Release(_) => Self::RELEASE,
            Message::Complete(_) => Self::COMPLETE,
            Message::HandOver(_) => Self::HAND_OVER,
            Message::Moved(_) => Self::MOVED,
        }
    }

    /// The channel the message is about.
    pub fn channel(&self) -> ChannelId {
        match self {
            Message::ToHome(m) => m.channel,
            Message::Redirect(m) => m.channel,
            Message::Ack(m) => m.channel,
            Message::Claim(m) => m.channel,
            Message::ClaimReply(m) => m.channel,
            Message::Release(m) => m.channel,
            Message::Complete(m) => m.channel,
            Message::HandOver(m) => m.channel,
            Message::Moved(m) => m.channel,
        }
    }

    /// Appends this message as one frame to `out`.
    ///
    /// # Errors
    ///
    /// As [`codec::encode`] (a message longer than a frame can declare).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let kind = self.kind();
        match self {
            Message::ToHome(m) => codec::encode(kind, m, out),
            Message::Redirect(m) => codec::encode(kind, m, out),
            Message::Ack(m) => codec::encode(kind, m, out),
            Message::Claim(m) => codec::encode(kind, m, out),
            Message::ClaimReply(m) => codec::encode(kind, m, out),
            Message::Release(m) => codec::encode(kind, m, out),
            Message::Complete(m) => codec::encode(kind, m, out),
            Message::HandOver(m) => codec::encode(kind, m, out),
            Message::Moved(m) => codec::encode(kind, m, out),
        }
    }

    /// Decodes the message in `frame`, by its kind. Never panics.
    ///
    /// # Errors
    ///
    /// [`WireError::UnknownKind`] for a kind not in [`Message::KINDS`], and
    /// [`WireError::Codec`] for a payload that is not a message of its kind.
    pub fn decode<'a>(frame: impl Into<FrameRef<'a>>) -> Result<Message, WireError> {
        let frame = frame.into();
        Ok(match frame.kind {
            Self::TO_HOME => Message::ToHome(codec::decode(frame)?),
            Self::REDIRECT => Message::Redirect(codec::decode(frame)?),
            Self::ACK => Message::Ack(codec::decode(frame)?),
            Self::CLAIM => Message::Claim(codec::decode(frame)?),
            Self::CLAIM_REPLY => Message::ClaimReply(codec::decode(frame)?),
            Self::RELEASE => Message::Release(codec::decode(frame)?),
            Self::COMPLETE => Message::Complete(codec::decode(frame)?),
            Self::HAND_OVER => Message::HandOver(codec::decode(frame)?),
            Self::MOVED => Message::Moved(codec::decode(frame)?),
            k => return Err(WireError::UnknownKind(k)),
        })
    }
}

impl fmt::Display for Message {
    /// One line, for traces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::ToHome(m) => write!(f, "ToHome {} {} {:?}", m.channel, m.epoch, m.op),
            Message::Redirect(m) => write!(
                f,
                "Redirect {} -> {} {} {:?}",
                m.channel, m.home, m.epoch, m.op
            ),
            Message::Ack(m) => write!(f, "Ack {} {}", m.channel, m.guard),
            Message::Claim(m) => write!(f, "Claim {} {}", m.channel, m.guard),
            Message::ClaimReply(m) => write!(
                f,
                "ClaimReply {} {} {}",
                m.channel,
                m.guard,
                if m.won { "won" } else { "lost" }
            ),
            Message::Release(m) => write!(f, "Release {} {}", m.channel, m.guard),
            Message::Complete(m) => {
                write!(f, "Complete {} {} {:?}", m.channel, m.guard, m.outcome)
            }
            Message::HandOver(m) => write!(
                f,
                "HandOver {} {} op {} (buffer {}, readers {}, writers {}, queued {}+{})",
                m.channel,
                m.epoch,
                m.op,
                m.state.buffer.len(),
                m.state.readers,
                m.state.writers,
                m.state.read_offers.len(),
                m.state.write_offers.len()
            ),
            Message::Moved(m) => write!(
                f,
                "Moved {} -> {} {} {:?}",
                m.channel, m.home, m.epoch, m.guards
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Limits, decode_frame};
    use crate::home::Offer;
    use crate::ids::OfferId;

    fn g(n: u32, s: u64, i: u16) -> GuardRef {
        GuardRef {
            offer: OfferId {
                node: NodeId(n),
                seq: s,
            },
            guard: i,
        }
    }

    fn samples() -> Vec<Message> {
        let channel = ChannelId {
            origin: NodeId(1),
            num: 2,
        };
        vec![
            Message::ToHome(ToHome {
                channel,
                epoch: Epoch(3),
                op: HomeOp::Write {
                    guard: g(1, 2, 3),
                    needs_claim: true,
                    ack: true,
                    value: Payload::from(vec![1, 2, 3]),
                },
            }),
            Message::Redirect(Redirect {
                channel,
                home: NodeId(4),
                epoch: Epoch(5),
                op: HomeOp::Poison {
                    op: g(1, 1, 0),
                    side: Side::Read,
                },
            }),
            Message::Ack(Ack {
                channel,
                guard: g(0, 0, 0),
            }),
            Message::Claim(Claim {
                channel,
                guard: g(7, 7, 1),
            }),
            Message::ClaimReply(ClaimReply {
                channel,
                guard: g(7, 7, 1),
                won: true,
            }),
            Message::Release(Release {
                channel,
                guard: g(7, 7, 1),
            }),
            Message::Complete(Complete {
                channel,
                guard: g(2, 9, 0),
                outcome: Completion::Failed {
                    failure: Failure::Retired,
                    value: Some(Payload::from(vec![9])),
                },
            }),
            Message::HandOver(HandOver {
                channel,
                epoch: Epoch(1),
                op: g(3, 1, 0),
                state: HomeState {
                    capacity: 2,
                    readers: 1,
                    writers: 2,
                    poisoned: false,
                    retired: false,
                    after_drain: None,
                    buffer: vec![Payload::from(vec![5])],
                    read_offers: vec![],
                    write_offers: vec![(
                        Offer {
                            party: g(1, 1, 1),
                            needs_claim: true,
                        },
                        Payload::from(vec![6]),
                    )],
                },
            }),
            Message::Moved(Moved {
                channel,
                home: NodeId(3),
                epoch: Epoch(1),
                guards: vec![g(1, 1, 1)],
            }),
        ]
    }

    #[test]
    fn every_message_round_trips_under_its_own_kind() {
        let kinds: Vec<u8> = Message::KINDS.iter().map(|(k, _)| *k).collect();
        for msg in samples() {
            let mut out = Vec::new();
            msg.encode(&mut out).expect("encodes");
            let frame = decode_frame(&out, &Limits::default()).expect("one frame");
            assert_eq!(frame.kind, msg.kind());
            assert!(kinds.contains(&frame.kind));
            assert_eq!(Message::decode(frame).expect("decodes"), msg);
            assert!(!msg.to_string().is_empty());
        }
    }

    #[test]
    fn unknown_kinds_and_wrong_payloads_are_errors() {
        assert_eq!(
            Message::decode(FrameRef::new(200, &[])),
            Err(WireError::UnknownKind(200))
        );
        // A ClaimReply body under the HandOver kind.
        let mut out = Vec::new();
        samples()[4].encode(&mut out).expect("encodes");
        let frame = decode_frame(&out, &Limits::default()).expect("one frame");
        assert!(Message::decode(FrameRef::new(Message::HAND_OVER, frame.payload)).is_err());
        for n in 0..=255u8 {
            // Garbage of every kind never panics.
            let _ = Message::decode(FrameRef::new(n, &[n, 0xff, 0x80, 1, 2, 3]));
        }
    }
}
