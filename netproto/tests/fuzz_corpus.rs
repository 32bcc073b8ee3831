//! Replays every saved input of the `frame_decode` fuzz target
//! (`netproto/fuzz/corpus/frame_decode/`) through the same function the fuzz
//! target runs, so a crash once found stays fixed.
//!
//! The corpus holds hand-made seed inputs (`seed-*`, written by the ignored
//! test `write_seed_inputs` below) and any inputs a fuzzing run found worth
//! keeping. To rewrite the seeds after a change to the wire format:
//!
//! ```text
//! cargo test -p csp-netproto --test fuzz_corpus -- --ignored write_seed_inputs
//! ```

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use csp_netproto::codec::fuzzing::{
    FUZZ_KIND, FuzzMessage, MAX_FRAME_LEN, frame_decode, sample_messages,
};
use csp_netproto::codec::{self, Payload};
use csp_netproto::frame::{FrameHeader, HEADER_LEN, Limits, MAGIC, encode_frame, split_frame};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame_decode")
}

#[test]
fn replay_saved_inputs() {
    let dir = corpus_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => panic!(
            "cannot read the fuzz corpus directory {}: {e}. It should hold the saved inputs of \
             the frame_decode fuzz target; restore it from git, or write the seed inputs with \
             `cargo test -p csp-netproto --test fuzz_corpus -- --ignored write_seed_inputs`",
            dir.display()
        ),
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| match entry {
            Ok(entry) => entry.path(),
            Err(e) => panic!(
                "cannot list the fuzz corpus directory {}: {e}",
                dir.display()
            ),
        })
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "the fuzz corpus directory {} is empty: the replay would test nothing. Restore it from \
         git, or write the seed inputs with \
         `cargo test -p csp-netproto --test fuzz_corpus -- --ignored write_seed_inputs`",
        dir.display()
    );

    let mut failures = Vec::new();
    for path in &paths {
        let data = match fs::read(path) {
            Ok(data) => data,
            Err(e) => panic!("cannot read the fuzz input {}: {e}", path.display()),
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| frame_decode(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} saved fuzz inputs failed (reproduce one with \
         `netproto/fuzz/target/release/frame_decode <file>`, see netproto/fuzz/README.md):\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

/// Writes the hand-made seed inputs into the corpus directory (replacing
/// older seeds of the same name; inputs found by fuzzing are left alone).
#[test]
#[ignore = "writes files: run on purpose to regenerate the seed inputs"]
fn write_seed_inputs() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("create the corpus directory");
    let seeds = seed_inputs();
    for (name, data) in &seeds {
        frame_decode(data); // a seed must not crash before it is saved
        fs::write(dir.join(format!("seed-{name}")), data).expect("write a seed input");
        println!("seed-{name}: {}", describe(data));
    }
    println!("wrote {} seed inputs to {}", seeds.len(), dir.display());
}

/// What the frame layer and the codec make of `data`, in a line.
fn describe(data: &[u8]) -> String {
    let limits = Limits::default().with_max_frame_len(MAX_FRAME_LEN);
    let mut parts = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        match split_frame(rest, &limits) {
            Ok((frame, tail)) => {
                let msg = match codec::decode::<FuzzMessage>(frame) {
                    Ok(_) => "a FuzzMessage".to_string(),
                    Err(e) => format!("{e:?}"),
                };
                parts.push(format!(
                    "frame kind {} of {} bytes: {msg}",
                    frame.kind,
                    frame.payload.len()
                ));
                rest = tail;
            }
            Err(e) => {
                parts.push(format!("{e:?}"));
                break;
            }
        }
    }
    parts.join("; ")
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(kind, payload, &mut out).expect("encode a frame");
    out
}

fn message(msg: &FuzzMessage) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode(FUZZ_KIND, msg, &mut out).expect("encode a message");
    out
}

