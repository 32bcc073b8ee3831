//! Fuzzes the frame decoders (one-shot and incremental, fed in chunks of
//! every size) and the decoding of a representative message type. The logic
//! lives in `csp_netproto::codec::fuzzing::frame_decode`, which the
//! `fuzz_corpus` test of csp-netproto also runs on every saved input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    csp_netproto::codec::fuzzing::frame_decode(data);
});
