//! Interop with tcpdump and tshark: they read what we write with no warning, and we
//! read what they write. Both tools are required (installed by `cargo xtask`).

use std::path::Path;
use std::process::Command;

use nsring_pcap::{
    Direction, InterfaceDesc, InterfaceStats, LinkType, OwnedPacket, PcapHeader, PcapWriter,
    PcapngWriter, SectionDesc, TsResolution,
};

use crate::common::{TempDir, read_all, udp_frame};
use crate::fixtures::PCAPNG;

/// Run a tool; returns (stdout, stderr). Panics if it cannot start or fails.
fn run(tool: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(tool)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} (install it; cargo xtask does): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// tcpdump's stderr, less its "reading from file" banner; must be empty.
fn tcpdump_lines(path: &Path) -> Vec<String> {
    let p = path.to_str().unwrap();
    let (out, err) = run("tcpdump", &["-r", p, "-nn", "-c", "100000"]);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("reading from file"))
        .collect();
    assert!(warnings.is_empty(), "tcpdump warned on {p}: {warnings:?}");
    out.lines().map(str::to_owned).collect()
}

/// tshark's stderr, less the notice it prints when run as root; must be empty.
fn tshark_warnings(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| !l.starts_with("Running as user \"root\"") && !l.trim().is_empty())
        .collect()
}

/// tshark's field rows; it must not warn.
fn tshark_fields(path: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec![
        "-r",
        path.to_str().unwrap(),
        "-T",
        "fields",
        "-E",
        "separator=|",
    ];
    for f in fields {
        args.extend(["-e", f]);
    }
    let (out, err) = run("tshark", &args);
    let warnings = tshark_warnings(&err);
    assert!(
        warnings.is_empty(),
        "tshark warned on {}: {warnings:?}",
        path.display()
    );
    out.lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// Packets equal, reported without dumping kilobytes of data.
fn assert_same(got: &[OwnedPacket], want: &[OwnedPacket], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: packet count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (g.interface, g.ts_ns, g.orig_len, g.data.len(), g.direction),
            (w.interface, w.ts_ns, w.orig_len, w.data.len(), w.direction),
            "{what}: packet {i}"
        );
        assert!(g.data == w.data, "{what}: packet {i} bytes differ");
    }
}

/// "1700000000.000000001" from nanoseconds.
fn epoch(ts_ns: u64) -> String {
    format!("{}.{:09}", ts_ns / 1_000_000_000, ts_ns % 1_000_000_000)
}

const DESCRIPTIONS: [&str; 2] = [
    "netns nsrt-a (inode 4026532177)",
    "netns nsrt-b (inode 4026532178)",
];

