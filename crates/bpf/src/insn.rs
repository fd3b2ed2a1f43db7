//! eBPF instructions and a small assembler with forward labels.
//!
//! The encoding is the kernel's `struct bpf_insn` (include/uapi/linux/bpf.h): an 8-bit
//! opcode, the destination register in the low and the source register in the high nibble
//! of the second byte, a signed 16-bit offset and a signed 32-bit immediate. Opcode values
//! are those of include/uapi/linux/bpf_common.h and bpf.h; instruction semantics as in
//! Documentation/bpf/standardization/instruction-set.rst.

/// One eBPF instruction, laid out as `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insn {
    /// The opcode: class, size or operation, mode or source.
    pub code: u8,
    /// `dst_reg` in bits 0..4, `src_reg` in bits 4..8.
    pub regs: u8,
    /// Memory offset, or jump distance in instructions.
    pub off: i16,
    /// The immediate operand.
    pub imm: i32,
}

/// A register, `R0` ..= `R10` (`R10` is the read-only frame pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub use code::*;
pub use reg::*;

/// The registers. `R0` holds return values, `R1`..`R5` helper arguments (clobbered by
/// calls), `R6`..`R9` survive calls, `R10` is the frame pointer.
#[allow(missing_docs)]
pub mod reg {
    use super::Reg;
    pub const R0: Reg = Reg(0);
    pub const R1: Reg = Reg(1);
    pub const R2: Reg = Reg(2);
    pub const R3: Reg = Reg(3);
    pub const R4: Reg = Reg(4);
    pub const R5: Reg = Reg(5);
    pub const R6: Reg = Reg(6);
    pub const R7: Reg = Reg(7);
    pub const R8: Reg = Reg(8);
    pub const R9: Reg = Reg(9);
    pub const R10: Reg = Reg(10);
}

/// Opcode fields, named as in include/uapi/linux/bpf.h and bpf_common.h without the
/// `BPF_` prefix: classes, sizes, modes, the source operand, ALU and jump operations.
#[allow(missing_docs)]
pub mod code {
    // Instruction classes.
    pub const LD: u8 = 0x00;
    pub const LDX: u8 = 0x01;
    pub const ST: u8 = 0x02;
    pub const STX: u8 = 0x03;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const JMP32: u8 = 0x06;
    pub const ALU64: u8 = 0x07;

    // Sizes of loads and stores.
    pub const W: u8 = 0x00;
    pub const H: u8 = 0x08;
    pub const B: u8 = 0x10;
    pub const DW: u8 = 0x18;

    // Modes.
    pub const IMM: u8 = 0x00;
    pub const MEM: u8 = 0x60;
    pub const ATOMIC: u8 = 0xc0;

    // Source operand.
    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;

    // ALU operations.
    pub const ADD: u8 = 0x00;
    pub const SUB: u8 = 0x10;
    pub const MUL: u8 = 0x20;
    pub const DIV: u8 = 0x30;
    pub const OR: u8 = 0x40;
    pub const AND: u8 = 0x50;
    pub const LSH: u8 = 0x60;
    pub const RSH: u8 = 0x70;
    pub const NEG: u8 = 0x80;
    pub const MOD: u8 = 0x90;
    pub const XOR: u8 = 0xa0;
    pub const MOV: u8 = 0xb0;
    pub const END: u8 = 0xd0;
    /// With `END`: convert to big-endian (a byte swap on little-endian machines).
    pub const TO_BE: u8 = 0x08;

    // Jump operations.
    pub const JA: u8 = 0x00;
    pub const JEQ: u8 = 0x10;
    pub const JGT: u8 = 0x20;
    pub const JGE: u8 = 0x30;
    pub const JSET: u8 = 0x40;
    pub const JNE: u8 = 0x50;
    pub const CALL: u8 = 0x80;
    pub const EXIT: u8 = 0x90;
}

/// `BPF_FETCH` in an atomic instruction's immediate: the old value comes back in `src`.
pub const FETCH: i32 = 0x01;

/// `src_reg` of a 64-bit immediate load that names a map by file descriptor.
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of a 64-bit immediate load that points into an array map's value.
pub const PSEUDO_MAP_VALUE: u8 = 2;

/// Helper function numbers (`enum bpf_func_id` in include/uapi/linux/bpf.h).
#[allow(missing_docs)]
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const GET_PRANDOM_U32: i32 = 7;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const SKB_LOAD_BYTES: i32 = 26;
}

