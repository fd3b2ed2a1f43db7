//! Write → read round trips and writer errors.

use std::io::{self, BufReader, BufWriter, Write};

use nsring_pcap::{
    CaptureReader, Direction, InterfaceDesc, InterfaceStats, LinkType, OwnedPacket, PcapHeader,
    PcapWriter, PcapngWriter, SectionDesc, TsResolution, WriteError,
};

use crate::common::{Rng, TempDir, read_all};

fn desc(name: &str, snaplen: u32, nanos: bool) -> InterfaceDesc {
    InterfaceDesc {
        name: name.into(),
        description: Some(format!("netns nsrt-{name} (inode 4026532177)")),
        linktype: LinkType::ETHERNET,
        snaplen,
        tsresol_nanos: nanos,
    }
}

/// Random packets for interfaces with the given snaplens (0 = none), timestamps
/// increasing, data within the snaplen, orig_len at least the data length.
fn packets(rng: &mut Rng, n: usize, snaplens: &[u32]) -> Vec<OwnedPacket> {
    let mut ts = 1_700_000_000_000_000_000u64;
    (0..n)
        .map(|_| {
            let interface = rng.below(snaplens.len()) as u32;
            ts += rng.below(5_000_000) as u64 + 1;
            let orig_len = rng.below(2000) as u32;
            let snap = snaplens[interface as usize];
            let caplen = if snap == 0 {
                orig_len
            } else {
                orig_len.min(snap)
            };
            let direction =
                [None, Some(Direction::Inbound), Some(Direction::Outbound)][rng.below(3)];
            OwnedPacket {
                interface,
                ts_ns: ts,
                orig_len,
                data: rng.bytes(caplen as usize),
                direction,
            }
        })
        .collect()
}

#[test]
fn pcapng_round_trip() {
    let mut rng = Rng::new(1);
    let snaplens = [262_144, 128, 0];
    let nanos = [true, true, false];
    let pkts = packets(&mut rng, 300, &snaplens);
    let section = SectionDesc {
        userappl: Some("nsring 0.1.0".into()),
        os: Some("Linux".into()),
        hardware: Some("x86_64".into()),
    };
    let mut w = PcapngWriter::new(Vec::new(), &section).unwrap();
    let names = ["veth0", "veth1", "lo"];
    for i in 0..3 {
        assert_eq!(
            w.add_interface(&desc(names[i], snaplens[i], nanos[i]))
                .unwrap(),
            i as u32
        );
    }
    for p in &pkts {
        w.write_packet(p.interface, p.ts_ns, p.orig_len, &p.data, p.direction)
            .unwrap();
    }
    let stats: Vec<InterfaceStats> = (0..3u64)
        .map(|i| InterfaceStats {
            ifrecv: Some(100 + i),
            ifdrop: Some(i),
            osdrop: Some(2 * i),
            ..Default::default()
        })
        .collect();
    for (i, s) in stats.iter().enumerate() {
        w.write_interface_stats(i as u32, s).unwrap();
    }
    let file = w.finish().unwrap();

    let (r, got) = read_all(&file).unwrap();
    let sec = &r.sections()[0];
    assert_eq!(
        (
            sec.userappl.as_deref(),
            sec.os.as_deref(),
            sec.hardware.as_deref()
        ),
        (Some("nsring 0.1.0"), Some("Linux"), Some("x86_64"))
    );
    let ifs = r.interfaces();
    assert_eq!(ifs.len(), 3);
    for i in 0..3 {
        assert_eq!(ifs[i].name.as_deref(), Some(names[i]));
        assert_eq!(ifs[i].description, desc(names[i], 0, true).description);
        assert_eq!(
            (ifs[i].linktype, ifs[i].snaplen),
            (LinkType::ETHERNET, snaplens[i])
        );
        assert_eq!(ifs[i].tsresol, if nanos[i] { 9 } else { 6 });
        // Start/end times were filled from the first/last packet of the interface.
        let on_if: Vec<&OwnedPacket> = pkts.iter().filter(|p| p.interface == i as u32).collect();
        let round = |t: u64| if nanos[i] { t } else { t / 1000 * 1000 };
        let first = round(on_if.first().unwrap().ts_ns);
        let last = round(on_if.last().unwrap().ts_ns);
        let want = InterfaceStats {
            ts_ns: Some(last),
            starttime_ns: Some(first),
            endtime_ns: Some(last),
            ..stats[i].clone()
        };
        assert_eq!(ifs[i].stats.as_ref(), Some(&want), "interface {i}");
    }
    assert_eq!(got.len(), pkts.len());
    for (g, p) in got.iter().zip(&pkts) {
        let want_ts = if nanos[p.interface as usize] {
            p.ts_ns
        } else {
            p.ts_ns / 1000 * 1000
        };
        assert_eq!(
            g,
            &OwnedPacket {
                ts_ns: want_ts,
                ..p.clone()
            }
        );
    }
}

