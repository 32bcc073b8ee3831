use csp_greenlets::Greenlets as G;
use csp_runtime::{Channel, Process, Runtime};
use std::time::Instant;

fn main() {
    let n = 503;
    let hops: u64 = 10_000_000;
    let chans: Vec<Channel<u64, G>> = (0..n).map(|_| Channel::new()).collect();
    let mut procs = Vec::new();
    for i in 0..n {
        let r = chans[i].reader();
        let w = chans[(i + 1) % n].writer();
        procs.push(Process::new("node", move || {
            if i == 0 {
                w.write(hops)?;
            }
            loop {
                let v = r.read()?;
                if v == 0 {
                    w.poison();
                    return Ok(());
                }
                w.write(v - 1)?;
            }
        }));
    }
    let t = Instant::now();
    let _ = G::par(procs);
    let el = t.elapsed();
    println!(
        "thread ring: {:.1} ns/hop",
        el.as_nanos() as f64 / hops as f64
    );

    // ping-pong
    let a = Channel::<u64, G>::new();
    let b = Channel::<u64, G>::new();
    let (aw, ar, bw, br) = (a.writer(), a.reader(), b.writer(), b.reader());
    let rounds = 5_000_000u64;
    let t = Instant::now();
    let _ = G::par(vec![
        Process::new("ping", move || {
            for i in 0..rounds {
                aw.write(i)?;
                br.read()?;
            }
            Ok(())
        }),
        Process::new("pong", move || {
            for _ in 0..rounds {
                let v = ar.read()?;
                bw.write(v)?;
            }
            Ok(())
        }),
    ]);
    println!(
        "ping-pong: {:.1} ns/round trip",
        t.elapsed().as_nanos() as f64 / rounds as f64
    );
}
