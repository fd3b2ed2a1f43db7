//! The transmitter through a real veth pair (needs root): every frame handed over arrives,
//! whole and in order, in both modes; frames the interface cannot carry are counted as
//! errors, not sent. Transmitters and senders are recorded under /run/nsring in their
//! socket's namespace with counters that follow every batch, and removed when dropped.

use std::time::{Duration, Instant};

use nsring_capture::{Capture, CaptureConfig, Sender, Transmitter, TxConfig, TxMode};
use nsring_netns::NetNs;
use nsring_netns::lab::Lab;
use nsring_registry::record::{RecordView, RunDir, SocketMode};

const SRC: [u8; 6] = [0x02, 0x6e, 0x73, 0x74, 0x78, 0x01];

fn pair(tag: &str) -> (Lab, NetNs, NetNs) {
    let mut lab = Lab::new(tag);
    let a = lab.netns("a");
    let b = lab.netns("b");
    lab.veth("a", "eth1", "b", "eth1");
    (lab, a, b)
}

/// An Ethernet frame of `len` bytes from SRC to a unicast MAC no one has, ethertype 0x88b5
/// (local experimental), carrying `seq`.
fn frame(len: usize, seq: u32) -> Vec<u8> {
    let mut f = vec![0x02, 0x6e, 0x73, 0x74, 0x78, 0xdd];
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(len, (seq % 251) as u8);
    f
}

/// Our frames seen by `cap` until `want` arrived (or 5 s), in order.
fn collect(cap: &mut Capture, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let start = Instant::now();
    let mut enough: Option<Instant> = None;
    while start.elapsed() < Duration::from_secs(5) {
        if enough.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
            break;
        }
        if let Some(block) = cap.next_block(Some(Duration::from_millis(50))).unwrap() {
            for f in &block {
                if f.data().len() >= 12 && f.data()[6..12] == SRC {
                    got.push(f.data().to_vec());
                }
            }
        }
        if got.len() >= want && enough.is_none() {
            enough = Some(Instant::now());
        }
    }
    got
}

fn roundtrip(mode: TxMode, bypass: bool) {
    let (_lab, a, b) = pair(&format!("tx_{mode}"));
    let mut cap = Capture::open(
        &b,
        &CaptureConfig::new("eth1").ring(nsring_capture::RingGeometry {
            block_size: 1 << 20,
            block_count: 8,
            ..Default::default()
        }),
    )
    .unwrap();
    let mut tx = Transmitter::open(
        &a,
        &TxConfig::new("eth1")
            .mode(mode)
            .qdisc_bypass(bypass)
            .ring_frames(64),
    )
    .unwrap();
    assert_eq!(tx.mtu(), 1500);
    assert_eq!(tx.max_frame_len(), 1514);
    // 1000 frames of varied sizes, in batches of 100 (more than the 64-slot ring holds, so
    // the ring wraps and refills mid-batch).
    let frames: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| frame(60 + (i as usize * 7) % 1455, i))
        .collect();
    for chunk in frames.chunks(100) {
        let n = tx.send_batch(chunk.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(n, chunk.len());
    }
    tx.flush().unwrap();
    let st = tx.stats();
    assert_eq!(st.packets, 1000, "{st:?}");
    assert_eq!(st.bytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());
    assert_eq!(st.errors, 0);
    let got = collect(&mut cap, 1000);
    assert_eq!(got.len(), 1000);
    assert!(got == frames, "frames differ or arrived out of order");
}

#[test]
fn ring_sends_every_frame_in_order() {
    roundtrip(TxMode::Ring, false);
}

#[test]
fn ring_with_qdisc_bypass_sends_every_frame() {
    roundtrip(TxMode::Ring, true);
}

#[test]
fn sendmmsg_sends_every_frame_in_order() {
    roundtrip(TxMode::Sendmmsg, false);
}

