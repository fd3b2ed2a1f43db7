//! Classic BPF (what libpcap compiles a tcpdump filter to) translated to eBPF, with the
//! counter updates added.
//!
//! The translation follows the kernel's own semantics for classic programs
//! (net/core/filter.c, `bpf_convert_filter` and `convert_bpf_extensions`): A and X are
//! 32-bit and start at 0, a packet load beyond the packet ends the program with "reject",
//! a division by X = 0 rejects, ancillary loads (`SKF_AD_*`) read the socket buffer's
//! metadata. What differs is how packet bytes are read: the kernel's classic loads
//! (`BPF_LD_ABS`) end a program that reads past the packet with the return value 0, which
//! at a TC hook means `TC_ACT_OK` and would stop the programs after ours; so loads are
//! done by direct packet access where the bytes are in the linear part, and with the
//! `bpf_skb_load_bytes` helper otherwise (paged data, or past the end: then "reject").
//!
//! Registers: `R6` the context (`struct __sk_buff *`), `R7` = A, `R8` = X; `R0`..`R5` are
//! scratch (helper calls clobber them). The stack holds the 16 scratch words `M[]`, an
//! 8-byte buffer for helper loads and the map key.
//!
//! Every accepted packet is counted in a per-CPU array map (one element, [`Value`]
//! layout): packets, and bytes as the capture ring reports them (`skb->len`, plus 4 for
//! a VLAN tag the kernel took out of the frame). With sampling, every RATE-th accepted
//! packet (counted across CPUs with an atomic add in an array map) is "kept" and counted
//! again; at a packet socket ([`Hook::Socket`]) only kept packets are accepted, which is
//! the return path a sampling capture needs.

use std::num::NonZeroU32;

pub use nsring_capture::sys::SockFilter;

use crate::insn::{self, *};

/// Where a program runs: what its packet type means and what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// TC ingress (TCX or clsact). Returns `TCX_NEXT` (= `TC_ACT_UNSPEC`) always, so the
    /// packet goes on to the next program unchanged.
    Ingress,
    /// TC egress. The packet type (`SKF_AD_PKTTYPE`) reads as `PACKET_OUTGOING`, as a
    /// packet socket sees the packet a moment later (at the egress hook `skb->pkt_type`
    /// is not set yet). Returns `TCX_NEXT`.
    Egress,
    /// A packet socket's filter (`SO_ATTACH_BPF`): returns `snaplen` for a kept packet
    /// and 0 for the others. Packet bytes are read with the helper only (socket filters
    /// have no direct packet access).
    Socket {
        /// What an accepted (kept) packet returns: the bytes the socket copies.
        snaplen: u32,
    },
}

/// The map descriptors the program refers to (they must stay open until it is loaded).
#[derive(Debug, Clone, Copy)]
pub struct MapFds {
    /// The per-CPU counters (one element of [`Value::SIZE`] bytes).
    pub counters: i32,
    /// The sampling sequence (an array map of one u64), if sampling.
    pub sample: Option<i32>,
}

/// What a program does besides filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Where the program runs.
    pub hook: Hook,
    /// Keep every RATE-th accepted packet (None: keep all).
    pub sample_every: Option<NonZeroU32>,
}

/// The layout of the per-CPU counter value: four little-endian u64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Value {
    /// Packets the filter accepted.
    pub packets: u64,
    /// Their bytes, as the capture ring counts them.
    pub bytes: u64,
    /// Packets kept by sampling (= `packets` without sampling).
    pub kept: u64,
    /// Their bytes.
    pub kept_bytes: u64,
}

impl Value {
    /// The value's size in bytes (per CPU).
    pub const SIZE: u32 = 32;
    const PACKETS: i16 = 0;
    const BYTES: i16 = 8;
    const KEPT: i16 = 16;
    const KEPT_BYTES: i16 = 24;

    /// Reads one CPU's value.
    pub fn from_bytes(b: &[u8]) -> Value {
        let u = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        Value {
            packets: u(0),
            bytes: u(8),
            kept: u(16),
            kept_bytes: u(24),
        }
    }
}

impl std::ops::Add for Value {
    type Output = Value;

