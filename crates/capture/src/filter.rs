//! Filters: tcpdump syntax compiled by libpcap into classic BPF, then adapted so the
//! kernel does the work that would otherwise cost a copy: the accept value becomes the
//! snaplen (the kernel copies only that much into the ring, net/packet/af_packet.c
//! `tpacket_rcv`: `snaplen = min(skb->len, run_filter(...))`), and a direction test on
//! the packet type can be put in front.

use crate::config::Direction;
use crate::error::{Error, Result};
use crate::sys::{PACKET_OUTGOING, SockFilter};

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
/// `SKF_AD_OFF + SKF_AD_PKTTYPE` (include/uapi/linux/filter.h): loads `skb->pkt_type`.
const SKF_AD_PKTTYPE: u32 = (-0x1000i32) as u32 + 4;
/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// Checks a filter's syntax with libpcap for Ethernet, without opening anything. The
/// filter [`crate::Capture::open`] attaches is compiled again for the interface itself.
pub fn check(text: &str) -> Result<()> {
    compile_dead(text).map(drop)
}

fn filter_error(text: &str, e: pcap::Error) -> Error {
    let message = match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    };
    Error::Filter {
        filter: text.to_owned(),
        message,
    }
}

fn convert(text: &str, prog: &pcap::BpfProgram) -> Result<Vec<SockFilter>> {
    prog.get_instructions()
        .iter()
        .map(|i| {
            parse_insn(&i.to_string()).ok_or_else(|| Error::Filter {
                filter: text.to_owned(),
                message: format!("libpcap produced an instruction this crate cannot read: {i}"),
            })
        })
        .collect()
}

/// Compiles for Ethernet on a "dead" handle (no socket): the semantics of a file read back
/// (`vlan` tests the bytes, not the tag the kernel took out).
pub fn compile_dead(text: &str) -> Result<Vec<SockFilter>> {
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).map_err(|e| filter_error(text, e))?;
    let prog = dead
        .compile(text, true)
        .map_err(|e| filter_error(text, e))?;
    convert(text, &prog)
}

/// Compiles `text` as libpcap does for a live capture on `device` of the calling thread's
/// namespace (call it inside `NetNs::run`). A live handle gives the Linux semantics
/// users expect from tcpdump: `vlan` tests the tag the kernel took out of the packet
/// (SKF_AD_VLAN_TAG_PRESENT), `inbound`/`outbound` work. libpcap briefly opens its own
/// socket for this (not promiscuous, small buffer) and closes it; packets never reach
/// it that matter to us. If the live handle cannot be opened, compiles for Ethernet.
/// The in-kernel counter (`nsring-bpf`) translates this same program.
pub fn compile_for(text: &str, device: &str) -> Result<Vec<SockFilter>> {
    let live = pcap::Capture::from_device(device).and_then(|c| {
        c.snaplen(65535)
            .promisc(false)
            .buffer_size(1 << 17)
            .timeout(1)
            .open()
    });
    match live {
        Ok(cap) => {
            let prog = cap.compile(text, true).map_err(|e| filter_error(text, e))?;
            convert(text, &prog)
        }
        Err(_) => compile_dead(text),
    }
}

/// Reads one instruction in libpcap's `code jt jf k` decimal form (`tcpdump -ddd`).
pub fn parse_insn(s: &str) -> Option<SockFilter> {
    let mut it = s.split_ascii_whitespace();
    let code = it.next()?.parse().ok()?;
    let jt = it.next()?.parse().ok()?;
    let jf = it.next()?.parse().ok()?;
    let k = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some(SockFilter { code, jt, jf, k })
}

/// Makes every "accept" return `snaplen`, so the kernel copies at most that much.
pub(crate) fn set_snaplen(prog: &mut [SockFilter], snaplen: u32) {
    for insn in prog {
        if insn.code == BPF_RET_K && insn.k != 0 {
            insn.k = snaplen;
        }
    }
}

/// A program that accepts everything, `snaplen` bytes of it.
pub(crate) fn accept_all(snaplen: u32) -> Vec<SockFilter> {
    vec![SockFilter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: snaplen,
    }]
}

