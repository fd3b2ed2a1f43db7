//! Real frames through real veth pairs in a lab of namespaces (needs root).
//!
//! Every test builds its own lab (`nsring_netns::lab::Lab`, removed on drop), sends a known set
//! of crafted frames with source MACs of its own from one end, and checks what the
//! capture on the other end (or the same end) sees, exactly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nsring_capture::{Capture, CaptureConfig, Dir, Direction, Error, FanoutMode, Sender};
use nsring_netns::NetNs;
use nsring_netns::lab::Lab;

/// Source MAC of the frames sent from side A: 02:6e:73:72:74:NN ("nsrt").
const MAC_A: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x0a];
/// Source MAC of the frames sent from side B.
const MAC_B: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x0b];
/// A unicast destination that is no interface's: the receiving stack drops the frames.
const MAC_DST: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0xdd];

fn ours(data: &[u8]) -> bool {
    data.len() >= 12 && (data[6..12] == MAC_A || data[6..12] == MAC_B)
}

/// A lab of namespaces `a` and `b` joined by a veth `eth1` -- `eth1`.
fn pair(tag: &str) -> (Lab, NetNs, NetNs) {
    let mut lab = Lab::new(tag);
    let a = lab.netns("a");
    let b = lab.netns("b");
    lab.veth("a", "eth1", "b", "eth1");
    (lab, a, b)
}

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = MAC_DST.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An Ethernet/IPv4/UDP frame of exactly `size` bytes (at least 46), 198.18.0.1 ->
/// 198.18.0.2, with `seq` at the start of the payload.
fn udp4(src: [u8; 6], size: usize, dport: u16, seq: u32) -> Vec<u8> {
    let mut f = eth(src, 0x0800);
    let ip_len = size - 14;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let udp_len = ip_len - 20;
    f.extend_from_slice(&(40000 + (seq % 1000) as u16).to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(size, 0x5a);
    f
}

/// Ethernet/IPv6/UDP to port `dport`, 2001:2::1 -> 2001:2::2 (benchmarking space).
fn udp6(src: [u8; 6], size: usize, dport: u16, seq: u32) -> Vec<u8> {
    let mut f = eth(src, 0x86dd);
    let pl = (size - 14 - 40) as u16;
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&pl.to_be_bytes());
    f.extend_from_slice(&[17, 64]);
    f.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    f.extend_from_slice(&[0x9c, 0x40]);
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&pl.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(size, 0x6a);
    f
}

/// An ARP request for 198.18.0.2 from 198.18.0.1 (60 bytes with padding).
fn arp(src: [u8; 6]) -> Vec<u8> {
    let mut f = eth(src, 0x0806);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2]);
    f.resize(60, 0);
    f
}

/// `inner` (an untagged frame) with an 802.1Q tag (TPID 0x8100, `tci`) after the MACs.
fn tagged(inner: &[u8], tci: u16) -> Vec<u8> {
    let mut f = inner[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&inner[12..]);
    f
}

/// The mixed set of the brief: sizes 60..1514, IPv4/UDP (ports 9 and 7), IPv6/UDP,
/// ARP, a VLAN 42 frame carrying UDP port 9.
fn frame_set(src: [u8; 6]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (i, size) in [60usize, 61, 64, 100, 128, 512, 999, 1000, 1001, 1400, 1514]
        .into_iter()
        .enumerate()
    {
        v.push(udp4(src, size, if i % 2 == 0 { 9 } else { 7 }, i as u32));
    }
    v.push(udp6(src, 90, 9, 100));
    v.push(udp6(src, 1200, 53, 101));
    v.push(arp(src));
    v.push(tagged(&udp4(src, 200, 9, 102), 42));
    v.push(tagged(&udp4(src, 1510, 7, 103), (3 << 13) | 42));
    v
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    bytes: Vec<u8>,
    vlan: Option<(u16, u16)>,
    wire_len: u32,
    dir: Dir,
    ifindex: u32,
}

