//! First checks of the greenlets backend, without the macros.

use csp_greenlets::Greenlets as G;
use csp_runtime::{Alt, Channel, Error, Process, Runtime};

#[test]
fn rendezvous_between_two_processes() {
    let c = Channel::<u64, G>::new();
    let (w, r) = (c.writer(), c.reader());
    let out = G::par(vec![
        Process::new("writer", move || {
            for i in 0..10 {
                w.write(i)?;
            }
            w.retire();
            Ok(0)
        }),
        Process::new("reader", move || {
            let mut sum = 0;
            loop {
                match r.read() {
                    Ok(v) => sum += v,
                    Err(Error::Retired) => return Ok(sum),
                    Err(e) => return Err(e),
                }
            }
        }),
    ])
    .unwrap();
    assert_eq!(out, vec![Some(0), Some(45)]);
}

#[test]
fn deadlock_is_reported() {
    let c = Channel::<u64, G>::named("lonely");
    let r = c.reader();
    let err = G::par(vec![Process::new("stuck", move || r.read())]).unwrap_err();
    match err {
        Error::Deadlock(rep) => {
            assert_eq!(rep.blocked.len(), 2, "{rep}");
            assert!(
                rep.to_string()
                    .contains("'stuck' waits on read on channel 'lonely'"),
                "{rep}"
            );
        }
        e => panic!("expected deadlock, got {e:?}"),
    }
    // The scheduler works again afterwards.
    let c = Channel::<u64, G>::buffered(1);
    c.writer().write(3).unwrap();
    assert_eq!(c.reader().read().unwrap(), 3);
}

#[test]
fn alt_priority_and_timeout() {
    let a = Channel::<u32, G>::buffered(1);
    let b = Channel::<u32, G>::buffered(1);
    a.writer().write(1).unwrap();
    b.writer().write(2).unwrap();
    let (ra, rb) = (a.reader(), b.reader());
    let got = Alt::new()
        .read(&ra, |v| v)
        .read(&rb, |v| v + 100)
        .select()
        .unwrap();
    assert_eq!(got, 1);
    let got = Alt::new()
        .read(&ra, |v| v)
        .read(&rb, |v| v + 100)
        .select()
        .unwrap();
    assert_eq!(got, 102);
    let got = Alt::new()
        .read(&ra, |v| v)
        .timeout(std::time::Duration::from_millis(5), || 7)
        .select()
        .unwrap();
    assert_eq!(got, 7);
}

#[test]
fn many_processes_ring() {
    let n = 1000;
    let chans: Vec<Channel<u64, G>> = (0..n).map(|_| Channel::new()).collect();
    let mut procs = Vec::new();
    for i in 0..n {
        let r = chans[i].reader();
        let w = chans[(i + 1) % n].writer();
        procs.push(Process::new("node", move || {
            if i == 0 {
                w.write(0)?;
                let v = r.read()?;
                return Ok(v);
            }
            let v = r.read()?;
            w.write(v + 1)?;
            Ok(v)
        }));
    }
    let out = G::par(procs).unwrap();
    assert_eq!(out[0], Some(999));
}