/// Puts a packet-type test in front of `prog`: only outgoing packets pass for
/// [`Direction::Out`], only the others for [`Direction::In`]. Relative jumps in `prog`
/// are unaffected by the prefix.
pub(crate) fn with_direction(prog: Vec<SockFilter>, dir: Direction) -> Vec<SockFilter> {
    let (jt, jf) = match dir {
        Direction::Both => return prog,
        // outgoing: skip the reject and run prog; else fall through to the reject
        Direction::Out => (1, 0),
        Direction::In => (0, 1),
    };
    let mut out = Vec::with_capacity(prog.len() + 3);
    out.push(SockFilter {
        code: BPF_LD_W_ABS,
        jt: 0,
        jf: 0,
        k: SKF_AD_PKTTYPE,
    });
    out.push(SockFilter {
        code: BPF_JEQ_K,
        jt,
        jf,
        k: u32::from(PACKET_OUTGOING),
    });
    out.push(SockFilter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: 0,
    });
    out.extend(prog);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions these tests need, with the
    /// packet type as the one ancillary load.
    fn run(prog: &[SockFilter], pkt: &[u8], pkttype: u8) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let mut mem = [0u32; 16];
        loop {
            let i = prog[pc];
            pc += 1;
            let class = i.code & 0x07;
            match (class, i.code) {
                (0x06, 0x06) => return i.k,
                (0x06, 0x16) => return a,
                (0x00, 0x20) if i.k == SKF_AD_PKTTYPE => a = u32::from(pkttype),
                (0x00, 0x20) => {
                    a = u32::from_be_bytes(pkt[i.k as usize..][..4].try_into().unwrap())
                }
                (0x00, 0x28) => {
                    a = u32::from(u16::from_be_bytes(
                        pkt[i.k as usize..][..2].try_into().unwrap(),
                    ))
                }
                (0x00, 0x30) => a = u32::from(pkt[i.k as usize]),
                (0x00, 0x48) => {
                    a = u32::from(u16::from_be_bytes(
                        pkt[(x + i.k) as usize..][..2].try_into().unwrap(),
                    ))
                }
                (0x00, 0x50) => a = u32::from(pkt[(x + i.k) as usize]),
                (0x00, 0x00) => a = i.k,
                (0x00, 0x60) => a = mem[i.k as usize],
                (0x01, 0xb1) => x = 4 * u32::from(pkt[i.k as usize] & 0x0f),
                (0x01, 0x01) => x = i.k,
                (0x02, 0x02) => mem[i.k as usize] = a,
                (0x03, 0x03) => mem[i.k as usize] = x,
                (0x04, 0x54) => a &= i.k,
                (0x05, 0x05) => pc += i.k as usize,
                (0x05, 0x15) | (0x05, 0x25) | (0x05, 0x35) | (0x05, 0x45) => {
                    let t = match i.code {
                        0x15 => a == i.k,
                        0x25 => a > i.k,
                        0x35 => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += usize::from(if t { i.jt } else { i.jf });
                }
                _ => panic!("instruction {:#x} not in the test interpreter", i.code),
            }
        }
    }

    fn udp4(dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        p[14] = 0x45;
        p[23] = 17;
        p[36..38].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn instructions_round_trip_through_libpcap_text() {
        assert_eq!(
            parse_insn("40 0 0 12"),
            Some(SockFilter {
                code: 40,
                jt: 0,
                jf: 0,
                k: 12
            })
        );
        assert_eq!(parse_insn("6 0 0 4294967295").unwrap().k, u32::MAX);
        assert_eq!(parse_insn("6 0 0"), None);
        assert_eq!(parse_insn("6 0 0 1 2"), None);
        assert_eq!(parse_insn("6 x 0 1"), None);
    }

    #[test]
    fn compiled_filter_matches_and_takes_the_snaplen() {
        let mut prog = compile_dead("udp port 9").unwrap();
        assert!(prog.iter().any(|i| i.code == BPF_RET_K && i.k == 65535));
        set_snaplen(&mut prog, 96);
        assert!(
            prog.iter()
                .all(|i| i.code != BPF_RET_K || i.k == 0 || i.k == 96)
        );
        assert_eq!(run(&prog, &udp4(9), 0), 96);
        assert_eq!(run(&prog, &udp4(10), 0), 0);
    }

    #[test]
    fn direction_prefix_tests_the_packet_type() {
        let base = accept_all(128);
        assert_eq!(
            run(&with_direction(base.clone(), Direction::Both), &udp4(9), 4),
            128
        );
        let out = with_direction(base.clone(), Direction::Out);
        assert_eq!(run(&out, &udp4(9), PACKET_OUTGOING), 128);
        assert_eq!(run(&out, &udp4(9), 0), 0);
        let inn = with_direction(base, Direction::In);
        assert_eq!(run(&inn, &udp4(9), PACKET_OUTGOING), 0);
        assert_eq!(run(&inn, &udp4(9), 3), 128);
        // combined with a real program, its jumps still land right
        let mut p = compile_dead("udp port 9").unwrap();
        set_snaplen(&mut p, 64);
        let p = with_direction(p, Direction::Out);
        assert_eq!(run(&p, &udp4(9), PACKET_OUTGOING), 64);
        assert_eq!(run(&p, &udp4(8), PACKET_OUTGOING), 0);
        assert_eq!(run(&p, &udp4(9), 0), 0);
    }

    #[test]
    fn syntax_errors_carry_libpcap_message() {
        match check("udp port nine nine") {
            Err(Error::Filter { filter, message }) => {
                assert_eq!(filter, "udp port nine nine");
                assert!(
                    message.contains("syntax error") || message.contains("unknown"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        check("not arp and greater 1000").unwrap();
    }
}
