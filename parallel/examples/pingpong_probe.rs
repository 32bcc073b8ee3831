//! Rendezvous ping-pong between two threads: csp-parallel against
//! crossbeam-channel's `bounded(0)`. Prints ns per round trip (one message
//! each way). Run with `cargo run -p csp-parallel --release --example pingpong_probe`.

use std::time::{Duration, Instant};

use csp_parallel::Parallel as P;
use csp_runtime::{Channel, Process, Runtime};

const ROUNDS: u64 = 200_000;

fn ours() -> Duration {
    let ping = Channel::<u64, P>::new();
    let pong = Channel::<u64, P>::new();
    let (pw, pr, qw, qr) = (ping.writer(), ping.reader(), pong.writer(), pong.reader());
    let start = Instant::now();
    let out = P::par(vec![
        Process::new("ping", move || {
            for i in 0..ROUNDS {
                pw.write(i)?;
                qr.read()?;
            }
            Ok(())
        }),
        Process::new("pong", move || {
            for _ in 0..ROUNDS {
                let v = pr.read()?;
                qw.write(v)?;
            }
            Ok(())
        }),
    ]);
    let t = start.elapsed();
    if let Err(e) = out {
        eprintln!("ping-pong failed: {e}");
    }
    t
}

fn crossbeam() -> Duration {
    let (pw, pr) = crossbeam_channel::bounded::<u64>(0);
    let (qw, qr) = crossbeam_channel::bounded::<u64>(0);
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let Ok(v) = pr.recv() else { return };
            if qw.send(v).is_err() {
                return;
            }
        }
    });
    for i in 0..ROUNDS {
        if pw.send(i).is_err() || qr.recv().is_err() {
            break;
        }
    }
    let _ = t.join();
    start.elapsed()
}

fn main() {
    for _ in 0..5 {
        let a = ours();
        let b = crossbeam();
        let per = |d: Duration| d.as_nanos() as f64 / ROUNDS as f64;
        println!(
            "csp-parallel {:8.0} ns/round trip   crossbeam bounded(0) {:8.0} ns/round trip   ratio {:.2}",
            per(a),
            per(b),
            per(a) / per(b)
        );
    }
}