/// Reads until `want` of our frames arrived, then 300 ms more (to catch extras), or 5 s.
fn collect(cap: &mut Capture, want: usize) -> Vec<Got> {
    let mut got = Vec::new();
    let mut buf = Vec::new();
    let start = Instant::now();
    let mut enough_at: Option<Instant> = None;
    while start.elapsed() < Duration::from_secs(5) {
        if enough_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
            break;
        }
        if let Some(block) = cap.next_block(Some(Duration::from_millis(50))).unwrap() {
            for f in &block {
                f.copy_with_vlan(&mut buf);
                if ours(&buf) {
                    got.push(Got {
                        bytes: buf.clone(),
                        vlan: f.vlan(),
                        wire_len: f.wire_len(),
                        dir: f.direction(),
                        ifindex: f.ifindex(),
                    });
                }
            }
        }
        if got.len() >= want && enough_at.is_none() {
            enough_at = Some(Instant::now());
        }
    }
    got
}

fn send_all(tx: &Sender, frames: &[Vec<u8>]) {
    for f in frames {
        tx.send(f).unwrap();
    }
}

#[test]
fn a_capture_moves_to_another_thread() {
    fn is_send<T: Send>() {}
    is_send::<Capture>();
    is_send::<nsring_capture::Waker>();
}

fn ifindex(ns: &NetNs, name: &str) -> u32 {
    nsring_netns::link::get(ns, name).unwrap().index
}

#[test]
fn every_frame_arrives_whole_with_vlan_restored() {
    let (_lab, a, b) = pair("exact");
    let mut cap = Capture::open(&b, &CaptureConfig::new("eth1")).unwrap();
    assert_eq!(cap.ifindex(), ifindex(&b, "eth1"));
    let frames = frame_set(MAC_A);
    send_all(&Sender::open(&a, "eth1").unwrap(), &frames);
    let got = collect(&mut cap, frames.len());
    assert_eq!(got.len(), frames.len(), "count");
    for (g, f) in got.iter().zip(&frames) {
        assert_eq!(g.bytes, *f, "bytes (VLAN tag restored after the MACs)");
        assert_eq!(g.wire_len as usize, f.len());
        assert_eq!(g.dir, Dir::In);
        assert_eq!(g.ifindex, cap.ifindex());
        // the kernel took the tag out; the frame reports it
        let tci = (f[12..14] == [0x81, 0x00]).then(|| u16::from_be_bytes([f[14], f[15]]));
        assert_eq!(g.vlan, tci.map(|t| (0x8100, t)));
    }
    assert_eq!(got.iter().filter(|g| g.vlan.is_some()).count(), 2);
    let st = cap.stats().unwrap();
    assert_eq!(
        (st.packets, st.drops),
        (frames.len() as u64, 0),
        "only our frames were on the wire"
    );
}

