//! The corpus of capture files from other writers (`tests/corpus`, see its MANIFEST and
//! make.sh): every file is read by nsring and compared, packet for packet, with libpcap
//! and tshark as its MANIFEST line says.

use std::path::{Path, PathBuf};

use crate::reference;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// (file, reference) from the MANIFEST; every capture file in the directory is listed.
fn manifest() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(corpus().join("MANIFEST")).expect("MANIFEST");
    let entries: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace();
            let file = w.next().expect("file").to_owned();
            let reference = w.next().expect("reference").to_owned();
            (file, reference)
        })
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus())
        .expect("corpus dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = entries.iter().map(|(f, _)| f.clone()).collect();
    listed.sort();
    assert_eq!(listed, on_disk, "MANIFEST and tests/corpus disagree");
    entries
}

#[test]
fn corpus_reads_like_libpcap_and_tshark() {
    let entries = manifest();
    assert!(entries.len() >= 30, "the corpus lost files");
    let mut total = 0usize;
    for (file, want) in &entries {
        let path = corpus().join(file);
        let ours = reference::nsring(&path);
        if want == "both" || want == "libpcap" {
            let lp = reference::libpcap(&path);
            reference::assert_same(&format!("{file} vs libpcap"), &ours.pkts, &lp.pkts);
            assert_eq!(
                ours.error.is_some(),
                lp.error.is_some(),
                "{file}: nsring ended with {:?}, libpcap with {:?}",
                ours.error,
                lp.error
            );
        }
        if want == "both" || want == "tshark" {
            assert!(ours.error.is_none(), "{file}: {:?}", ours.error);
            let t = reference::tshark(&path).unwrap_or_else(|| panic!("tshark reads {file}"));
            reference::assert_same(&format!("{file} vs tshark"), &ours.pkts, &t);
        }
        if want == "tshark" {
            // These are the files libpcap refuses; make sure it still does, or the
            // MANIFEST should say "both".
            let lp = reference::libpcap(&path);
            assert!(lp.error.is_some(), "{file}: libpcap reads it now");
        }
        assert!(
            ["both", "libpcap", "tshark"].contains(&want.as_str()),
            "{file}: unknown reference {want}"
        );
        total += ours.pkts.len();
    }
    assert!(total > 300, "only {total} packets in the corpus");
}
