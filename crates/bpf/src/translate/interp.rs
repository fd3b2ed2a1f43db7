//! Two interpreters for the translation's tests: classic BPF with Linux's semantics (the
//! reference) and the eBPF subset the translator emits, over a fake socket buffer whose
//! bytes can be split between a linear and a paged part.

use super::*;

/// A socket buffer as both programs see it.
#[derive(Debug, Clone)]
pub(super) struct Skb {
    /// The packet from its MAC header.
    pub(super) bytes: Vec<u8>,
    /// How many bytes are linear (direct packet access sees only these).
    pub(super) linear: usize,
    pub(super) pkt_type: u32,
    /// (TPID, TCI) of a tag the kernel took out.
    pub(super) vlan: Option<(u16, u16)>,
    /// `skb->protocol`, host order.
    pub(super) protocol: u16,
    pub(super) ifindex: u32,
    pub(super) mark: u32,
    pub(super) hash: u32,
}

impl Skb {
    pub(super) fn new(bytes: Vec<u8>) -> Skb {
        let protocol = u16::from_be_bytes([bytes[12], bytes[13]]);
        Skb {
            linear: bytes.len(),
            bytes,
            pkt_type: 0,
            vlan: None,
            protocol,
            ifindex: 3,
            mark: 0,
            hash: 0x1234,
        }
    }
}

const RANDOM: u32 = 4;

// ---------------------------------------------------------------------------------------
// Classic BPF, as the kernel runs it on a packet socket
// ---------------------------------------------------------------------------------------

pub(super) fn classic(prog: &[SockFilter], s: &Skb) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let mut m = [0u32; 16];
    let load = |off: u32, n: usize| -> Option<u32> {
        let off = off as usize;
        let b = s.bytes.get(off..off.checked_add(n)?)?;
        Some(b.iter().fold(0u32, |acc, &v| acc << 8 | u32::from(v)))
    };
    loop {
        let f = prog[pc];
        pc += 1;
        let n = match f.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        match f.code {
            0x20 | 0x28 | 0x30 if f.k >= SKF_AD_OFF => {
                a = match f.k - SKF_AD_OFF {
                    ad::PROTOCOL => u32::from(s.protocol),
                    ad::PKTTYPE => s.pkt_type,
                    ad::IFINDEX => s.ifindex,
                    ad::MARK => s.mark,
                    ad::RXHASH => s.hash,
                    ad::VLAN_TAG => s.vlan.map_or(0, |v| u32::from(v.1)),
                    ad::VLAN_TAG_PRESENT => u32::from(s.vlan.is_some()),
                    ad::VLAN_TPID => s.vlan.map_or(0, |v| u32::from(v.0)),
                    ad::ALU_XOR_X => a ^ x,
                    ad::CPU => 0,
                    ad::RANDOM => RANDOM,
                    other => panic!("ancillary {other}"),
                }
            }
            0x20 | 0x28 | 0x30 => match load(f.k, n) {
                Some(v) => a = v,
                None => return 0,
            },
            0x40 | 0x48 | 0x50 => match load(x.wrapping_add(f.k), n) {
                Some(v) => a = v,
                None => return 0,
            },
            0x80 => a = s.bytes.len() as u32,
            0x00 => a = f.k,
            0x60 => a = m[f.k as usize],
            0x01 => x = f.k,
            0x81 => x = s.bytes.len() as u32,
            0x61 => x = m[f.k as usize],
            0xb1 => match load(f.k, 1) {
                Some(v) => x = 4 * (v & 0x0f),
                None => return 0,
            },
            0x02 => m[f.k as usize] = a,
            0x03 => m[f.k as usize] = x,
            c if c & 0x07 == 0x04 => {
                let b = if c & 0x08 != 0 { x } else { f.k };
                a = match c & 0xf0 {
                    0x00 => a.wrapping_add(b),
                    0x10 => a.wrapping_sub(b),
                    0x20 => a.wrapping_mul(b),
                    0x30 if b == 0 => return 0,
                    0x30 => a / b,
                    0x40 => a | b,
                    0x50 => a & b,
                    0x60 => a.wrapping_shl(b),
                    0x70 => a.wrapping_shr(b),
                    0x80 => a.wrapping_neg(),
                    0x90 if b == 0 => return 0,
                    0x90 => a % b,
                    0xa0 => a ^ b,
                    o => panic!("alu {o:#x}"),
                }
            }
            0x05 => pc += f.k as usize,
            c if c & 0x07 == 0x05 => {
                let b = if c & 0x08 != 0 { x } else { f.k };
                let t = match c & 0xf0 {
                    0x10 => a == b,
                    0x20 => a > b,
                    0x30 => a >= b,
                    0x40 => a & b != 0,
                    o => panic!("jmp {o:#x}"),
                };
                pc += usize::from(if t { f.jt } else { f.jf });
            }
            0x06 => return f.k,
            0x16 => return a,
            0x07 => x = a,
            0x87 => a = x,
            c => panic!("classic {c:#x}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// eBPF, the subset the translator emits
// ---------------------------------------------------------------------------------------

pub(super) const COUNTERS_FD: i32 = 100;
pub(super) const SAMPLE_FD: i32 = 101;

/// A register's value: a number, or one of the pointers the verifier tracks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum V {
    S(u64),
    Ctx,
    Pkt(i64),
    End,
    Stack(i64),
    Map(i32, i64),
}

impl V {
    fn s(self) -> u64 {
        match self {
            V::S(v) => v,
            other => panic!("a pointer used as a number: {other:?}"),
        }
    }
}

/// The maps' contents, kept across runs.
#[derive(Debug, Default)]
pub(super) struct Maps {
    counters: [u8; 32],
    sample: [u8; 8],
}

impl Maps {
    pub(super) fn value(&self) -> Value {
        Value::from_bytes(&self.counters)
    }
    fn mem(&mut self, fd: i32) -> &mut [u8] {
        match fd {
            COUNTERS_FD => &mut self.counters,
            SAMPLE_FD => &mut self.sample,
            other => panic!("map fd {other}"),
        }
    }
}

fn ctx_load(s: &Skb, off: i16) -> V {
    let v = match off {
        skb::LEN => s.bytes.len() as u32,
        skb::PKT_TYPE => s.pkt_type,
        skb::MARK => s.mark,
        skb::QUEUE_MAPPING => 0,
        skb::PROTOCOL => u32::from(s.protocol.to_be()),
        skb::VLAN_PRESENT => u32::from(s.vlan.is_some()),
        skb::VLAN_TCI => s.vlan.map_or(0, |v| u32::from(v.1)),
        skb::VLAN_PROTO => s.vlan.map_or(0, |v| u32::from(v.0.to_be())),
        skb::IFINDEX => s.ifindex,
        skb::HASH => s.hash,
        skb::DATA => return V::Pkt(0),
        skb::DATA_END => return V::End,
        other => panic!("context offset {other}"),
    };
    V::S(u64::from(v))
}

fn read_le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |acc, &v| acc << 8 | u64::from(v))
}

