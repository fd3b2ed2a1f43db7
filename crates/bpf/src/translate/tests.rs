//! The translation checked without a kernel: the classic program (the reference) and its
//! translation run by the interpreters of `interp.rs` on the same packets, with the packet
//! split between linear and paged bytes in several places so that both the direct loads
//! and the helper loads run. The kernel itself checks the same programs on live frames in
//! tests/translate_live.rs.

use super::interp::{COUNTERS_FD, Maps, SAMPLE_FD, Skb, classic, ebpf};
use super::*;
use etherparse::PacketBuilder;

// ---------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------

const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

fn udp4(dport: u16, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, dport)
        .write(&mut f, &vec![0x5a; payload])
        .unwrap();
    f
}

fn tcp4(dport: u16, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp(40000, dport, 1, 1000)
        .write(&mut f, &vec![0x5b; payload])
        .unwrap();
    f
}

fn udp6(dport: u16, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    let (a, b) = (
        [0x20, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0x20, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    );
    PacketBuilder::ethernet2(SRC, DST)
        .ipv6(a, b, 64)
        .udp(40000, dport)
        .write(&mut f, &vec![0x6a; payload])
        .unwrap();
    f
}

fn vlan_udp4(vid: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .single_vlan(etherparse::VlanId::try_new(vid).unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, dport)
        .write(&mut f, &vec![0x7a; payload])
        .unwrap();
    f
}

/// The frame with its VLAN tag taken out into metadata, as the kernel does on receive.
fn untag(f: &[u8]) -> Skb {
    let tpid = u16::from_be_bytes([f[12], f[13]]);
    let tci = u16::from_be_bytes([f[14], f[15]]);
    let mut b = f[..12].to_vec();
    b.extend_from_slice(&f[16..]);
    let mut s = Skb::new(b);
    s.vlan = Some((tpid, tci));
    s
}

/// IPv4 with options (IHL 6) and a fragment that is not the first.
fn odd_ipv4() -> Vec<Vec<u8>> {
    let mut opts = udp4(9, 20);
    opts[14] = 0x46;
    opts.splice(34..34, [1, 1, 1, 1]);
    let mut frag = udp4(9, 20);
    frag[20] = 0x00;
    frag[21] = 0x10; // fragment offset 16
    vec![opts, frag]
}

fn packets() -> Vec<Skb> {
    let mut raw = vec![
        udp4(9, 18),
        udp4(9, 1472),
        udp4(53, 100),
        udp4(10, 0),
        tcp4(80, 10),
        tcp4(9, 1000),
        udp6(9, 24),
        udp6(53, 1000),
        vlan_udp4(42, 9, 30),
        vlan_udp4(7, 53, 30),
    ];
    raw.extend(odd_ipv4());
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&SRC);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp.resize(60, 0);
    raw.push(arp);
    // too short for most loads
    raw.push(udp4(9, 0)[..20].to_vec());
    raw.push(udp4(9, 0)[..14].to_vec());
    let mut out: Vec<Skb> = raw.iter().cloned().map(Skb::new).collect();
    // live semantics: tags taken out
    out.push(untag(&vlan_udp4(42, 9, 30)));
    out.push(untag(&vlan_udp4(42, 53, 1100)));
    out.push(untag(&vlan_udp4(7, 9, 30)));
    // other packet types
    for (i, s) in out.clone().into_iter().enumerate().take(4) {
        let mut s = s;
        s.pkt_type = [1, 2, 3, 4][i];
        out.push(s);
    }
    out
}

fn spec(hook: Hook) -> Spec {
    Spec {
        hook,
        sample_every: None,
    }
}

const MAPS: MapFds = MapFds {
    counters: COUNTERS_FD,
    sample: Some(SAMPLE_FD),
};