#[test]
fn pcap_round_trip_both_resolutions() {
    for resolution in [TsResolution::Nanos, TsResolution::Micros] {
        let mut rng = Rng::new(2);
        let pkts = packets(&mut rng, 200, &[1500]);
        let header = PcapHeader {
            linktype: LinkType::ETHERNET,
            snaplen: 1500,
            resolution,
        };
        let mut w = PcapWriter::new(Vec::new(), header).unwrap();
        for p in &pkts {
            w.write_packet(p.ts_ns, p.orig_len, &p.data).unwrap();
        }
        let file = w.finish().unwrap();
        let (r, got) = read_all(&file).unwrap();
        assert_eq!(r.interfaces().len(), 1);
        assert_eq!(
            (r.interfaces()[0].linktype, r.interfaces()[0].snaplen),
            (LinkType::ETHERNET, 1500)
        );
        assert_eq!(got.len(), pkts.len());
        for (g, p) in got.iter().zip(&pkts) {
            let ts = match resolution {
                TsResolution::Nanos => p.ts_ns,
                TsResolution::Micros => p.ts_ns / 1000 * 1000,
            };
            assert_eq!(
                g,
                &OwnedPacket {
                    ts_ns: ts,
                    direction: None,
                    ..p.clone()
                }
            );
        }
    }
}