pub(super) fn ebpf(prog: &[Insn], s: &Skb, maps: &mut Maps) -> i64 {
    let mut r = [V::S(0); 11];
    r[1] = V::Ctx;
    r[10] = V::Stack(0);
    let mut stack = [0u8; 512];
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = prog[pc];
        pc += 1;
        let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
        let class = i.code & 0x07;
        let size = match i.code & 0x18 {
            W => 4,
            H => 2,
            B => 1,
            _ => 8,
        };
        match class {
            ALU | ALU64 => {
                let op = i.code & 0xf0;
                let wide = class == ALU64;
                if op == END {
                    let v = r[dst].s();
                    r[dst] = V::S(match i.imm {
                        16 => u64::from((v as u16).swap_bytes()),
                        32 => u64::from((v as u32).swap_bytes()),
                        _ => v.swap_bytes(),
                    });
                    continue;
                }
                let b = if i.code & X != 0 {
                    r[src]
                } else if wide {
                    V::S(i.imm as i64 as u64)
                } else {
                    V::S(u64::from(i.imm as u32))
                };
                if op == MOV {
                    r[dst] = if wide { b } else { V::S(b.s() & 0xffff_ffff) };
                    continue;
                }
                if op == ADD && wide {
                    let by = b;
                    r[dst] = match (r[dst], by) {
                        (V::Pkt(o), V::S(v)) => V::Pkt(o + v as i64),
                        (V::Stack(o), V::S(v)) => V::Stack(o + v as i64),
                        (V::Map(f, o), V::S(v)) => V::Map(f, o + v as i64),
                        (V::S(a), V::S(v)) => V::S(a.wrapping_add(v)),
                        other => panic!("add {other:?}"),
                    };
                    continue;
                }
                let (a, b) = (r[dst].s(), b.s());
                let v = if wide {
                    match op {
                        SUB => a.wrapping_sub(b),
                        LSH => a << (b & 63),
                        MOD => a % b,
                        _ => panic!("alu64 {op:#x}"),
                    }
                } else {
                    let (a, b) = (a as u32, b as u32);
                    u64::from(match op {
                        ADD => a.wrapping_add(b),
                        SUB => a.wrapping_sub(b),
                        MUL => a.wrapping_mul(b),
                        DIV => a.checked_div(b).unwrap_or(0),
                        MOD => a.checked_rem(b).unwrap_or(a),
                        OR => a | b,
                        AND => a & b,
                        LSH => a << (b & 31),
                        RSH => a >> (b & 31),
                        NEG => a.wrapping_neg(),
                        XOR => a ^ b,
                        _ => panic!("alu32 {op:#x}"),
                    })
                };
                r[dst] = V::S(v);
            }
            LDX => {
                let off = i64::from(i.off);
                r[dst] = match r[src] {
                    V::Ctx => ctx_load(s, i.off),
                    V::Pkt(o) => {
                        let at = (o + off) as usize;
                        assert!(at + size <= s.linear, "unchecked packet access at {at}");
                        V::S(read_le(&s.bytes[at..at + size]))
                    }
                    V::Stack(o) => {
                        let at = (512 + o + off) as usize;
                        V::S(read_le(&stack[at..at + size]))
                    }
                    V::Map(fd, o) => {
                        let at = (o + off) as usize;
                        V::S(read_le(&maps.mem(fd)[at..at + size]))
                    }
                    other => panic!("load through {other:?}"),
                };
            }
            ST | STX => {
                let v = if class == ST {
                    i.imm as i64 as u64
                } else {
                    r[src].s()
                };
                let off = i64::from(i.off);
                let mem: &mut [u8] = match r[dst] {
                    V::Stack(o) => &mut stack[(512 + o + off) as usize..],
                    V::Map(fd, o) => &mut maps.mem(fd)[(o + off) as usize..],
                    other => panic!("store through {other:?}"),
                };
                if i.code & 0xe0 == ATOMIC {
                    assert_eq!(i.imm, ADD as i32 | FETCH);
                    let old = read_le(&mem[..8]);
                    mem[..8].copy_from_slice(&old.wrapping_add(v).to_le_bytes());
                    r[src] = V::S(old);
                } else {
                    mem[..size].copy_from_slice(&v.to_le_bytes()[..size]);
                }
            }
            LD => {
                let next = prog[pc];
                pc += 1;
                r[dst] = match src as u8 {
                    PSEUDO_MAP_FD => V::Map(i.imm, 0),
                    PSEUDO_MAP_VALUE => V::Map(i.imm, i64::from(next.imm)),
                    other => panic!("ld_imm64 src {other}"),
                };
            }
            JMP | JMP32 => {
                let op = i.code & 0xf0;
                match op {
                    EXIT => return r[0].s() as i64,
                    CALL => {
                        r[0] = match i.imm {
                            helper::MAP_LOOKUP_ELEM => {
                                assert_eq!(r[1], V::Map(COUNTERS_FD, 0));
                                V::Map(COUNTERS_FD, 0)
                            }
                            helper::GET_PRANDOM_U32 => V::S(u64::from(RANDOM)),
                            helper::GET_SMP_PROCESSOR_ID => V::S(0),
                            helper::SKB_LOAD_BYTES => {
                                let (off, n) = (r[2].s(), r[4].s() as usize);
                                let V::Stack(to) = r[3] else {
                                    panic!("load_bytes to {:?}", r[3])
                                };
                                match s.bytes.get(off as usize..off as usize + n) {
                                    Some(b) if off <= u64::from(u32::MAX) => {
                                        let at = (512 + to) as usize;
                                        stack[at..at + n].copy_from_slice(b);
                                        V::S(0)
                                    }
                                    _ => V::S(-14i64 as u64),
                                }
                            }
                            h => panic!("helper {h}"),
                        };
                        for reg in &mut r[1..=5] {
                            *reg = V::S(0xdead);
                        }
                        continue;
                    }
                    _ => {}
                }
                let taken = if op == JA {
                    true
                } else {
                    let b = if i.code & X != 0 {
                        r[src]
                    } else {
                        V::S(i.imm as i64 as u64)
                    };
                    match (r[dst], b) {
                        (V::Pkt(o), V::End) => {
                            assert_eq!(op, JGT);
                            o > s.linear as i64
                        }
                        // a map lookup's result, tested for NULL
                        (V::Map(..), V::S(0)) => op == JNE,
                        (V::S(a), V::S(b)) => {
                            let (a, b) = if class == JMP32 {
                                (a & 0xffff_ffff, b & 0xffff_ffff)
                            } else {
                                (a, b)
                            };
                            match op {
                                JEQ => a == b,
                                JNE => a != b,
                                JGT => a > b,
                                JGE => a >= b,
                                JSET => a & b != 0,
                                _ => panic!("jmp {op:#x}"),
                            }
                        }
                        other => panic!("compare {other:?}"),
                    }
                };
                if taken {
                    pc = (pc as i64 + i64::from(i.off)) as usize;
                }
            }
            c => panic!("class {c}"),
        }
    }
    panic!("the program did not end")
}
