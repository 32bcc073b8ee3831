use csp_parallel::Parallel as P;
use csp_runtime::{Alt, Channel, Fair, Process, Runtime, Error};
fn main() {
    let mut bad = 0;
    for run in 0..1000 {
        let a = Channel::<u64, P>::new();
        let b = Channel::<u64, P>::new();
        let mk = |w: csp_runtime::Writer<u64, P>| Process::new("s", move || -> csp_runtime::Result<Vec<usize>> { loop { w.write(0)?; } });
        let (ra, rb) = (a.reader(), b.reader());
        let sel = Process::new("sel", move || {
            let mut fair = Fair::new();
            let mut seq = Vec::new();
            for _ in 0..200 {
                seq.push(Alt::new().read(&ra, |_| 0).read(&rb, |_| 1).select_fair(&mut fair)?);
            }
            ra.poison(); rb.poison();
            Ok::<_, Error>(seq)
        });
        let (wa, wb) = (a.writer(), b.writer());
        let out = P::par(vec![mk(wa), mk(wb), sel]);
        // writers end with Poisoned -> None; but poison of writers' channel: they return Err(Poisoned)
        let seq = match out { Ok(v) => v[2].clone().unwrap_or_default(), Err(e) => { println!("err {e}"); continue } };
        let ones: usize = seq.iter().sum();
        if ones < 20 || ones > 180 {
            bad += 1;
            let s: String = seq.iter().map(|x| if *x == 0 { 'a' } else { 'b' }).collect();
            println!("run {run}: {} a, {} b: {s}", 200 - ones, ones);
        }
    }
    println!("bad {bad}/1000");
}