/// Runs `classic` and its translation for `hook` on every packet, with the linear part
/// cut at several places, and checks verdicts and counters agree.
fn agree(name: &str, classic_prog: &[SockFilter], hook: Hook) {
    let prog = translate(classic_prog, spec(hook), MAPS).unwrap();
    for s in packets() {
        for linear in [s.bytes.len(), 0, 14, 34, 40] {
            let mut s = s.clone();
            s.linear = linear.min(s.bytes.len());
            let mut reference = s.clone();
            if hook == Hook::Egress {
                // at egress the packet socket sees PACKET_OUTGOING, the hook does not
                if s.pkt_type != 0 {
                    continue;
                }
                reference.pkt_type = PACKET_OUTGOING;
            }
            let want = classic(classic_prog, &reference) != 0;
            let mut maps = Maps::default();
            let ret = ebpf(&prog, &s, &mut maps);
            let v = maps.value();
            let wire = s.bytes.len() as u64 + if s.vlan.is_some() { 4 } else { 0 };
            let what = format!("{name} at {hook:?} on {s:?}");
            match hook {
                Hook::Socket { snaplen } => {
                    assert_eq!(ret, if want { i64::from(snaplen) } else { 0 }, "{what}");
                }
                _ => assert_eq!(ret as i32, TCX_NEXT, "{what}"),
            }
            assert_eq!(v.packets, u64::from(want), "{what}");
            assert_eq!(v.bytes, if want { wire } else { 0 }, "{what}");
            assert_eq!((v.kept, v.kept_bytes), (v.packets, v.bytes), "{what}");
        }
    }
}

/// Programs as `tcpdump -ddd` prints them.
fn parse(text: &str) -> Vec<SockFilter> {
    text.split(';')
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| nsring_capture::filter::parse_insn(l).unwrap())
        .collect()
}

/// What libpcap compiles on a live Linux handle (`tcpdump -i lo -ddd`): the VLAN tag and
/// packet type come from metadata.
const LIVE: &[(&str, &str)] = &[
    (
        "vlan 42 and udp",
        "35;0 0 0 0;2 0 0 0;2 0 0 1;48 0 0 4294963248;21 7 0 1;0 0 0 4;2 0 0 0;2 0 0 1;40 0 0 12;21 2 0 33024;21 1 0 34984;21 0 22 37120;48 0 0 4294963248;21 0 2 1;48 0 0 4294963244;5 0 0 1;40 0 0 14;84 0 0 4095;21 0 15 42;97 0 0 1;72 0 0 12;21 0 3 2048;97 0 0 0;80 0 0 23;21 8 9 17;21 0 8 34525;97 0 0 0;80 0 0 20;21 4 0 17;21 0 4 44;97 0 0 0;80 0 0 54;21 0 1 17;6 0 0 262144;6 0 0 0;",
    ),
    (
        "inbound",
        "4;40 0 0 4294963204;21 0 1 4;6 0 0 0;6 0 0 262144;",
    ),
    (
        "ifindex 3",
        "4;32 0 0 4294963208;21 0 1 3;6 0 0 262144;6 0 0 0;",
    ),
];

const FILTERS: &[&str] = &[
    "udp port 9",
    "vlan",
    "vlan 42 and udp",
    "not arp",
    "greater 1000",
    "less 100",
    "tcp[tcpflags] & tcp-syn != 0",
    "ip[6:2] & 0x1fff != 0",
    "ip6 and udp",
    "udp[8:4] = 0x5a5a5a5a",
    "ether[0] & 1 = 0",
    "len % 3 = 1",
    "ip[0] & 0xf > 5",
    "tcp port 80 or udp port 53",
    "ip[2:2] / 10 > 50",
    "ip[8] * 3 - 1 < 200",
    "ip[1] ^ 1 = 1",
    "ip[3] << 2 > 100",
];

