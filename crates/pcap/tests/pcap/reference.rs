//! The readers every file is compared with, packet for packet: nsring's, libpcap's
//! (through the `pcap` crate, nanosecond precision) and tshark's.

use std::io::BufReader;
use std::path::Path;
use std::process::Command;

use nsring_pcap::CaptureReader;

/// One packet as every reader can tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkt {
    /// Nanoseconds since the epoch.
    pub ts_ns: i128,
    pub caplen: u32,
    pub len: u32,
    pub data: Vec<u8>,
}

/// What a reader made of a file: the packets, then the error that ended it (if any).
#[derive(Debug)]
pub struct Read {
    pub pkts: Vec<Pkt>,
    pub error: Option<String>,
}

pub fn nsring(path: &Path) -> Read {
    let f = std::fs::File::open(path).expect("open corpus file");
    let mut r = match CaptureReader::open(BufReader::new(f)) {
        Ok(r) => r,
        Err(e) => {
            return Read {
                pkts: Vec::new(),
                error: Some(e.to_string()),
            };
        }
    };
    let mut pkts = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => pkts.push(Pkt {
                ts_ns: i128::from(p.ts_ns),
                caplen: p.data.len() as u32,
                len: p.orig_len,
                data: p.data.to_vec(),
            }),
            Ok(None) => return Read { pkts, error: None },
            Err(e) => {
                return Read {
                    pkts,
                    error: Some(e.to_string()),
                };
            }
        }
    }
}

/// libpcap's reading. Debian 12's libpcap 1.10.3 reads pcap seconds as signed 32-bit;
/// the format (and newer libpcap) says unsigned, so seconds are taken modulo 2^32.
pub fn libpcap(path: &Path) -> Read {
    let mut cap = match pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano) {
        Ok(c) => c,
        Err(e) => {
            return Read {
                pkts: Vec::new(),
                error: Some(e.to_string()),
            };
        }
    };
    let pcapng = std::fs::read(path)
        .map(|d| d.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]))
        .unwrap_or(false);
    let mut pkts = Vec::new();
    loop {
        match cap.next_packet() {
            Ok(p) => {
                let secs = i128::from(p.header.ts.tv_sec);
                let secs = if pcapng { secs } else { secs & 0xffff_ffff };
                pkts.push(Pkt {
                    ts_ns: secs * 1_000_000_000 + i128::from(p.header.ts.tv_usec),
                    caplen: p.header.caplen,
                    len: p.header.len,
                    data: p.data.to_vec(),
                });
            }
            Err(pcap::Error::NoMorePackets) => return Read { pkts, error: None },
            Err(e) => {
                return Read {
                    pkts,
                    error: Some(e.to_string()),
                };
            }
        }
    }
}

/// tshark's reading: time, lengths from `-T fields`, bytes from `--hexdump frames`.
/// `None` if tshark stops with an error.
pub fn tshark(path: &Path) -> Option<Vec<Pkt>> {
    let p = path.to_str().expect("utf-8 path");
    let fields = run_tshark(&[
        "-r",
        p,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "frame.time_epoch",
        "-e",
        "frame.cap_len",
        "-e",
        "frame.len",
    ])?;
    let hex = run_tshark(&["-r", p, "--hexdump", "frames", "--hexdump", "noascii"])?;
    let mut blocks = hex_blocks(&hex).into_iter();
    let mut pkts = Vec::new();
    for line in fields.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let [ts, caplen, len] = f.as_slice() else {
            panic!("tshark field row {line:?}");
        };
        let caplen: u32 = caplen.parse().expect("cap_len");
        let data = if caplen == 0 {
            Vec::new()
        } else {
            blocks.next().expect("a hex dump per packet")
        };
        pkts.push(Pkt {
            ts_ns: epoch_ns(ts),
            caplen,
            len: len.parse().expect("len"),
            data,
        });
    }
    Some(pkts)
}

fn run_tshark(args: &[&str]) -> Option<String> {
    let out = Command::new("tshark")
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .expect("run tshark (cargo xtask installs it)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// "1796001258.076524781" (or negative) → nanoseconds; empty (a simple packet block has
/// no time) → 0, as nsring and libpcap report it.
fn epoch_ns(s: &str) -> i128 {
    if s.is_empty() {
        return 0;
    }
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let mut frac = frac.to_owned();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    let v =
        secs.parse::<i128>().expect("secs") * 1_000_000_000 + frac.parse::<i128>().expect("frac");
    if neg { -v } else { v }
}

/// The frames of `tshark --hexdump frames --hexdump noascii`: "0000  ff ff …" lines,
/// a new frame at each offset 0000.
fn hex_blocks(out: &str) -> Vec<Vec<u8>> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for line in out.lines() {
        let Some((off, rest)) = line.split_once("  ") else {
            continue;
        };
        if off.len() < 4 || !off.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        if off.chars().all(|c| c == '0') {
            blocks.push(Vec::new());
        }
        let Some(cur) = blocks.last_mut() else {
            continue;
        };
        cur.extend(
            rest.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("hex byte")),
        );
    }
    blocks
}

/// Assert two readings agree packet for packet, naming the first difference.
pub fn assert_same(what: &str, got: &[Pkt], want: &[Pkt]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (g.ts_ns, g.caplen, g.len),
            (w.ts_ns, w.caplen, w.len),
            "{what}: packet {i}: (time ns, captured, wire length) differ"
        );
        assert!(g.data == w.data, "{what}: packet {i}: bytes differ");
    }
    assert_eq!(got.len(), want.len(), "{what}: packet count");
}