    /// The sum of two values (per-CPU values add up to the totals).
    fn add(self, o: Value) -> Value {
        Value {
            packets: self.packets.wrapping_add(o.packets),
            bytes: self.bytes.wrapping_add(o.bytes),
            kept: self.kept.wrapping_add(o.kept),
            kept_bytes: self.kept_bytes.wrapping_add(o.kept_bytes),
        }
    }
}

/// Why a classic program could not be translated (`at`: the classic instruction's index).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// A valid classic instruction the in-kernel counter cannot do (the ring can).
    #[error("instruction {at} uses {what}, which the in-kernel counter cannot do")]
    Unsupported { at: usize, what: String },
    /// Not a valid classic program (the kernel would refuse it too).
    #[error("instruction {at} is not valid classic BPF: {why}")]
    Invalid { at: usize, why: String },
    /// The translation has a jump longer than eBPF's 16-bit offsets reach.
    #[error("the filter is too large for the in-kernel counter")]
    TooLarge,
}

// Classic BPF (include/uapi/linux/filter.h, bpf_common.h).
const C_LD: u16 = 0x00;
const C_LDX: u16 = 0x01;
const C_ST: u16 = 0x02;
const C_STX: u16 = 0x03;
const C_ALU: u16 = 0x04;
const C_JMP: u16 = 0x05;
const C_RET: u16 = 0x06;
const C_MISC: u16 = 0x07;
const C_IMM: u16 = 0x00;
const C_ABS: u16 = 0x20;
const C_IND: u16 = 0x40;
const C_MEM: u16 = 0x60;
const C_LEN: u16 = 0x80;
const C_MSH: u16 = 0xa0;
const C_X: u16 = 0x08;
const C_A: u16 = 0x10;
const C_TXA: u16 = 0x80;
/// `SKF_AD_OFF`: loads at or above this absolute offset read metadata.
const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
/// The lowest special negative offset (`SKF_LL_OFF`); anything from here up is special.
const SKF_NEG: u32 = (-0x20_0000i32) as u32;
/// Scratch memory words (`BPF_MEMWORDS`).
const MEMWORDS: u32 = 16;
/// `PACKET_OUTGOING` (include/uapi/linux/if_packet.h).
const PACKET_OUTGOING: u32 = 4;
/// `TCX_NEXT` and `TC_ACT_UNSPEC` (include/uapi/linux/bpf.h, pkt_cls.h).
const TCX_NEXT: i32 = -1;
/// The largest packet offset the verifier accepts for direct access (`MAX_PACKET_OFF`).
const MAX_PACKET_OFF: u32 = 0xffff;

/// `struct __sk_buff` offsets (include/uapi/linux/bpf.h).
mod skb {
    pub const LEN: i16 = 0;
    pub const PKT_TYPE: i16 = 4;
    pub const MARK: i16 = 8;
    pub const QUEUE_MAPPING: i16 = 12;
    pub const PROTOCOL: i16 = 16;
    pub const VLAN_PRESENT: i16 = 20;
    pub const VLAN_TCI: i16 = 24;
    pub const VLAN_PROTO: i16 = 28;
    pub const IFINDEX: i16 = 40;
    pub const HASH: i16 = 68;
    pub const DATA: i16 = 76;
    pub const DATA_END: i16 = 80;
}

/// Stack layout below the frame pointer.
const STACK_MEM: i16 = -64; // M[i] at -64 + 4 i
const STACK_BUF: i16 = -72; // 8 bytes for bpf_skb_load_bytes
const STACK_KEY: i16 = -76; // the map key (u32 0)

/// `SKF_AD_*` (include/uapi/linux/filter.h), as offsets above [`SKF_AD_OFF`].
mod ad {
    pub const PROTOCOL: u32 = 0;
    pub const PKTTYPE: u32 = 4;
    pub const IFINDEX: u32 = 8;
    pub const NLATTR: u32 = 12;
    pub const NLATTR_NEST: u32 = 16;
    pub const MARK: u32 = 20;
    pub const QUEUE: u32 = 24;
    pub const HATYPE: u32 = 28;
    pub const RXHASH: u32 = 32;
    pub const CPU: u32 = 36;
    pub const ALU_XOR_X: u32 = 40;
    pub const VLAN_TAG: u32 = 44;
    pub const VLAN_TAG_PRESENT: u32 = 48;
    pub const PAY_OFFSET: u32 = 52;
    pub const RANDOM: u32 = 56;
    pub const VLAN_TPID: u32 = 60;
}