#[test]
fn translated_filters_agree_with_classic_bpf() {
    for f in FILTERS {
        let prog = nsring_capture::filter::compile_dead(f).unwrap();
        for hook in [Hook::Ingress, Hook::Egress, Hook::Socket { snaplen: 96 }] {
            agree(f, &prog, hook);
        }
    }
    for (name, text) in LIVE {
        for hook in [Hook::Ingress, Hook::Egress, Hook::Socket { snaplen: 96 }] {
            agree(name, &parse(text), hook);
        }
    }
}

#[test]
fn division_by_x_zero_rejects() {
    // A = 10; X = 0; A /= X (or A %= X); return A
    let div_zero = parse("4;0 0 0 10;1 0 0 0;60 0 0 0;22 0 0 0;");
    let mod_zero = parse("4;0 0 0 10;1 0 0 0;156 0 0 0;22 0 0 0;");
    for prog in [&div_zero, &mod_zero] {
        agree("division", prog, Hook::Ingress);
    }
    let mut maps = Maps::default();
    let prog = translate(&div_zero, spec(Hook::Ingress), MAPS).unwrap();
    ebpf(&prog, &Skb::new(udp4(9, 10)), &mut maps);
    assert_eq!(maps.value().packets, 0);
}

#[test]
fn sampling_keeps_every_nth() {
    let prog = nsring_capture::filter::compile_dead("udp").unwrap();
    let every = NonZeroU32::new(3).unwrap();
    for hook in [Hook::Ingress, Hook::Socket { snaplen: 64 }] {
        let spec = Spec {
            hook,
            sample_every: Some(every),
        };
        let p = translate(&prog, spec, MAPS).unwrap();
        let mut maps = Maps::default();
        let mut kept_returns = 0;
        for i in 0..10 {
            let s = if i % 2 == 0 {
                Skb::new(udp4(9, 10))
            } else {
                Skb::new(tcp4(9, 10))
            };
            if ebpf(&p, &s, &mut maps) == 64 {
                kept_returns += 1;
            }
        }
        let v = maps.value();
        assert_eq!(v.packets, 5, "{hook:?}");
        assert_eq!(v.kept, 1, "the 3rd of 5 udp packets: {hook:?}");
        assert_eq!(v.kept_bytes, udp4(9, 10).len() as u64);
        if matches!(hook, Hook::Socket { .. }) {
            assert_eq!(kept_returns, 1);
        }
    }
}

#[test]
fn what_cannot_be_translated_is_named() {
    let hatype = parse("2;40 0 0 4294963228;6 0 0 1;");
    let e = translate(&hatype, spec(Hook::Ingress), MAPS).unwrap_err();
    assert!(e.to_string().contains("SKF_AD_HATYPE"), "{e}");
    assert!(matches!(e, TranslateError::Unsupported { at: 0, .. }));
    let past = parse("2;21 5 0 1;6 0 0 1;");
    assert!(matches!(
        translate(&past, spec(Hook::Ingress), MAPS),
        Err(TranslateError::Invalid { at: 0, .. })
    ));
    let div0 = parse("2;52 0 0 0;6 0 0 1;");
    assert!(matches!(
        translate(&div0, spec(Hook::Ingress), MAPS),
        Err(TranslateError::Invalid { .. })
    ));
    let no_ret = parse("1;0 0 0 1;");
    assert!(translate(&no_ret, spec(Hook::Ingress), MAPS).is_err());
    assert!(translate(&[], spec(Hook::Ingress), MAPS).is_err());
    let ll_off = parse("2;48 0 0 4292870144;6 0 0 1;");
    assert!(matches!(
        translate(&ll_off, spec(Hook::Ingress), MAPS),
        Err(TranslateError::Unsupported { .. })
    ));
}

#[test]
fn value_sums() {
    let mut b = [0u8; 32];
    b[0] = 2;
    b[8] = 100;
    b[16] = 1;
    b[24] = 50;
    let v = Value::from_bytes(&b);
    assert_eq!((v + v).bytes, 200);
    assert_eq!(v.kept_bytes, 50);
}