/// Through real files with a 1 MiB BufWriter, including a packet larger than the
/// reader's direct-read size (a D-Bus message: Ethernet allows only 256 KiB).
#[test]
fn pcapng_file_round_trip_large_packet() {
    let dir = TempDir::new("rt");
    let path = dir.path().join("big.pcapng");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    {
        let f = std::fs::File::create(&path).unwrap();
        let mut w = PcapngWriter::new(
            BufWriter::with_capacity(1 << 20, f),
            &SectionDesc::default(),
        )
        .unwrap();
        let id = w
            .add_interface(&InterfaceDesc {
                linktype: LinkType::DBUS,
                ..desc("big0", 0, true)
            })
            .unwrap();
        w.write_packet(id, 1, 300_000, &big, None).unwrap();
        w.write_packet(id, 2, 3, b"xyz", Some(Direction::Inbound))
            .unwrap();
        let bw = w.finish().unwrap();
        bw.into_inner().unwrap().sync_all().unwrap();
    }
    let mut r = CaptureReader::open(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    assert_eq!(
        r.sections()[0].userappl.as_deref(),
        Some(nsring_pcap::DEFAULT_USERAPPL)
    );
    let p = r.next_packet().unwrap().unwrap();
    assert_eq!((p.ts_ns, p.orig_len, p.data.len()), (1, 300_000, 300_000));
    assert!(p.data == &big[..]);
    let p = r.next_packet().unwrap().unwrap();
    assert_eq!(
        (p.ts_ns, p.data, p.direction),
        (2, &b"xyz"[..], Some(Direction::Inbound))
    );
    assert!(r.next_packet().unwrap().is_none());
}

#[test]
fn writer_rejects_bad_packets() {
    let mut w = PcapngWriter::new(Vec::new(), &SectionDesc::default()).unwrap();
    let id = w.add_interface(&desc("a", 4, true)).unwrap();
    assert!(matches!(
        w.write_packet(id + 1, 0, 1, &[0], None),
        Err(WriteError::UnknownInterface { interface: 1 })
    ));
    assert!(matches!(
        w.write_packet(id, 0, 9, &[0; 5], None),
        Err(WriteError::CaplenExceedsSnaplen {
            caplen: 5,
            snaplen: 4
        })
    ));
    assert!(matches!(
        w.write_packet(id, 0, 2, &[0; 3], None),
        Err(WriteError::CaplenExceedsOrigLen {
            caplen: 3,
            orig_len: 2
        })
    ));
    assert!(matches!(
        w.write_interface_stats(7, &InterfaceStats::default()),
        Err(WriteError::UnknownInterface { interface: 7 })
    ));
    let long = "x".repeat(70_000);
    assert!(matches!(
        w.add_interface(&desc(&long, 0, true)),
        Err(WriteError::OptionTooLong {
            option: "if_name",
            len: 70_000
        })
    ));
    // Rejected packets wrote nothing: the file still reads with no packets.
    let before = w.bytes_written();
    let unl = w.add_interface(&desc("b", 0, true)).unwrap();
    let huge = vec![0u8; nsring_pcap::MAX_BLOCK_LEN as usize];
    assert!(matches!(
        w.write_packet(unl, 0, u32::MAX, &huge, None),
        Err(WriteError::TooLarge { .. })
    ));
    assert!(w.bytes_written() > before);
    let file = w.finish().unwrap();
    let (r, pkts) = read_all(&file).unwrap();
    assert_eq!((r.interfaces().len(), pkts.len()), (2, 0));

    let mut p = PcapWriter::new(
        Vec::new(),
        PcapHeader {
            snaplen: 4,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        p.write_packet(0, 9, &[0; 5]),
        Err(WriteError::CaplenExceedsSnaplen { .. })
    ));
    assert!(matches!(
        p.write_packet(u64::MAX, 1, &[0]),
        Err(WriteError::TimestampOutOfRange { .. })
    ));
    let file = p.finish().unwrap();
    assert_eq!(read_all(&file).unwrap().1.len(), 0);
}

/// A sink that holds `cap` bytes, then fails with ENOSPC (after a partial write, like
/// a real full disk).
struct FullDisk {
    data: Vec<u8>,
    cap: usize,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.cap - self.data.len();
        if room == 0 {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let n = room.min(buf.len());
        self.data.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn full_disk_leaves_a_valid_prefix() {
    for cap in [200usize, 1000, 4099] {
        let mut w = PcapngWriter::new(
            FullDisk {
                data: Vec::new(),
                cap,
            },
            &SectionDesc::default(),
        )
        .unwrap();
        let id = w.add_interface(&desc("d0", 0, true)).unwrap();
        w.flush().unwrap();
        let mut written = 0u32;
        let err = loop {
            match w.write_packet(id, u64::from(written), 100, &[written as u8; 100], None) {
                Ok(()) => written += 1,
                Err(e) => break e,
            }
            w.flush().unwrap();
        };
        let WriteError::Io {
            valid_len,
            ref source,
            ..
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!(source.raw_os_error(), Some(28));
        assert_eq!(valid_len, w.valid_len());
        assert!(
            err.to_string()
                .contains(&format!("valid up to byte {valid_len}")),
            "{err}"
        );
        // Later writes are refused, not half-applied.
        assert!(matches!(
            w.write_packet(id, 0, 1, &[0], None),
            Err(WriteError::Failed { .. })
        ));
        assert!(matches!(w.flush(), Err(WriteError::Failed { .. })));
        let data = &w.get_ref().data;
        assert_eq!(data.len(), cap, "the disk filled up");
        // The prefix up to valid_len holds every packet written before the failure.
        let (_, pkts) = read_all(&data[..valid_len as usize]).unwrap();
        assert_eq!(pkts.len() as u32, written);
        for (i, p) in pkts.iter().enumerate() {
            assert_eq!((p.ts_ns, p.data.len(), p.data[0]), (i as u64, 100, i as u8));
        }
    }
}