/// A packet load's offset: constant, or X plus a constant.
#[derive(Debug, Clone, Copy)]
enum At {
    Abs(u32),
    Ind(u32),
}

struct Translator {
    a: Asm,
    spec: Spec,
    maps: MapFds,
    /// One label per classic instruction.
    labels: Vec<Label>,
    accept: Label,
    reject: Label,
}

/// Translates `classic` into an eBPF program for `spec.hook` that counts what it accepts
/// in the maps of `maps`.
pub fn translate(
    classic: &[SockFilter],
    spec: Spec,
    maps: MapFds,
) -> Result<Vec<Insn>, TranslateError> {
    let invalid = |at: usize, why: &str| TranslateError::Invalid {
        at,
        why: why.to_owned(),
    };
    if classic.is_empty() || classic.len() > nsring_capture::filter::MAX_INSNS {
        return Err(invalid(0, "a program has 1 to 4096 instructions"));
    }
    if classic.last().is_some_and(|l| l.code & 0x07 != C_RET) {
        return Err(invalid(
            classic.len() - 1,
            "the last instruction must return",
        ));
    }
    let mut a = Asm::new();
    let labels = (0..classic.len()).map(|_| a.label()).collect();
    let (accept, reject) = (a.label(), a.label());
    let mut t = Translator {
        a,
        spec,
        maps,
        labels,
        accept,
        reject,
    };
    t.prologue(classic);
    for (i, f) in classic.iter().enumerate() {
        t.a.bind(t.labels[i]);
        t.one(i, f, classic.len())?;
    }
    t.epilogue();
    t.a.finish()
        .map_err(|insn::TooFar| TranslateError::TooLarge)
}

impl Translator {
    fn prologue(&mut self, classic: &[SockFilter]) {
        self.a.emit(mov64_reg(R6, R1));
        self.a.emit(mov32_imm(R7, 0));
        self.a.emit(mov32_imm(R8, 0));
        // Scratch words that are read start at 0 (classic programs must store before they
        // load, but the verifier cannot know which path stored).
        let mut read = [false; MEMWORDS as usize];
        for f in classic {
            let mem_load = matches!(f.code & 0x07, C_LD | C_LDX) && f.code & 0xe0 == C_MEM;
            if mem_load && f.k < MEMWORDS {
                read[f.k as usize] = true;
            }
        }
        for (k, _) in read.iter().enumerate().filter(|(_, r)| **r) {
            self.a.emit(st_imm(W, R10, mem_slot(k as u32), 0));
        }
    }

    fn target(&self, at: usize, rel: u64, len: usize) -> Result<Label, TranslateError> {
        let to = at as u64 + 1 + rel;
        if to >= len as u64 {
            return Err(TranslateError::Invalid {
                at,
                why: format!("jump to {to}, past the end"),
            });
        }
        Ok(self.labels[to as usize])
    }

