//! The fuzz harness shared by the AFL++ target `pcap_read` (`fuzz/targets/pcap_read.rs`,
//! run by `cargo xtask fuzz`), the deterministic mutation test, and the replay of the
//! fuzzer's seeds and findings.

use crate::{CaptureReader, ReadError};

/// What one harness run saw.
#[derive(Debug)]
pub struct FuzzOutcome {
    /// Packets read before the end or the error.
    pub packets: usize,
    /// The error that ended the read, if any.
    pub error: Option<ReadError>,
}

/// Read `data` as a capture file to the end or the first error, checking the
/// reader's invariants. Panics only if an invariant is broken (a bug in this crate).
pub fn fuzz_read(data: &[u8]) -> FuzzOutcome {
    let mut r = match CaptureReader::open(data) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return FuzzOutcome {
                packets: 0,
                error: Some(e),
            };
        }
    };
    let mut packets = 0usize;
    let mut error = None;
    loop {
        match r.next_packet() {
            Ok(Some(p)) => {
                let interface = p.interface;
                let len = p.data.len();
                let max = r
                    .interfaces()
                    .get(interface as usize)
                    .map_or(0, |i| i.linktype.max_snaplen());
                assert!(
                    len <= max as usize,
                    "packet of {len} bytes exceeds its link type's maximum {max}"
                );
                assert!(
                    (interface as usize) < r.interfaces().len(),
                    "packet names an unknown interface"
                );
                packets += 1;
                // Every packet consumes at least 12 bytes of input (a pcapng block) or 16
                // (a pcap record), so the count is bounded by the input length.
                assert!(
                    packets <= data.len() / 12,
                    "more packets than the input can hold"
                );
            }
            Ok(None) => break,
            Err(e) => {
                // Offsets point inside the input (or at its end for truncation).
                if let Some(off) = e.offset() {
                    assert!(
                        off <= data.len() as u64,
                        "error offset {off} beyond input: {e}"
                    );
                }
                let _ = e.to_string();
                error = Some(e);
                break;
            }
        }
    }
    assert!(
        r.offset() <= data.len() as u64,
        "reader consumed more than the input"
    );
    // A fused reader stays at the end.
    assert!(
        matches!(r.next_packet(), Ok(None)),
        "reader not fused after the end"
    );
    FuzzOutcome { packets, error }
}