#[test]
fn frames_the_interface_cannot_carry_are_errors() {
    let (_lab, a, b) = pair("tx_err");
    let mut cap = Capture::open(&b, &CaptureConfig::new("eth1")).unwrap();
    for mode in [TxMode::Ring, TxMode::Sendmmsg] {
        let mut tx = Transmitter::open(&a, &TxConfig::new("eth1").mode(mode)).unwrap();
        let good = frame(100, 1);
        let short = [0u8; 13];
        let long = frame(1515, 2);
        let n = tx
            .send_batch([&good[..], &short[..], &long[..], &good[..]])
            .unwrap();
        assert_eq!(n, 2, "{mode}");
        let st = tx.stats();
        assert_eq!((st.packets, st.errors), (2, 2), "{mode}: {st:?}");
    }
    assert_eq!(collect(&mut cap, 4).len(), 4);
}

#[test]
fn unknown_interface_is_named() {
    let (_lab, a, _b) = pair("tx_noif");
    let err = Transmitter::open(&a, &TxConfig::new("nope0")).unwrap_err();
    assert!(
        matches!(err, nsring_capture::Error::NoInterface { .. }),
        "{err:?}: {err}"
    );
    assert!(err.to_string().contains("nope0"), "{err}");
}

/// The live records of namespace `ns`, as a reader (`nsring ls`) sees them.
fn records_in(ns: &NetNs) -> Vec<RecordView> {
    RunDir::new().scan(ns.inode(), None).unwrap().records
}

/// The record named `name` in namespace `ns`, read from its file.
fn record_named(ns: &NetNs, name: &str) -> Option<RecordView> {
    records_in(ns).into_iter().find(|r| r.name == name)
}

#[test]
fn transmitters_are_recorded_with_their_counters_per_batch() {
    let (_lab, a, b) = pair("tx_rec");
    for mode in [TxMode::Ring, TxMode::Sendmmsg] {
        let mut tx = Transmitter::open(
            &a,
            &TxConfig::new("eth1")
                .mode(mode)
                .ring_frames(64)
                .app_name("tx-test"),
        )
        .unwrap();
        assert!(tx.record_error().is_none(), "{:?}", tx.record_error());
        let name = tx.record().expect("recorded").name().to_owned();
        assert!(
            name.starts_with(&format!("{}-eth1.", std::process::id())),
            "{name}"
        );
        // in the socket's namespace (a), not in b's
        assert!(records_in(&b).iter().all(|r| r.name != name));
        let r = record_named(&a, &name).expect("the record is in a's directory");
        assert_eq!(r.info.app_name, "tx-test");
        assert_eq!(r.info.mode, SocketMode::Tx);
        assert_eq!(r.info.interfaces, ["eth1"]);
        assert_eq!(r.info.ifindex, tx.ifindex());
        assert_eq!(r.header.pid, std::process::id());
        assert_eq!(r.counters.sent, 0);
        match mode {
            TxMode::Ring => {
                assert_eq!(r.info.backend, "tpacket_v2 tx ring");
                let g = r.info.ring.expect("the ring's geometry");
                assert!(u64::from(g.block_count) * u64::from(g.block_size) == g.memory_bytes);
                assert!(g.memory_bytes >= 64 * u64::from(g.frame_size), "{g:?}");
            }
            TxMode::Sendmmsg => {
                assert_eq!(r.info.backend, "sendmmsg");
                assert!(r.info.ring.is_none());
            }
        }

        // after each batch the file holds the transmitter's own counters
        let good: Vec<Vec<u8>> = (0..50u32).map(|i| frame(100 + i as usize, i)).collect();
        let mut want_bytes = 0u64;
        for round in 1..=3u64 {
            tx.send_batch(good.iter().map(Vec::as_slice)).unwrap();
            want_bytes += good.iter().map(|f| f.len() as u64).sum::<u64>();
            let c = record_named(&a, &name).unwrap().counters;
            assert_eq!(
                (c.sent, c.bytes, c.send_errors),
                (50 * round, want_bytes, 0)
            );
            assert_eq!(c.packets, 0, "received packets stay 0 on a TX socket");
        }
        let long = frame(1515, 9);
        tx.send_batch([&good[0][..], &long[..], &[0u8; 3][..]])
            .unwrap();
        tx.flush().unwrap();
        let st = tx.stats();
        let c = record_named(&a, &name).unwrap().counters;
        assert_eq!(
            (c.sent, c.bytes, c.send_errors),
            (st.packets, st.bytes, st.errors)
        );
        assert_eq!((c.sent, c.send_errors), (151, 2), "{mode}");
        assert!(c.updated_unix_ns > 0, "flush stamps the update time");

        drop(tx);
        assert!(
            record_named(&a, &name).is_none(),
            "{mode}: dropping the transmitter removes its record"
        );
    }
}