    fn one(&mut self, at: usize, f: &SockFilter, len: usize) -> Result<(), TranslateError> {
        let invalid = |why: &str| TranslateError::Invalid {
            at,
            why: why.to_owned(),
        };
        let size = (f.code & 0x18) as u8;
        let mode = f.code & 0xe0;
        match f.code & 0x07 {
            C_LD => match mode {
                C_ABS if f.k >= SKF_AD_OFF => self.ancillary(at, f.k - SKF_AD_OFF)?,
                C_ABS if f.k >= SKF_NEG => {
                    return Err(TranslateError::Unsupported {
                        at,
                        what: "a negative (SKF_NET_OFF/SKF_LL_OFF) offset".into(),
                    });
                }
                C_ABS | C_IND if size == DW => return Err(invalid("no 64-bit loads")),
                C_ABS => self.load(size, At::Abs(f.k), R7),
                C_IND => self.load(size, At::Ind(f.k), R7),
                C_LEN => self.a.emit(ldx(W, R7, R6, skb::LEN)),
                C_IMM => self.a.emit(mov32_imm(R7, f.k)),
                C_MEM if f.k < MEMWORDS => self.a.emit(ldx(W, R7, R10, mem_slot(f.k))),
                _ => return Err(invalid("unknown load")),
            },
            C_LDX => match mode {
                C_IMM => self.a.emit(mov32_imm(R8, f.k)),
                C_LEN => self.a.emit(ldx(W, R8, R6, skb::LEN)),
                C_MEM if f.k < MEMWORDS => self.a.emit(ldx(W, R8, R10, mem_slot(f.k))),
                C_MSH if size == B && f.k < SKF_NEG => {
                    // X = 4 * (P[k] & 0xf)
                    self.load(B, At::Abs(f.k), R8);
                    self.a.emit(alu32_imm(AND, R8, 0x0f));
                    self.a.emit(alu32_imm(LSH, R8, 2));
                }
                _ => return Err(invalid("unknown load into X")),
            },
            C_ST | C_STX if f.k < MEMWORDS => {
                let src = if f.code & 0x07 == C_ST { R7 } else { R8 };
                self.a.emit(stx(W, R10, mem_slot(f.k), src));
            }
            C_ST | C_STX => return Err(invalid("scratch word out of range")),
            C_ALU => self.alu(at, f)?,
            C_JMP => self.jump(at, f, len)?,
            C_RET => match f.code & 0x18 {
                0x00 if f.k == 0 => self.a.goto(self.reject), // RET K
                0x00 => self.a.goto(self.accept),
                C_A => {
                    self.a.jump(
                        Jump::Imm {
                            class: JMP32,
                            op: JEQ,
                            dst: R7,
                            imm: 0,
                        },
                        self.reject,
                    );
                    self.a.goto(self.accept);
                }
                _ => return Err(invalid("unknown return")),
            },
            C_MISC if f.code & 0xf8 == C_TXA => self.a.emit(mov32_reg(R7, R8)),
            C_MISC if f.code & 0xf8 == 0 => self.a.emit(mov32_reg(R8, R7)), // TAX
            _ => return Err(invalid("unknown instruction")),
        }
        Ok(())
    }

    fn alu(&mut self, at: usize, f: &SockFilter) -> Result<(), TranslateError> {
        let op = (f.code & 0xf0) as u8;
        let invalid = |why: &str| TranslateError::Invalid {
            at,
            why: why.to_owned(),
        };
        if !matches!(
            op,
            ADD | SUB | MUL | DIV | OR | AND | LSH | RSH | NEG | MOD | XOR
        ) {
            return Err(invalid("unknown ALU operation"));
        }
        if op == NEG {
            self.a.emit(neg32(R7));
        } else if f.code & C_X != 0 {
            if op == DIV || op == MOD {
                // A / 0 rejects the packet, as the kernel's classic programs do.
                self.a.jump(
                    Jump::Imm {
                        class: JMP32,
                        op: JEQ,
                        dst: R8,
                        imm: 0,
                    },
                    self.reject,
                );
            }
            self.a.emit(alu32_reg(op, R7, R8));
        } else {
            if (op == DIV || op == MOD) && f.k == 0 {
                return Err(invalid("division by the constant 0"));
            }
            if (op == LSH || op == RSH) && f.k >= 32 {
                return Err(invalid("shift by 32 or more"));
            }
            self.a.emit(alu32_imm(op, R7, f.k));
        }
        Ok(())
    }

    fn jump(&mut self, at: usize, f: &SockFilter, len: usize) -> Result<(), TranslateError> {
        let op = (f.code & 0xf0) as u8;
        if op == JA {
            let to = self.target(at, u64::from(f.k), len)?;
            self.a.goto(to);
            return Ok(());
        }
        if !matches!(op, JEQ | JGT | JGE | JSET) {
            return Err(TranslateError::Invalid {
                at,
                why: "unknown jump".into(),
            });
        }
        let yes = self.target(at, u64::from(f.jt), len)?;
        let no = self.target(at, u64::from(f.jf), len)?;
        if f.jt == f.jf {
            self.a.goto(yes);
            return Ok(());
        }
        let cond = if f.code & C_X != 0 {
            Jump::Reg {
                class: JMP32,
                op,
                dst: R7,
                src: R8,
            }
        } else {
            Jump::Imm {
                class: JMP32,
                op,
                dst: R7,
                imm: f.k as i32,
            }
        };
        self.a.jump(cond, yes);
        if f.jf != 0 {
            self.a.goto(no);
        }
        Ok(())
    }

