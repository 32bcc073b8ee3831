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

pub mod home;