/// A header with any version and declared length.
fn raw_header(version: u16, kind: u8, len: u32) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// A small deterministic generator of noise (xorshift).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed * 2 + 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn seed_inputs() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let samples = sample_messages();
    let names = [
        "empty",
        "hello",
        "data",
        "data-empty",
        "batch",
        "pair",
        "pair-none",
    ];

    // Valid frames, one message each, and all in one stream.
    for (name, msg) in names.iter().zip(&samples) {
        seeds.push((format!("valid-{name}"), message(msg)));
    }
    let stream: Vec<u8> = samples.iter().flat_map(message).collect();
    seeds.push(("valid-stream".into(), stream.clone()));
    seeds.push(("valid-empty-frame".into(), frame(0, b"")));
    seeds.push((
        "valid-empty-frames".into(),
        [frame(0, b""), frame(255, b""), frame(FUZZ_KIND, b"")].concat(),
    ));
    seeds.push((
        "valid-other-kinds".into(),
        [
            frame(0, b"\x00"),
            frame(200, b"hello"),
            frame(7, &[3, b'a', b'b', b'c']),
        ]
        .concat(),
    ));
    let mut payload_msg = Vec::new();
    codec::encode(2, &Payload::from(noise(1, 700)), &mut payload_msg).expect("encode");
    seeds.push(("valid-payload".into(), payload_msg));
    seeds.push((
        "valid-at-limit".into(),
        frame(9, &noise(2, MAX_FRAME_LEN as usize)),
    ));
    seeds.push(("empty-input".into(), Vec::new()));

    // Streams cut short.
    let hello = message(&samples[1]);
    seeds.push(("truncated-magic".into(), hello[..2].to_vec()));
    seeds.push(("truncated-header".into(), hello[..HEADER_LEN - 1].to_vec()));
    seeds.push((
        "truncated-after-header".into(),
        hello[..HEADER_LEN].to_vec(),
    ));
    seeds.push((
        "truncated-payload".into(),
        hello[..hello.len() - 3].to_vec(),
    ));
    seeds.push((
        "truncated-stream".into(),
        stream[..stream.len() / 2].to_vec(),
    ));

    // Not our protocol, or another version of it.
    seeds.push((
        "bad-magic-http".into(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ));
    let mut bad = hello.clone();
    bad[3] = b'N';
    seeds.push(("bad-magic-last-byte".into(), bad));
    seeds.push((
        "bad-magic-after-frame".into(),
        [hello.clone(), b"CSPN\x01\x00".to_vec()].concat(),
    ));
    for version in [0u16, 2, u16::MAX] {
        seeds.push((
            format!("bad-version-{version}"),
            [raw_header(version, FUZZ_KIND, 1), vec![0]].concat(),
        ));
    }

    // Lengths over the limit, or promising more than comes.
    seeds.push(("huge-length-max".into(), raw_header(1, 0, u32::MAX)));
    seeds.push((
        "huge-length-limit-plus-one".into(),
        raw_header(1, 0, MAX_FRAME_LEN + 1),
    ));
    seeds.push((
        "huge-length-after-frame".into(),
        [frame(0, b"ok"), raw_header(1, 0, 0x8000_0000), vec![0; 32]].concat(),
    ));
    seeds.push((
        "limit-length-few-bytes".into(),
        [raw_header(1, FUZZ_KIND, MAX_FRAME_LEN), vec![0xAA; 100]].concat(),
    ));
    let header_only = FrameHeader::new(FUZZ_KIND, 1000)
        .expect("header")
        .to_bytes();
    seeds.push((
        "declared-1000-got-10".into(),
        [header_only.to_vec(), vec![1; 10]].concat(),
    ));

    // Valid frames whose payloads are not valid messages.
    let mut trailing = message(&samples[0]);
    trailing.push(0xFF);
    let mut fixed = trailing.clone();
    let len = (trailing.len() - HEADER_LEN) as u32;
    fixed[7..11].copy_from_slice(&len.to_le_bytes());
    seeds.push(("message-trailing-byte".into(), fixed));
    seeds.push(("message-trailing-frame-byte".into(), trailing));
    // FuzzMessage::Hello with node 1, then a string of declared length 100 holding 2 bytes.
    seeds.push((
        "message-string-too-long".into(),
        frame(FUZZ_KIND, &[1, 1, 100, b'a', b'b']),
    ));
    // An invalid UTF-8 name.
    seeds.push((
        "message-bad-utf8".into(),
        frame(FUZZ_KIND, &[1, 1, 2, 0xC3, 0x28, 0]),
    ));
    // A variant index that does not exist.
    seeds.push(("message-bad-variant".into(), frame(FUZZ_KIND, &[9])));
    // A varint that never ends.
    seeds.push((
        "message-bad-varint".into(),
        frame(
            FUZZ_KIND,
            &[
                1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            ],
        ),
    ));
    // Data with a payload declaring 2^32 bytes.
    seeds.push((
        "message-huge-payload-len".into(),
        frame(FUZZ_KIND, &[2, 3, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3]),
    ));
    // Batch declaring a billion items.
    seeds.push((
        "message-huge-batch".into(),
        frame(FUZZ_KIND, &[3, 0x80, 0x94, 0xEB, 0xDC, 0x03, 0]),
    ));
    // Pair with an option tag of 2, and an item with a bad bool and a bad char.
    seeds.push(("message-bad-option".into(), frame(FUZZ_KIND, &[4, 0, 2])));
    seeds.push((
        "message-bad-bool".into(),
        frame(FUZZ_KIND, &[4, 0, 1, 0, 2, b'x', 0, 0]),
    ));
    seeds.push((
        "message-bad-char".into(),
        frame(FUZZ_KIND, &[4, 0, 1, 0, 1, 3, 0xED, 0xA0, 0x80, 0, 0]),
    ));

    // Noise, bare and behind a valid header.
    for (i, len) in [16usize, 200, 3000].into_iter().enumerate() {
        seeds.push((format!("noise-{len}"), noise(10 + i as u64, len)));
        seeds.push((
            format!("noise-framed-{len}"),
            frame(FUZZ_KIND, &noise(20 + i as u64, len)),
        ));
    }
    let mut flipped = stream;
    for i in (HEADER_LEN..flipped.len()).step_by(37) {
        flipped[i] ^= 0x5A;
    }
    seeds.push(("valid-stream-flipped-bits".into(), flipped));
    seeds
}