/// 60 UDP frames over two interfaces, timestamps monotonic, directions varied; frames
/// longer than the 1000-byte snaplen are cut. (libpcap, hence tcpdump, refuses files
/// whose interfaces have different snaplens or link types: nsring writes one of each.)
fn write_ours_pcapng(path: &Path) -> Vec<OwnedPacket> {
    let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut w = PcapngWriter::new(
        f,
        &SectionDesc {
            os: Some("Linux".into()),
            ..SectionDesc::default()
        },
    )
    .unwrap();
    let snaplens = [1000u32, 1000];
    for (i, name) in ["veth0", "veth1"].iter().enumerate() {
        let id = w
            .add_interface(&InterfaceDesc {
                name: (*name).into(),
                description: Some(DESCRIPTIONS[i].into()),
                linktype: LinkType::ETHERNET,
                snaplen: snaplens[i],
                tsresol_nanos: true,
            })
            .unwrap();
        assert_eq!(id, i as u32);
    }
    let mut pkts = Vec::new();
    for k in 0..60u32 {
        let interface = k % 2;
        let len = 60 + (k as usize * 97) % 1455;
        let frame = udp_frame(len, k as u16);
        let cap = len.min(snaplens[interface as usize] as usize);
        let direction = [Some(Direction::Inbound), Some(Direction::Outbound), None][k as usize % 3];
        let ts_ns = 1_700_000_000_000_000_000 + u64::from(k) * 1_000_003;
        w.write_packet(interface, ts_ns, len as u32, &frame[..cap], direction)
            .unwrap();
        pkts.push(OwnedPacket {
            interface,
            ts_ns,
            orig_len: len as u32,
            data: frame[..cap].to_vec(),
            direction,
        });
    }
    for i in 0..2 {
        w.write_interface_stats(
            i,
            &InterfaceStats {
                ifrecv: Some(30),
                ifdrop: Some(0),
                osdrop: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
    }
    w.finish()
        .unwrap()
        .into_inner()
        .unwrap()
        .sync_all()
        .unwrap();
    pkts
}

fn write_ours_pcap(path: &Path, resolution: TsResolution) -> Vec<OwnedPacket> {
    let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut w = PcapWriter::new(
        f,
        PcapHeader {
            linktype: LinkType::ETHERNET,
            snaplen: 262_144,
            resolution,
        },
    )
    .unwrap();
    let mut pkts = Vec::new();
    for k in 0..40u32 {
        let len = 42 + (k as usize * 131) % 1473;
        let frame = udp_frame(len, k as u16);
        let ts_ns = 1_700_000_000_123_456_789 + u64::from(k) * 2_000_001;
        w.write_packet(ts_ns, len as u32, &frame).unwrap();
        let ts_ns = if resolution == TsResolution::Micros {
            ts_ns / 1000 * 1000
        } else {
            ts_ns
        };
        pkts.push(OwnedPacket {
            interface: 0,
            ts_ns,
            orig_len: len as u32,
            data: frame,
            direction: None,
        });
    }
    w.finish()
        .unwrap()
        .into_inner()
        .unwrap()
        .sync_all()
        .unwrap();
    pkts
}

#[test]
fn tools_read_our_pcapng() {
    let dir = TempDir::new("interop-ng");
    let path = dir.path().join("ours.pcapng");
    let pkts = write_ours_pcapng(&path);
    assert_eq!(tcpdump_lines(&path).len(), pkts.len());
    let rows = tshark_fields(
        &path,
        &[
            "frame.len",
            "frame.cap_len",
            "frame.interface_name",
            "frame.interface_description",
            "frame.packet_flags_direction",
            "frame.time_epoch",
        ],
    );
    assert_eq!(rows.len(), pkts.len());
    let mut last = [0u64; 2];
    for (row, p) in rows.iter().zip(&pkts) {
        let i = p.interface as usize;
        assert_eq!(row[0], p.orig_len.to_string());
        assert_eq!(row[1], p.data.len().to_string());
        assert_eq!(row[2], ["veth0", "veth1"][i]);
        assert_eq!(row[3], DESCRIPTIONS[i]);
        let dir = match p.direction {
            None => "",
            Some(Direction::Inbound) => "1",
            Some(Direction::Outbound) => "2",
        };
        assert_eq!(
            row[4].trim_start_matches("0x").trim_start_matches('0'),
            dir,
            "direction of {row:?}"
        );
        assert_eq!(row[5], epoch(p.ts_ns));
        assert!(p.ts_ns > last[i], "timestamps monotonic per interface");
        last[i] = p.ts_ns;
    }
    // tshark's own packet bytes: rewriting our file as pcapng and reading it back with
    // our reader gives the same packets, interfaces and directions.
    let theirs = dir.path().join("theirs.pcapng");
    let (_, err) = run(
        "tshark",
        &[
            "-r",
            path.to_str().unwrap(),
            "-w",
            theirs.to_str().unwrap(),
            "-F",
            "pcapng",
        ],
    );
    assert!(tshark_warnings(&err).is_empty(), "{err}");
    let data = std::fs::read(&theirs).unwrap();
    let (r, got) = read_all(&data).unwrap();
    assert_same(&got, &pkts, "tshark -w pcapng");
    let names: Vec<_> = r
        .interfaces()
        .iter()
        .map(|i| i.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["veth0", "veth1"]);
    assert_eq!(
        r.interfaces()[1].description.as_deref(),
        Some(DESCRIPTIONS[1])
    );
}

#[test]
fn tools_read_our_pcap() {
    for resolution in [TsResolution::Nanos, TsResolution::Micros] {
        let dir = TempDir::new("interop-pcap");
        let path = dir.path().join("ours.pcap");
        let pkts = write_ours_pcap(&path, resolution);
        assert_eq!(tcpdump_lines(&path).len(), pkts.len());
        let rows = tshark_fields(&path, &["frame.len", "frame.cap_len", "frame.time_epoch"]);
        assert_eq!(rows.len(), pkts.len());
        for (row, p) in rows.iter().zip(&pkts) {
            assert_eq!(
                (row[0].as_str(), row[1].as_str()),
                (&*p.orig_len.to_string(), &*p.data.len().to_string())
            );
            assert_eq!(row[2], epoch(p.ts_ns), "{resolution:?}");
        }
        // What tcpdump -w and tshark -w write, we read back identically.
        let p = path.to_str().unwrap();
        let td = dir.path().join("tcpdump.pcap");
        let precision = match resolution {
            TsResolution::Nanos => "--time-stamp-precision=nano",
            TsResolution::Micros => "--time-stamp-precision=micro",
        };
        let (_, err) = run("tcpdump", &[precision, "-r", p, "-w", td.to_str().unwrap()]);
        assert!(
            err.lines().all(|l| l.starts_with("reading from file")),
            "{err}"
        );
        let ts = dir.path().join("tshark.pcapng");
        let (_, err) = run(
            "tshark",
            &["-r", p, "-w", ts.to_str().unwrap(), "-F", "pcapng"],
        );
        assert!(tshark_warnings(&err).is_empty(), "{err}");
        for theirs in [td, ts] {
            let (_, got) = read_all(&std::fs::read(&theirs).unwrap()).unwrap();
            assert_same(&got, &pkts, &theirs.display().to_string());
        }
    }
}

/// The hand-written two-section fixture (with a big-endian section, an SPB and an
/// unknown block) is valid for tshark too: same sections, lengths and timestamps as we
/// decode. (tshark 4.0 attributes packets of later sections to the interface with the
/// same id in the first section, so interface names are checked in section 1 only.)
#[test]
fn tshark_agrees_on_the_fixture() {
    let dir = TempDir::new("interop-fixture");
    let path = dir.path().join("fixture.pcapng");
    std::fs::write(&path, PCAPNG).unwrap();
    let rows = tshark_fields(
        &path,
        &[
            "frame.section_number",
            "frame.len",
            "frame.cap_len",
            "frame.time_epoch",
        ],
    );
    let want: Vec<Vec<String>> = [
        ["1", "64", "5", "2.125000000"],
        ["1", "3", "3", ""], // a simple packet block has no timestamp (ours reads it as 0)
        ["2", "4", "4", "4294.967298000"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    assert_eq!(rows, want);
    let (_, pkts) = read_all(PCAPNG).unwrap();
    let ours: Vec<String> = pkts.iter().map(|p| epoch(p.ts_ns)).collect();
    assert_eq!(ours, ["2.125000000", "0.000000000", "4294.967298000"]);
    let names = tshark_fields(&path, &["frame.interface_name"]);
    assert_eq!(names[..2], [vec!["e0".to_owned()], vec!["e0".to_owned()]]);
}