#[test]
fn snaplen_cuts_the_copy_not_the_length() {
    let (_lab, a, b) = pair("snap");
    let mut cap = Capture::open(&b, &CaptureConfig::new("eth1").snaplen(64)).unwrap();
    let frames = frame_set(MAC_A);
    send_all(&Sender::open(&a, "eth1").unwrap(), &frames);
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen < frames.len() && Instant::now() < deadline {
        if let Some(block) = cap.next_block(Some(Duration::from_millis(50))).unwrap() {
            for f in &block {
                let sent = &frames[seen];
                let vlan = f.vlan().is_some();
                // the kernel copied at most 64 bytes of the untagged packet
                let kernel_len = sent.len() - if vlan { 4 } else { 0 };
                assert_eq!(f.data().len(), kernel_len.min(64), "frame {seen}");
                assert_eq!(f.wire_len() as usize, sent.len(), "frame {seen}");
                let mut buf = Vec::new();
                f.copy_with_vlan(&mut buf);
                assert_eq!(buf[..], sent[..buf.len()]);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, frames.len());
}

/// How many frames a filter should pass, decided here from what each frame is.
fn expected(filter: &str, frames: &[Vec<u8>]) -> usize {
    frames
        .iter()
        .filter(|f| {
            let vlan = f[12..14] == [0x81, 0x00];
            let (et, l3) = if vlan {
                (&f[16..18], 18)
            } else {
                (&f[12..14], 14)
            };
            let udp_dport = |off: usize| u16::from_be_bytes([f[off + 2], f[off + 3]]);
            let (is_udp, dport) = match et {
                [0x08, 0x00] => (f[l3 + 9] == 17, udp_dport(l3 + 20)),
                [0x86, 0xdd] => (f[l3 + 6] == 17, udp_dport(l3 + 40)),
                _ => (false, 0),
            };
            let vlan_id = if vlan {
                u16::from_be_bytes([f[14], f[15]]) & 0xfff
            } else {
                0
            };
            match filter {
                // live Linux semantics: the tag is not in the bytes the filter sees
                "udp port 9" => is_udp && dport == 9,
                "vlan" => vlan,
                "vlan 42 and udp" => vlan && vlan_id == 42 && is_udp,
                "not arp" => et != [0x08, 0x06],
                "greater 1000" => f.len() - if vlan { 4 } else { 0 } >= 1000,
                other => panic!("no expectation for {other}"),
            }
        })
        .count()
}

#[test]
fn filters_pass_exactly_the_matching_frames() {
    let (_lab, a, b) = pair("filter");
    let frames = frame_set(MAC_A);
    let tx = Sender::open(&a, "eth1").unwrap();
    for filter in [
        "udp port 9",
        "vlan",
        "vlan 42 and udp",
        "not arp",
        "greater 1000",
    ] {
        let mut cap = Capture::open(&b, &CaptureConfig::new("eth1").filter(filter)).unwrap();
        send_all(&tx, &frames);
        let want = expected(filter, &frames);
        assert!(
            want > 0 && want < frames.len(),
            "{filter}: a test that cannot fail"
        );
        let got = collect(&mut cap, want);
        assert_eq!(got.len(), want, "filter {filter:?}");
        // and the kernel counted only those (filtered before the ring)
        assert_eq!(
            cap.stats().unwrap().packets,
            want as u64,
            "filter {filter:?}"
        );
    }
}

#[test]
fn direction_in_and_out() {
    let (_lab, a, b) = pair("dir");
    let mut rx = Capture::open(&a, &CaptureConfig::new("eth1").direction(Direction::In)).unwrap();
    let mut tx_only =
        Capture::open(&a, &CaptureConfig::new("eth1").direction(Direction::Out)).unwrap();
    let mut both = Capture::open(&a, &CaptureConfig::new("eth1")).unwrap();
    let from_a = frame_set(MAC_A);
    let from_b: Vec<_> = (0..3).map(|i| udp4(MAC_B, 80, 9, i)).collect();
    send_all(&Sender::open(&a, "eth1").unwrap(), &from_a);
    send_all(&Sender::open(&b, "eth1").unwrap(), &from_b);

    let got = collect(&mut rx, from_b.len());
    assert_eq!(
        got.iter().map(|g| g.bytes.clone()).collect::<Vec<_>>(),
        from_b
    );
    assert!(got.iter().all(|g| g.dir == Dir::In));

    let got = collect(&mut tx_only, from_a.len());
    assert_eq!(
        got.iter().map(|g| g.bytes.clone()).collect::<Vec<_>>(),
        from_a
    );
    assert!(got.iter().all(|g| g.dir == Dir::Out));

    let got = collect(&mut both, from_a.len() + from_b.len());
    assert_eq!(got.len(), from_a.len() + from_b.len());
    assert_eq!(
        got.iter().filter(|g| g.dir == Dir::Out).count(),
        from_a.len()
    );
}

fn fanout_group(salt: u16) -> u16 {
    (std::process::id() as u16)
        .wrapping_mul(7)
        .wrapping_add(salt)
}

#[test]
fn a_fanout_group_sees_every_packet_exactly_once() {
    let (_lab, a, b) = pair("fanout");
    let tx = Sender::open(&a, "eth1").unwrap();
    for (salt, mode) in [(1, FanoutMode::RoundRobin), (2, FanoutMode::Hash)] {
        let cfg = CaptureConfig::new("eth1").fanout(fanout_group(salt), mode);
        let mut c1 = Capture::open(&b, &cfg).unwrap();
        let mut c2 = Capture::open(&b, &cfg).unwrap();
        let n = 400u32;
        let frames: Vec<_> = (0..n)
            .map(|i| udp4(MAC_A, 60 + (i as usize % 50), 9, i))
            .collect();
        send_all(&tx, &frames);
        let g1 = collect(&mut c1, 1);
        let g2 = collect(&mut c2, 1);
        let mut seen = BTreeMap::new();
        for g in g1.iter().chain(&g2) {
            let seq = u32::from_be_bytes(g.bytes[42..46].try_into().unwrap());
            *seen.entry(seq).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), n as usize, "{mode}: every packet");
        assert!(seen.values().all(|&c| c == 1), "{mode}: exactly once");
        assert!(
            !g1.is_empty() && !g2.is_empty(),
            "{mode}: both members got packets ({} / {})",
            g1.len(),
            g2.len()
        );
        // a mismatched member is refused with a clear error
        if mode == FanoutMode::RoundRobin {
            let other = CaptureConfig::new("eth1").fanout(fanout_group(salt), FanoutMode::Cpu);
            let e = Capture::open(&b, &other).unwrap_err();
            assert!(matches!(e, Error::FanoutMismatch { .. }), "{e:?}");
        }
    }
}

#[test]
fn a_same_named_interface_elsewhere_is_not_seen() {
    let mut lab = Lab::new("iso");
    let names = ["a", "b", "c", "d"];
    let ns: Vec<NetNs> = names.iter().map(|n| lab.netns(n)).collect();
    lab.veth("a", "eth1", "b", "eth1");
    lab.veth("c", "eth1", "d", "eth1");
    let mut in_b = Capture::open(&ns[1], &CaptureConfig::new("eth1")).unwrap();
    let mut in_d = Capture::open(&ns[3], &CaptureConfig::new("eth1")).unwrap();
    let mut any_b = Capture::open(&ns[1], &CaptureConfig::new("any")).unwrap();
    let to_b = frame_set(MAC_A);
    let to_d: Vec<_> = (0..4).map(|i| udp4(MAC_B, 300, 9, i)).collect();
    send_all(&Sender::open(&ns[0], "eth1").unwrap(), &to_b);
    send_all(&Sender::open(&ns[2], "eth1").unwrap(), &to_d);
    let got_b = collect(&mut in_b, to_b.len());
    let got_d = collect(&mut in_d, to_d.len());
    assert_eq!(got_b.into_iter().map(|g| g.bytes).collect::<Vec<_>>(), to_b);
    assert_eq!(got_d.into_iter().map(|g| g.bytes).collect::<Vec<_>>(), to_d);
    // "any" in b sees b's frames on b's eth1, and none of d's
    let got_any = collect(&mut any_b, to_b.len());
    assert_eq!(got_any.len(), to_b.len());
    let b_eth1 = ifindex(&ns[1], "eth1");
    assert!(
        got_any
            .iter()
            .all(|g| g.ifindex == b_eth1 && g.bytes[6..12] == MAC_A)
    );
}

#[test]
fn errors_name_what_is_wrong() {
    let (lab, _a, b) = pair("errors");
    let nsname = lab.ns_name("b");
    let e = Capture::open(&b, &CaptureConfig::new("nope0")).unwrap_err();
    assert!(matches!(e, Error::NoInterface { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "no interface 'nope0' in namespace '{nsname}' (see 'nsring devs --netns {nsname}')"
        )
    );
    // eth1 exists in b but not in the caller's namespace under the lab's name
    let e = Capture::open(&b, &CaptureConfig::new("eth1").filter("udp port")).unwrap_err();
    match &e {
        Error::Filter { filter, message } => {
            assert_eq!(filter, "udp port");
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let e = Capture::open(&b, &CaptureConfig::new("bad/name")).unwrap_err();
    assert!(matches!(e, Error::InvalidInterfaceName { .. }), "{e:?}");
    let bad_ring = nsring_capture::RingGeometry {
        block_size: 12345,
        ..Default::default()
    };
    let e = Capture::open(&b, &CaptureConfig::new("eth1").ring(bad_ring)).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let e = NetNs::open_str(&lab.ns_name("never-made")).unwrap_err();
    assert!(matches!(e, nsring_netns::Error::NotFound { .. }), "{e:?}");
}

#[test]
fn a_waker_stops_a_blocked_reader_after_draining() {
    let (_lab, a, b) = pair("wake");
    let mut cap = Capture::open(&b, &CaptureConfig::new("eth1")).unwrap();
    let waker = cap.waker();
    let frames = frame_set(MAC_A);
    send_all(&Sender::open(&a, "eth1").unwrap(), &frames);
    // wake right away: the frames sit in a block the kernel has not closed yet, and the
    // drain must still deliver them
    waker.wake().unwrap();
    let start = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut n = 0;
        while !cap.finished() {
            if let Some(block) = cap.next_block(None).unwrap() {
                n += block.frames().filter(|f| ours(f.data())).count();
            }
            assert!(start.elapsed() < Duration::from_secs(3), "did not stop");
        }
        assert!(cap.next_block(None).unwrap().is_none());
        n
    });
    assert_eq!(reader.join().unwrap(), frames.len());

    // and an idle reader blocked without timeout returns when woken from another thread
    let mut cap = Capture::open(&b, &CaptureConfig::new("eth1")).unwrap();
    let waker = cap.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        waker.wake().unwrap();
    });
    let start = Instant::now();
    assert!(cap.next_block(None).unwrap().is_none());
    assert!(cap.stop_requested());
    assert!(start.elapsed() < Duration::from_secs(2));
    t.join().unwrap();
}

