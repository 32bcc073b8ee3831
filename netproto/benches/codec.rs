//! Encoding and decoding bytes as a `Payload` (one block of bytes) against a
//! plain `Vec<u8>` (which serde sees as a sequence of integers).
//!
//! Run with `cargo bench -p csp-netproto --bench codec`. After criterion's
//! own report, prints the ratio of sequence time to bytes time for each size,
//! measured again in the same run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use csp_netproto::codec::{self, Payload};
use csp_netproto::frame::{Limits, decode_frame};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A data message holding its bytes as a `Payload`.
#[derive(Serialize, Deserialize)]
struct AsBytes {
    channel: u64,
    data: Payload,
}

/// The same message holding its bytes as a `Vec<u8>`.
#[derive(Serialize, Deserialize)]
struct AsSeq {
    channel: u64,
    data: Vec<u8>,
}

const SIZES: [(usize, &str); 2] = [(64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Encodes `msg` into `buf` (cleared first), and decodes it back.
fn round_trip<M: Serialize + DeserializeOwned>(msg: &M, buf: &mut Vec<u8>) -> M {
    buf.clear();
    codec::encode(1, msg, buf).expect("encode");
    let frame = decode_frame(buf, &Limits::default()).expect("frame");
    codec::decode(frame).expect("decode")
}

fn encode_only<M: Serialize>(msg: &M, buf: &mut Vec<u8>) {
    buf.clear();
    codec::encode(1, msg, buf).expect("encode");
}

fn decode_only<M: DeserializeOwned>(buf: &[u8]) -> M {
    let frame = decode_frame(buf, &Limits::default()).expect("frame");
    codec::decode(frame).expect("decode")
}

fn bench(c: &mut Criterion) {
    for (len, name) in SIZES {
        let bytes = AsBytes {
            channel: 3,
            data: Payload::from(data(len)),
        };
        let seq = AsSeq {
            channel: 3,
            data: data(len),
        };
        let mut buf = Vec::with_capacity(len + 64);

        let mut group = c.benchmark_group("codec");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("round_trip/payload", name), |b| {
            b.iter(|| black_box(round_trip(black_box(&bytes), &mut buf)))
        });
        group.bench_function(BenchmarkId::new("round_trip/vec_u8", name), |b| {
            b.iter(|| black_box(round_trip(black_box(&seq), &mut buf)))
        });
        group.bench_function(BenchmarkId::new("encode/payload", name), |b| {
            b.iter(|| encode_only(black_box(&bytes), &mut buf))
        });
        group.bench_function(BenchmarkId::new("encode/vec_u8", name), |b| {
            b.iter(|| encode_only(black_box(&seq), &mut buf))
        });
        let mut wire = Vec::new();
        codec::encode(1, &bytes, &mut wire).expect("encode");
        group.bench_function(BenchmarkId::new("decode/payload", name), |b| {
            b.iter(|| black_box(decode_only::<AsBytes>(black_box(&wire))))
        });
        group.bench_function(BenchmarkId::new("decode/vec_u8", name), |b| {
            b.iter(|| black_box(decode_only::<AsSeq>(black_box(&wire))))
        });
        group.finish();
    }
}

/// Mean time of one call of `f`, over at least `budget` of calls.
fn time(budget: Duration, mut f: impl FnMut()) -> Duration {
    f(); // warm up
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    start.elapsed() / n
}

/// Prints the sequence/bytes ratio of encode+decode time for each size.
fn print_ratios(budget: Duration) {
    println!("\nencode+decode, Vec<u8> (sequence) vs Payload (bytes):");
    for (len, name) in SIZES {
        let bytes = AsBytes {
            channel: 3,
            data: Payload::from(data(len)),
        };
        let seq = AsSeq {
            channel: 3,
            data: data(len),
        };
        let mut buf = Vec::with_capacity(len + 64);
        let t_bytes = time(budget, || {
            black_box(round_trip(black_box(&bytes), &mut buf));
        });
        let t_seq = time(budget, || {
            black_box(round_trip(black_box(&seq), &mut buf));
        });
        let gib = |t: Duration| len as f64 / t.as_secs_f64() / f64::from(1 << 30);
        println!(
            "  {name:>6}: Payload {t_bytes:>10.2?} ({:6.2} GiB/s), Vec<u8> {t_seq:>10.2?} \
             ({:6.2} GiB/s): the sequence is {:.1}x slower",
            gib(t_bytes),
            gib(t_seq),
            t_seq.as_secs_f64() / t_bytes.as_secs_f64()
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then a token run is enough.
    let benching = std::env::args().any(|a| a == "--bench");
    print_ratios(if benching {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(1)
    });
}
