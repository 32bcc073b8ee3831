//! csp-netproto: the protocol of the parallel backend, with no I/O.
//!
//! Nothing here opens a socket, reads a clock or starts a thread: input and
//! time are arguments, output is returned (as `quinn-proto` does). The
//! `parallel` backend drives these state machines in memory for channels homed
//! in its own OS process, and over QUIC links for the others.
//!
//! - [`home`]: the [`ChannelHome`](home::ChannelHome) state machine of one
//!   channel: rendezvous and buffered matching, FIFO, join counts, poison and
//!   retire.
//! - [`frame`]: frames on a byte stream (magic, protocol version, kind,
//!   length, payload), with size limits checked before allocation, and an
//!   incremental [`FrameDecoder`](frame::FrameDecoder) for bytes split
//!   anywhere.
//! - [`codec`]: messages as `postcard` over `serde` in frame payloads, and
//!   the [`Payload`](codec::Payload) bytes type that serializes as one block.

pub mod codec;
pub mod frame;
pub mod home;
pub mod ids;
pub mod node;
mod offer;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod wire;