    /// `A = metadata`, as net/core/filter.c `convert_bpf_extensions` reads it.
    fn ancillary(&mut self, at: usize, which: u32) -> Result<(), TranslateError> {
        let unsupported = |name: &str| TranslateError::Unsupported {
            at,
            what: format!("the ancillary load {name}"),
        };
        let a = &mut self.a;
        match which {
            ad::PROTOCOL => {
                a.emit(ldx(W, R7, R6, skb::PROTOCOL));
                a.emit(to_be(R7, 16));
            }
            ad::PKTTYPE if self.spec.hook == Hook::Egress => a.emit(mov32_imm(R7, PACKET_OUTGOING)),
            ad::PKTTYPE => a.emit(ldx(W, R7, R6, skb::PKT_TYPE)),
            ad::IFINDEX => a.emit(ldx(W, R7, R6, skb::IFINDEX)),
            ad::MARK => a.emit(ldx(W, R7, R6, skb::MARK)),
            ad::QUEUE => a.emit(ldx(W, R7, R6, skb::QUEUE_MAPPING)),
            ad::RXHASH => a.emit(ldx(W, R7, R6, skb::HASH)),
            ad::VLAN_TAG => a.emit(ldx(W, R7, R6, skb::VLAN_TCI)),
            ad::VLAN_TAG_PRESENT => a.emit(ldx(W, R7, R6, skb::VLAN_PRESENT)),
            ad::VLAN_TPID => {
                a.emit(ldx(W, R7, R6, skb::VLAN_PROTO));
                a.emit(to_be(R7, 16));
            }
            ad::ALU_XOR_X => a.emit(alu32_reg(XOR, R7, R8)),
            ad::CPU => {
                a.emit(call(helper::GET_SMP_PROCESSOR_ID));
                a.emit(mov32_reg(R7, R0));
            }
            ad::RANDOM => {
                a.emit(call(helper::GET_PRANDOM_U32));
                a.emit(mov32_reg(R7, R0));
            }
            ad::HATYPE => return Err(unsupported("SKF_AD_HATYPE")),
            ad::PAY_OFFSET => return Err(unsupported("SKF_AD_PAY_OFFSET")),
            ad::NLATTR | ad::NLATTR_NEST => return Err(unsupported("SKF_AD_NLATTR")),
            other => {
                return Err(TranslateError::Invalid {
                    at,
                    why: format!("unknown ancillary load {other}"),
                });
            }
        }
        Ok(())
    }

    /// `dst = ntoh(P[at .. at + size])`, rejecting the packet if those bytes are not in it.
    fn load(&mut self, size: u8, at: At, dst: Reg) {
        let n: u32 = match size {
            W => 4,
            H => 2,
            _ => 1,
        };
        let direct = !matches!(self.spec.hook, Hook::Socket { .. });
        let (slow, done) = (self.a.label(), self.a.label());
        let a = &mut self.a;
        match at {
            At::Abs(k) => {
                if direct && k + n <= MAX_PACKET_OFF {
                    a.emit(ldx(W, R2, R6, skb::DATA));
                    a.emit(ldx(W, R3, R6, skb::DATA_END));
                    a.emit(mov64_reg(R1, R2));
                    a.emit(alu64_imm(ADD, R1, (k + n) as i32));
                    a.jump(jgt_reg(R1, R3), slow);
                    let off = if k > i16::MAX as u32 {
                        a.emit(alu64_imm(ADD, R2, k as i32));
                        0
                    } else {
                        k as i16
                    };
                    a.emit(ldx(size, dst, R2, off));
                    swap(a, dst, n);
                    a.goto(done);
                }
                a.bind(slow);
                a.emit(mov32_imm(R2, k));
            }
            At::Ind(k) => {
                // off = X + k, wrapping at 32 bits as in classic BPF
                a.emit(mov32_reg(R5, R8));
                a.emit(alu32_imm(ADD, R5, k));
                if direct {
                    let limit = Jump::Imm {
                        class: JMP,
                        op: JGT,
                        dst: R5,
                        imm: (MAX_PACKET_OFF - n) as i32,
                    };
                    a.jump(limit, slow);
                    a.emit(ldx(W, R2, R6, skb::DATA));
                    a.emit(ldx(W, R3, R6, skb::DATA_END));
                    a.emit(alu64_reg(ADD, R2, R5));
                    a.emit(mov64_reg(R1, R2));
                    a.emit(alu64_imm(ADD, R1, n as i32));
                    a.jump(jgt_reg(R1, R3), slow);
                    a.emit(ldx(size, dst, R2, 0));
                    swap(a, dst, n);
                    a.goto(done);
                }
                a.bind(slow);
                a.emit(mov64_reg(R2, R5));
            }
        }
        // bpf_skb_load_bytes(skb, off, fp + STACK_BUF, n): paged data, or past the end
        a.emit(mov64_reg(R1, R6));
        a.emit(mov64_reg(R3, R10));
        a.emit(alu64_imm(ADD, R3, i32::from(STACK_BUF)));
        a.emit(mov64_imm(R4, n as i32));
        a.emit(call(helper::SKB_LOAD_BYTES));
        a.jump(
            Jump::Imm {
                class: JMP,
                op: JNE,
                dst: R0,
                imm: 0,
            },
            self.reject,
        );
        a.emit(ldx(size, dst, R10, STACK_BUF));
        swap(a, dst, n);
        a.bind(done);
    }

