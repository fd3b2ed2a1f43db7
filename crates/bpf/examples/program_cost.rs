//! What the counting program costs per packet, measured by the kernel: a filter compiled
//! for Ethernet, translated for TC ingress, run a million times on a 64-byte UDP frame
//! and a 1514-byte one with `BPF_PROG_TEST_RUN` (root).
//!
//! ```text
//! cargo run --release -p nsring-bpf --example program_cost -- 'udp port 9'
//! ```

use nsring_bpf::{Counters, Hook, Program};

fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[23] = 17;
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let classic = if filter.is_empty() {
        nsring_capture::filter::compile_dead("")?
    } else {
        nsring_capture::filter::compile_dead(&filter)?
    };
    let counters = Counters::create(false)?;
    let prog = Program::load(&filter, &classic, Hook::Ingress, None, &counters)?;
    println!(
        "filter '{filter}': {} classic instructions, {} eBPF instructions",
        classic.len(),
        prog.len()
    );
    for len in [64, 1514] {
        let mut best = u32::MAX;
        for _ in 0..5 {
            let (_, ns) = prog.test_run(&frame(len), 1_000_000)?;
            best = best.min(ns);
        }
        println!("  {len:>4}-byte frame: {best} ns per run (best of 5 x 1M runs)");
    }
    let v = counters.read()?;
    println!("  counted {} packets, {} bytes", v.packets, v.bytes);
    Ok(())
}