fn insn(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst.0 & 0x0f) | (src.0 << 4),
        off,
        imm,
    }
}

/// `dst = imm` (64-bit, the immediate sign-extended).
pub fn mov64_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | MOV | K, dst, R0, 0, imm)
}

/// `dst = src` (64-bit).
pub fn mov64_reg(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | MOV | X, dst, src, 0, 0)
}

/// `dst = (u32) imm`, upper half zeroed.
pub fn mov32_imm(dst: Reg, imm: u32) -> Insn {
    insn(ALU | MOV | K, dst, R0, 0, imm as i32)
}

/// `dst = (u32) src`, upper half zeroed.
pub fn mov32_reg(dst: Reg, src: Reg) -> Insn {
    insn(ALU | MOV | X, dst, src, 0, 0)
}

/// A 32-bit ALU operation with an immediate (`op` is one of [`ADD`] .. [`XOR`]).
pub fn alu32_imm(op: u8, dst: Reg, imm: u32) -> Insn {
    insn(ALU | op | K, dst, R0, 0, imm as i32)
}

/// A 32-bit ALU operation with a register.
pub fn alu32_reg(op: u8, dst: Reg, src: Reg) -> Insn {
    insn(ALU | op | X, dst, src, 0, 0)
}

/// A 64-bit ALU operation with a (sign-extended) immediate.
pub fn alu64_imm(op: u8, dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | op | K, dst, R0, 0, imm)
}

/// A 64-bit ALU operation with a register.
pub fn alu64_reg(op: u8, dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | op | X, dst, src, 0, 0)
}

/// `dst = -dst` (32-bit).
pub fn neg32(dst: Reg) -> Insn {
    insn(ALU | NEG, dst, R0, 0, 0)
}

/// `dst = htobe{bits}(dst)`: on little-endian machines a byte swap of the low `bits`,
/// the rest zeroed.
pub fn to_be(dst: Reg, bits: i32) -> Insn {
    insn(ALU | END | TO_BE, dst, R0, 0, bits)
}

/// `dst = *(size *)(src + off)`.
pub fn ldx(size: u8, dst: Reg, src: Reg, off: i16) -> Insn {
    insn(LDX | MEM | size, dst, src, off, 0)
}

/// `*(size *)(dst + off) = src`.
pub fn stx(size: u8, dst: Reg, off: i16, src: Reg) -> Insn {
    insn(STX | MEM | size, dst, src, off, 0)
}

/// `*(size *)(dst + off) = imm`.
pub fn st_imm(size: u8, dst: Reg, off: i16, imm: i32) -> Insn {
    insn(ST | MEM | size, dst, R0, off, imm)
}

/// `src = atomic_fetch_add((u64 *)(dst + off), src)`.
pub fn atomic_fetch_add64(dst: Reg, off: i16, src: Reg) -> Insn {
    insn(STX | ATOMIC | DW, dst, src, off, ADD as i32 | FETCH)
}

/// `dst = map` (two instructions): the kernel replaces the descriptor with the map.
pub fn ld_map_fd(dst: Reg, fd: i32) -> [Insn; 2] {
    [
        insn(LD | IMM | DW, dst, Reg(PSEUDO_MAP_FD), 0, fd),
        Insn::default(),
    ]
}

/// `dst = &map.value[0] + off` for an array map (two instructions).
pub fn ld_map_value(dst: Reg, fd: i32, off: i32) -> [Insn; 2] {
    [
        insn(LD | IMM | DW, dst, Reg(PSEUDO_MAP_VALUE), 0, fd),
        Insn {
            imm: off,
            ..Insn::default()
        },
    ]
}

/// `call helper`.
pub fn call(helper: i32) -> Insn {
    insn(JMP | CALL, R0, R0, 0, helper)
}

/// `exit` (returns `R0`).
pub fn exit() -> Insn {
    insn(JMP | EXIT, R0, R0, 0, 0)
}

/// A place in the program that jumps can name before it is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// A conditional or unconditional jump whose offset is filled in by [`Asm::finish`]: `class`
/// is [`JMP`] (64-bit) or [`JMP32`], `op` one of [`JEQ`] .. [`JNE`].
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy)]
pub enum Jump {
    /// `goto`.
    Always,
    /// `if (class) dst op imm goto`; `class` is [`JMP`] (64-bit) or [`JMP32`].
    Imm {
        class: u8,
        op: u8,
        dst: Reg,
        imm: i32,
    },
    /// `if (class) dst op src goto`.
    Reg {
        class: u8,
        op: u8,
        dst: Reg,
        src: Reg,
    },
}

