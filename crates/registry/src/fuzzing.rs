//! Fuzz harnesses for the registry's parsers of outside bytes, shared by the AFL++
//! targets in `fuzz/` (`cargo xtask fuzz`) and the regression tests that replay what the
//! fuzzer found. Each takes any bytes, must not panic on them, and panics only where an
//! invariant of this crate is broken.

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};

use crate::diag::{PacketDiag, parse_datagram};
use crate::record::format;

/// A `packet_diag` datagram as the kernel would send it: it parses or errors, and what
/// parses serializes back to bytes that parse to the same messages.
pub fn fuzz_diag(data: &[u8]) -> usize {
    let Ok(messages) = parse_datagram(data) else {
        return 0;
    };
    let mut bytes = Vec::new();
    for m in &messages {
        let mut m: NetlinkMessage<PacketDiag> = m.clone();
        let at = bytes.len();
        m.finalize();
        bytes.resize(at + m.buffer_len(), 0);
        m.serialize(&mut bytes[at..]);
        bytes.resize((bytes.len() + 3) & !3, 0);
    }
    if bytes.is_empty() {
        return messages.len();
    }
    let again = parse_datagram(&bytes).expect("serialized messages parse again");
    let payloads = |ms: &[NetlinkMessage<PacketDiag>]| -> Vec<Option<PacketDiag>> {
        ms.iter()
            .map(|m| match &m.payload {
                NetlinkPayload::InnerMessage(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        payloads(&messages),
        payloads(&again),
        "a message changed in a round trip"
    );
    messages.len()
}

/// A record file's bytes: decoded or refused with a reason; what decodes encodes back to
/// a record that decodes to the same header, counters and configuration.
pub fn fuzz_record(data: &[u8]) -> bool {
    let Ok((header, counters, info)) = format::decode(data) else {
        return false;
    };
    let Ok(bytes) = format::encode(&header, &counters, &info) else {
        // Too large to write back (the reader is more lenient than the writer).
        return true;
    };
    let again = format::decode(&bytes).expect("an encoded record decodes");
    assert_eq!(
        again,
        (header, counters, info),
        "a record changed in a round trip"
    );
    true
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The fuzzer's seeds and every input it ever found a problem with (kept in
    /// `fuzz/regressions/<target>/` by `cargo xtask fuzz`) run through the harnesses.
    fn replay(target: &str, harness: impl Fn(&[u8])) -> usize {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut n = 0;
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                harness(&std::fs::read(e.path()).unwrap());
                n += 1;
            }
        }
        n
    }

    #[test]
    fn fuzz_inputs_replay() {
        assert!(
            replay("packet_diag", |d| {
                let _ = super::fuzz_diag(d);
            }) > 0
        );
        assert!(
            replay("registry_record", |d| {
                let _ = super::fuzz_record(d);
            }) > 0
        );
    }

    #[test]
    fn seeds_are_valid_inputs() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
        let d = std::fs::read(fuzz.join("packet_diag/kernel-datagram.bin")).unwrap();
        assert!(super::fuzz_diag(&d) >= 1, "the kernel's datagram parses");
        let r = std::fs::read(fuzz.join("registry_record/live-record.bin")).unwrap();
        assert!(super::fuzz_record(&r), "the live record decodes");
    }
}
