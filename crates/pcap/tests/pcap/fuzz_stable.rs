//! The fuzz harness on stable: thousands of deterministic mutations of valid files.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nsring_pcap::fuzzing::fuzz_read;
use nsring_pcap::{
    Direction, InterfaceDesc, InterfaceStats, LinkType, PcapHeader, PcapWriter, PcapngWriter,
    SectionDesc, TsResolution,
};

use crate::common::Rng;
use crate::fixtures::{PCAP_BE_US, PCAP_LE_NS, PCAPNG};

fn seeds() -> Vec<Vec<u8>> {
    let mut w = PcapngWriter::new(Vec::new(), &SectionDesc::default()).unwrap();
    for (i, nanos) in [true, false].into_iter().enumerate() {
        let id = w
            .add_interface(&InterfaceDesc {
                name: format!("veth{i}"),
                description: Some("netns x".into()),
                linktype: LinkType::ETHERNET,
                snaplen: 64,
                tsresol_nanos: nanos,
            })
            .unwrap();
        for k in 0..4u32 {
            w.write_packet(
                id,
                u64::from(k) * 1001,
                70,
                &vec![k as u8; (k * 13 % 64) as usize],
                Some(Direction::Inbound),
            )
            .unwrap();
        }
        w.write_interface_stats(
            id,
            &InterfaceStats {
                ifrecv: Some(4),
                ifdrop: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let ng = w.finish().unwrap();
    let mut p = PcapWriter::new(
        Vec::new(),
        PcapHeader {
            snaplen: 64,
            resolution: TsResolution::Micros,
            ..Default::default()
        },
    )
    .unwrap();
    for k in 0..5u32 {
        p.write_packet(u64::from(k), 64, &vec![k as u8; (k * 11 % 64) as usize])
            .unwrap();
    }
    let pc = p.finish().unwrap();
    vec![
        PCAPNG.to_vec(),
        PCAP_LE_NS.to_vec(),
        PCAP_BE_US.to_vec(),
        ng,
        pc,
    ]
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    const INTERESTING: [u32; 12] = [
        0,
        1,
        4,
        8,
        11,
        12,
        13,
        28,
        0x7fff_ffff,
        0xffff_ffff,
        0x0100_0004,
        0x00ff_fffc,
    ];
    for _ in 0..=rng.below(3) {
        if data.is_empty() {
            data.push(rng.next_u64() as u8);
            continue;
        }
        match rng.below(6) {
            0 => {
                // bit flip
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                // truncation
                let n = rng.below(data.len() + 1);
                data.truncate(n);
            }
            2 | 3 => {
                // a length-like field: an interesting value, or +/- a little, at a 4-aligned spot
                let i = rng.below(data.len() / 4 + 1) * 4;
                if i + 4 <= data.len() {
                    let old = u32::from_le_bytes(data[i..i + 4].try_into().unwrap());
                    let v = match rng.below(3) {
                        0 => INTERESTING[rng.below(INTERESTING.len())],
                        1 => old.wrapping_add(4 * (rng.below(5) as u32)),
                        _ => old.wrapping_sub(4 * (rng.below(5) as u32)),
                    };
                    let b = if rng.below(2) == 0 {
                        v.to_le_bytes()
                    } else {
                        v.to_be_bytes()
                    };
                    data[i..i + 4].copy_from_slice(&b);
                }
            }
            4 => {
                // random byte
                let i = rng.below(data.len());
                data[i] = rng.next_u64() as u8;
            }
            _ => {
                // duplicate or drop a chunk
                let i = rng.below(data.len());
                let n = rng.below(32).min(data.len() - i);
                if rng.below(2) == 0 {
                    let chunk = data[i..i + n].to_vec();
                    data.splice(i..i, chunk);
                } else {
                    data.drain(i..i + n);
                }
            }
        }
    }
}

#[test]
fn fuzz_harness_survives_mutations() {
    let seeds = seeds();
    for s in &seeds {
        let out = fuzz_read(s);
        assert!(
            out.error.is_none() && out.packets > 0,
            "seed does not read cleanly: {:?}",
            out.error
        );
    }
    let start = Instant::now();
    let mut rng = Rng::new(0x5eed);
    let iterations = 50_000;
    let mut kinds = BTreeMap::new();
    for _ in 0..iterations {
        let mut data = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut data);
        let out = fuzz_read(&data);
        let kind = match &out.error {
            None => "ok".to_owned(),
            Some(e) => format!("{e:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or("")
                .to_owned(),
        };
        *kinds.entry(kind).or_insert(0u32) += 1;
    }
    // Every prefix of every seed, too.
    for s in &seeds {
        for n in 0..s.len() {
            fuzz_read(&s[..n]);
        }
    }
    let took = start.elapsed();
    eprintln!("{iterations} mutations in {took:?}: {kinds:?}");
    // The mutator reaches clean reads and most of the reader's error paths.
    assert!(kinds.len() >= 14, "too few outcomes reached: {kinds:?}");
    // The budget is 5 s; allow slack for a loaded CI machine running debug builds.
    assert!(took < Duration::from_secs(20), "fuzz run took {took:?}");
}

/// The AFL++ seeds and every input `cargo xtask fuzz` found a problem with (kept in
/// `fuzz/regressions/pcap_read/`) run through the harness.
#[test]
fn fuzz_inputs_replay() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("pcap_read")) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let _ = fuzz_read(&std::fs::read(e.path()).unwrap());
            n += 1;
        }
    }
    assert!(n >= 4, "seeds missing: {n}");
}