/// The assembler: instructions in order, labels bound to positions, jumps fixed up at the end.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

/// A jump too far for the 16-bit offset of an eBPF jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFar;

impl Asm {
    /// An empty program.
    pub fn new() -> Asm {
        Asm::default()
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `l` to the next instruction.
    pub fn bind(&mut self, l: Label) {
        debug_assert!(self.labels[l.0].is_none(), "label bound twice");
        self.labels[l.0] = Some(self.insns.len());
    }

    /// Appends one instruction.
    pub fn emit(&mut self, i: Insn) {
        self.insns.push(i);
    }

    /// Appends instructions (a 64-bit immediate load is two).
    pub fn emit_all(&mut self, is: impl IntoIterator<Item = Insn>) {
        self.insns.extend(is);
    }

    /// Emits a jump to `to`.
    pub fn jump(&mut self, j: Jump, to: Label) {
        let i = match j {
            Jump::Always => insn(JMP | JA, R0, R0, 0, 0),
            Jump::Imm {
                class,
                op,
                dst,
                imm,
            } => insn(class | op | K, dst, R0, 0, imm),
            Jump::Reg {
                class,
                op,
                dst,
                src,
            } => insn(class | op | X, dst, src, 0, 0),
        };
        self.fixups.push((self.insns.len(), to));
        self.insns.push(i);
    }

    /// `goto to`.
    pub fn goto(&mut self, to: Label) {
        self.jump(Jump::Always, to);
    }

    /// The number of instructions so far.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// True before the first instruction.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Resolves the jumps. Panics on a label that was never bound (a bug of the caller).
    pub fn finish(mut self) -> Result<Vec<Insn>, TooFar> {
        for (at, l) in self.fixups {
            let target = self.labels[l.0].expect("jump to a label that was never bound");
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| TooFar)?;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_kernel_headers() {
        // BPF_MOV64_REG(BPF_REG_6, BPF_REG_1): code 0xbf, dst 6, src 1
        assert_eq!(
            mov64_reg(R6, R1),
            Insn {
                code: 0xbf,
                regs: 0x16,
                off: 0,
                imm: 0
            }
        );
        // BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_6, 76): 0x61
        assert_eq!(ldx(W, R2, R6, 76).code, 0x61);
        assert_eq!(ldx(W, R2, R6, 76).regs, 0x62);
        // BPF_LD_MAP_FD(BPF_REG_1, fd): 0x18 with src 1, then a zero instruction
        let [a, b] = ld_map_fd(R1, 7);
        assert_eq!((a.code, a.regs, a.imm), (0x18, 0x11, 7));
        assert_eq!(b, Insn::default());
        // BPF_EMIT_CALL, BPF_EXIT_INSN
        assert_eq!(call(26).code, 0x85);
        assert_eq!(exit().code, 0x95);
        // BPF_ENDIAN(BPF_TO_BE, reg, 16): 0xdc
        assert_eq!(to_be(R7, 16).code, 0xdc);
        // BPF_ATOMIC_OP(BPF_DW, BPF_ADD | BPF_FETCH, ...): 0xdb, imm 1
        let a = atomic_fetch_add64(R4, 0, R1);
        assert_eq!((a.code, a.imm, a.regs), (0xdb, 1, 0x14));
        // JMP32 | JEQ | K: 0x16
        assert_eq!(JMP32 | JEQ | K, 0x16);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn labels_resolve_forward_and_backward() {
        let mut a = Asm::new();
        let end = a.label();
        let top = a.label();
        a.bind(top);
        a.goto(end); // 0 -> 2: off 1
        a.emit(mov64_imm(R0, 0)); // 1
        a.bind(end);
        a.goto(top); // 2 -> 0: off -3
        let p = a.finish().unwrap();
        assert_eq!(p[0].off, 1);
        assert_eq!(p[2].off, -3);
    }

    #[test]
    fn far_jumps_are_refused() {
        let mut a = Asm::new();
        let end = a.label();
        a.goto(end);
        for _ in 0..40_000 {
            a.emit(mov64_imm(R0, 0));
        }
        a.bind(end);
        assert_eq!(a.finish(), Err(TooFar));
    }
}