#[test]
fn stats_accumulate_across_reads() {
    let (_lab, a, b) = pair("stats");
    let cfg = CaptureConfig::new("eth1").filter("ether src 02:6e:73:72:74:0a");
    let mut cap = Capture::open(&b, &cfg).unwrap();
    let tx = Sender::open(&a, "eth1").unwrap();
    send_all(&tx, &frame_set(MAC_A)[..10]);
    assert_eq!(collect(&mut cap, 10).len(), 10);
    assert_eq!(cap.stats().unwrap().packets, 10);
    send_all(&tx, &frame_set(MAC_A)[..5]);
    send_all(&tx, &[udp4(MAC_B, 60, 9, 0)]); // filtered out in the kernel
    assert_eq!(collect(&mut cap, 5).len(), 5);
    let st = cap.stats().unwrap();
    assert_eq!((st.packets, st.drops, st.received()), (15, 0, 15));
}

#[test]
fn a_tiny_ring_overflows_and_the_drops_are_counted() {
    let (_lab, a, b) = pair("drops");
    let geo = nsring_capture::RingGeometry {
        block_size: 4096,
        block_count: 2,
        frame_size: 2048,
        block_timeout_ms: 1000,
    };
    let mut cap = Capture::open(&b, &CaptureConfig::new("eth1").ring(geo)).unwrap();
    let frames: Vec<_> = (0..200).map(|i| udp4(MAC_A, 1000, 9, i)).collect();
    send_all(&Sender::open(&a, "eth1").unwrap(), &frames);
    let got = collect(&mut cap, 1);
    let st = cap.stats().unwrap();
    assert_eq!(st.packets, 200);
    assert!(st.drops > 0, "{st:?}");
    assert_eq!(st.received() as usize, got.len(), "{st:?}");
}
