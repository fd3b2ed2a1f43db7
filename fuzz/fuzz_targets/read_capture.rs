//! Fuzz the pcap/pcapng reader: any bytes must read to an end or an error, never a
//! panic, a hang or unbounded memory. The same harness runs on stable in
//! `crates/pcap/tests/pcap/fuzz_stable.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nsring_pcap::fuzzing::fuzz_read(data);
});