    /// Counting, sampling, and the return value.
    fn epilogue(&mut self) {
        let a = &mut self.a;
        a.bind(self.accept);
        // R0 = &value[this CPU]
        a.emit(st_imm(W, R10, STACK_KEY, 0));
        a.emit_all(ld_map_fd(R1, self.maps.counters));
        a.emit(mov64_reg(R2, R10));
        a.emit(alu64_imm(ADD, R2, i32::from(STACK_KEY)));
        a.emit(call(helper::MAP_LOOKUP_ELEM));
        a.jump(
            Jump::Imm {
                class: JMP,
                op: JEQ,
                dst: R0,
                imm: 0,
            },
            self.reject,
        );
        // R2 = skb->len + 4 * vlan_present: the bytes as the ring counts them
        a.emit(ldx(W, R2, R6, skb::LEN));
        a.emit(ldx(W, R3, R6, skb::VLAN_PRESENT));
        a.emit(alu64_imm(LSH, R3, 2));
        a.emit(alu64_reg(ADD, R2, R3));
        add_to(a, Value::PACKETS, None);
        add_to(a, Value::BYTES, Some(R2));
        let sample = self.spec.sample_every.filter(|n| n.get() > 1);
        if let (Some(every), Some(fd)) = (sample, self.maps.sample) {
            // seq = atomic_fetch_add(&sample[0], 1) + 1; keep when seq % every == 0
            a.emit_all(ld_map_value(R4, fd, 0));
            a.emit(mov64_imm(R1, 1));
            a.emit(atomic_fetch_add64(R4, 0, R1));
            a.emit(alu64_imm(ADD, R1, 1));
            a.emit(alu64_imm(MOD, R1, every.get() as i32));
            a.jump(
                Jump::Imm {
                    class: JMP,
                    op: JNE,
                    dst: R1,
                    imm: 0,
                },
                self.reject,
            );
        }
        add_to(a, Value::KEPT, None);
        add_to(a, Value::KEPT_BYTES, Some(R2));
        match self.spec.hook {
            Hook::Socket { snaplen } => {
                a.emit(mov32_imm(R0, snaplen));
                a.emit(exit());
                a.bind(self.reject);
                a.emit(mov64_imm(R0, 0));
            }
            Hook::Ingress | Hook::Egress => {
                a.bind(self.reject);
                a.emit(mov64_imm(R0, TCX_NEXT));
            }
        }
        a.emit(exit());
    }
}

/// `*(u64 *)(R0 + off) += by` (1 if None). Per-CPU values need no atomics.
fn add_to(a: &mut Asm, off: i16, by: Option<Reg>) {
    a.emit(ldx(DW, R1, R0, off));
    match by {
        Some(r) => a.emit(alu64_reg(ADD, R1, r)),
        None => a.emit(alu64_imm(ADD, R1, 1)),
    }
    a.emit(stx(DW, R0, off, R1));
}

fn jgt_reg(dst: Reg, src: Reg) -> Jump {
    Jump::Reg {
        class: JMP,
        op: JGT,
        dst,
        src,
    }
}

/// Network to host order for 2- and 4-byte loads.
fn swap(a: &mut Asm, dst: Reg, n: u32) {
    if n > 1 {
        a.emit(to_be(dst, 8 * n as i32));
    }
}

fn mem_slot(k: u32) -> i16 {
    STACK_MEM + 4 * k as i16
}

#[cfg(test)]
mod interp;
#[cfg(test)]
mod tests;
