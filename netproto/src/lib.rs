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
//! - [`ids`]: node, channel, process, offer and guard ids, home epochs, and
//!   [`Time`](ids::Time); the order of offer ids is the global claim order.
//! - [`wire`]: the protocol's [`Message`](wire::Message)s, each with a
//!   stable frame kind, encoded and decoded through [`codec`].
//! - [`node`]: the [`Node`](node::Node) state machine of one node: homes of
//!   the channels homed there (offers of other nodes are claimed by
//!   message), offers of its processes (Alts across homes with priority,
//!   skip and timeout guards), home migration (`become_home`), lost nodes.
//! - `sim` (with the `sim` feature, and in this crate's tests): N nodes in
//!   memory, seeded scheduling that delays and reorders messages across
//!   links and crashes nodes, and the protocol's invariants checked after
//!   every step.
//!
//! `PROTOCOL.md` (beside `Cargo.toml`) states every message, every state
//! and every invariant the simulator checks.

pub mod codec;
pub mod frame;
pub mod home;
pub mod ids;
pub mod node;
mod offer;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod wire;