#[test]
fn transmitters_can_stay_unrecorded() {
    let (_lab, a, _b) = pair("tx_norec");
    let before = records_in(&a).len();
    let mut tx = Transmitter::open(&a, &TxConfig::new("eth1").register(false)).unwrap();
    assert!(tx.record().is_none() && tx.record_error().is_none());
    tx.send_batch([&frame(60, 0)[..]]).unwrap();
    assert_eq!(records_in(&a).len(), before);
    assert_eq!(tx.stats().packets, 1);
    let s = Sender::open_with(&a, &TxConfig::new("eth1").register(false)).unwrap();
    assert!(s.record().is_none());
    assert_eq!(records_in(&a).len(), before);
}

#[test]
fn senders_are_recorded_with_their_counters() {
    let (_lab, a, b) = pair("tx_sender");
    let mut cap = Capture::open(&b, &CaptureConfig::new("eth1").register(false)).unwrap();
    let s = Sender::open_with(&a, &TxConfig::new("eth1").app_name("one-by-one")).unwrap();
    let name = s.record().expect("recorded").name().to_owned();
    let r = record_named(&a, &name).unwrap();
    assert_eq!(r.info.mode, SocketMode::Tx);
    assert_eq!(r.info.backend, "send");
    assert_eq!(r.info.app_name, "one-by-one");
    assert_eq!(r.info.interfaces, ["eth1"]);
    for i in 0..7 {
        s.send(&frame(80, i)).unwrap();
    }
    assert!(s.send(&frame(1600, 99)).is_err(), "longer than the MTU");
    let c = record_named(&a, &name).unwrap().counters;
    assert_eq!((c.sent, c.bytes, c.send_errors), (7, 7 * 80, 1));
    assert_eq!(
        s.stats(),
        nsring_capture::TxStats {
            packets: 7,
            bytes: 560,
            errors: 1,
            retries: 0
        }
    );
    assert_eq!(collect(&mut cap, 7).len(), 7);
    // the plain constructor records too, under the program's name
    let plain = Sender::open(&a, "eth1").unwrap();
    let pr = record_named(&a, plain.record().unwrap().name()).unwrap();
    assert!(!pr.info.app_name.is_empty());
    drop(s);
    assert!(record_named(&a, &name).is_none());
}

/// Not a check: prints the rate of each mode, to choose the default (run with
/// `--ignored --nocapture`).
#[test]
#[ignore]
fn compare_modes() {
    let (_lab, a, _b) = pair("tx_speed");
    for len in [60, 1514] {
        let frames: Vec<Vec<u8>> = (0..256u32).map(|i| frame(len, i)).collect();
        for mode in [TxMode::Ring, TxMode::Sendmmsg] {
            for bypass in [false, true] {
                let mut tx =
                    Transmitter::open(&a, &TxConfig::new("eth1").mode(mode).qdisc_bypass(bypass))
                        .unwrap();
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(2) {
                    tx.send_batch(frames.iter().map(Vec::as_slice)).unwrap();
                }
                let st = tx.stats();
                println!(
                    "{len:>4} B {mode:>8} bypass={bypass:<5}: {:.0} pps ({} retries)",
                    st.packets as f64 / t.elapsed().as_secs_f64(),
                    st.retries
                );
            }
        }
    }
}
