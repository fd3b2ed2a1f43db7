//! What `nsring ls` shows of in-kernel counters (`nsring count --backend kernel`), and the
//! sweep of the clsact filters that killed counts left behind.

use nsring_netns::NetNs;
use nsring_registry::RecordView;
use nsring_registry::record::RecordKind;

/// True if the record is an in-kernel counter.
pub fn is_counter(r: &RecordView) -> bool {
    r.info.kind == RecordKind::KernelCounter
}

/// The RING column of an in-kernel counter: where its programs are (`ebpf tcx`).
pub fn ring_cell(r: &RecordView) -> Option<String> {
    let b = r.info.bpf.as_ref().filter(|_| is_counter(r))?;
    Some(format!("ebpf {}", b.attach))
}

/// Removes the filters of dead counts from `ns`'s clsact qdiscs, saying so on stderr.
pub fn sweep(ns: &NetNs, label: &str) {
    let Ok(swept) = nsring_bpf::tc::sweep(ns) else {
        return;
    };
    for s in swept {
        eprintln!(
            "nsring: namespace {label}: removed a leftover kernel counter of nsring PID {} (gone) from {} of if#{}{}",
            s.owner_pid,
            s.hook,
            s.ifindex,
            if s.qdisc_removed {
                ", and the clsact qdisc it had created"
            } else {
                ""
            }
        );
    }
}
