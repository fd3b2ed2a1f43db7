//! pcapng writer.

use std::io::Write;

use crate::bytes::{pad_to_4, put_u16, put_u32, put_u64};
use crate::{
    DEFAULT_USERAPPL, Direction, InterfaceStats, LinkType, MAX_BLOCK_LEN, PacketBatch, Sink,
    WriteError,
};

pub(crate) const SHB_TYPE: u32 = 0x0A0D_0D0A;
pub(crate) const IDB_TYPE: u32 = 1;
pub(crate) const PB_TYPE: u32 = 2;
pub(crate) const SPB_TYPE: u32 = 3;
pub(crate) const ISB_TYPE: u32 = 5;
pub(crate) const EPB_TYPE: u32 = 6;
pub(crate) const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// An enhanced packet block's fixed part: type, length, interface, timestamp, lengths.
const EPB_HEAD: usize = 28;

pub(crate) const OPT_ENDOFOPT: u16 = 0;
pub(crate) const SHB_HARDWARE: u16 = 2;
pub(crate) const SHB_OS: u16 = 3;
pub(crate) const SHB_USERAPPL: u16 = 4;
pub(crate) const IF_NAME: u16 = 2;
pub(crate) const IF_DESCRIPTION: u16 = 3;
pub(crate) const IF_TSRESOL: u16 = 9;
pub(crate) const IF_TSOFFSET: u16 = 14;
pub(crate) const EPB_FLAGS: u16 = 2;
pub(crate) const ISB_STARTTIME: u16 = 2;
pub(crate) const ISB_ENDTIME: u16 = 3;
pub(crate) const ISB_IFRECV: u16 = 4;
pub(crate) const ISB_IFDROP: u16 = 5;
pub(crate) const ISB_FILTERACCEPT: u16 = 6;
pub(crate) const ISB_OSDROP: u16 = 7;
pub(crate) const ISB_USRDELIV: u16 = 8;

/// The section header block's descriptive options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionDesc {
    /// `shb_userappl`: the writing application. Defaults to [`DEFAULT_USERAPPL`].
    pub userappl: Option<String>,
    /// `shb_os`: the operating system of the capturing machine.
    pub os: Option<String>,
    /// `shb_hardware`: the hardware of the capturing machine.
    pub hardware: Option<String>,
}

impl Default for SectionDesc {
    fn default() -> Self {
        SectionDesc {
            userappl: Some(DEFAULT_USERAPPL.to_owned()),
            os: None,
            hardware: None,
        }
    }
}

/// One capture interface: becomes an interface description block (IDB).
///
/// nsring writes one per (namespace, interface), with the namespace in `description`.
///
/// libpcap (hence tcpdump) refuses pcapng files whose interfaces differ in link type or
/// snapshot length ("an interface has a snapshot length ... different from ... the
/// first interface"); Wireshark accepts them. Give every interface of a file the same
/// `linktype` and `snaplen` when tcpdump must read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDesc {
    /// `if_name`, e.g. `veth0`.
    pub name: String,
    /// `if_description`, e.g. `netns ns0 (inode 4026532177)`.
    pub description: Option<String>,
    /// Link type of the interface's packets.
    pub linktype: LinkType,
    /// Snapshot length; 0 means "no limit".
    pub snaplen: u32,
    /// Nanosecond timestamps (`if_tsresol` = 9) instead of the default microseconds.
    pub tsresol_nanos: bool,
}

#[derive(Debug, Clone)]
struct IfState {
    snaplen: u32,
    nanos: bool,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
}

/// Writes a pcapng file (one section, little-endian) to any `W: Write`.
///
/// [`PcapngWriter::new`] writes the section header block; [`add_interface`] writes an
/// interface description block and returns its id; [`write_packet`] writes enhanced
/// packet blocks; [`write_interface_stats`] writes an interface statistics block
/// (write one per interface at the end). Each block is handed to the inner writer whole
/// (packets as header, data and trailer `write_all`s, with no copy of the data here),
/// so the output is a sequence of complete blocks: cut between any two of them, it is
/// still a valid file.
///
/// [`add_interface`]: Self::add_interface
/// [`write_packet`]: Self::write_packet
/// [`write_interface_stats`]: Self::write_interface_stats
///
/// ```
/// use nsring_pcap::{Direction, InterfaceDesc, InterfaceStats, LinkType, PcapngWriter, SectionDesc};
/// let mut w = PcapngWriter::new(Vec::new(), &SectionDesc::default())?;
/// let veth0 = w.add_interface(&InterfaceDesc {
///     name: "veth0".into(),
///     description: Some("netns ns0 (inode 4026532177)".into()),
///     linktype: LinkType::ETHERNET,
///     snaplen: 262_144,
///     tsresol_nanos: true,
/// })?;
/// w.write_packet(veth0, 1_700_000_000_000_000_001, 60, &[0u8; 60], Some(Direction::Inbound))?;
/// w.write_interface_stats(veth0, &InterfaceStats { ifrecv: Some(1), ifdrop: Some(0), ..Default::default() })?;
/// let bytes = w.finish()?;
/// # assert!(bytes.len() > 0);
/// # Ok::<(), nsring_pcap::WriteError>(())
/// ```
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    sink: Sink<W>,
    interfaces: Vec<IfState>,
    /// Whether the block being built has options (so it needs `opt_endofopt`).
    has_options: bool,
}

impl<W: Write> PcapngWriter<W> {
    /// Write the section header block and return the writer.
    pub fn new(inner: W, section: &SectionDesc) -> Result<Self, WriteError> {
        let mut w = PcapngWriter {
            sink: Sink::new(inner),
            interfaces: Vec::new(),
            has_options: false,
        };
        w.begin(SHB_TYPE);
        put_u32(&mut w.sink.buf, BYTE_ORDER_MAGIC);
        put_u16(&mut w.sink.buf, 1); // major
        put_u16(&mut w.sink.buf, 0); // minor
        put_u64(&mut w.sink.buf, u64::MAX); // section length: not specified
        if let Some(s) = &section.hardware {
            w.option(SHB_HARDWARE, "shb_hardware", s.as_bytes())?;
        }
        if let Some(s) = &section.os {
            w.option(SHB_OS, "shb_os", s.as_bytes())?;
        }
        if let Some(s) = &section.userappl {
            w.option(SHB_USERAPPL, "shb_userappl", s.as_bytes())?;
        }
        w.end("pcapng section header block")?;
        Ok(w)
    }

    /// Write an interface description block; returns the interface id that packets
    /// and statistics on this interface must use (0, 1, 2, ... in order).
    pub fn add_interface(&mut self, desc: &InterfaceDesc) -> Result<u32, WriteError> {
        self.sink.check()?;
        if self.interfaces.len() >= crate::MAX_INTERFACES {
            return Err(WriteError::TooManyInterfaces {
                max: crate::MAX_INTERFACES,
            });
        }
        let id = self.interfaces.len() as u32;
        self.begin(IDB_TYPE);
        put_u16(&mut self.sink.buf, desc.linktype.0);
        put_u16(&mut self.sink.buf, 0); // reserved
        put_u32(&mut self.sink.buf, desc.snaplen);
        self.option(IF_NAME, "if_name", desc.name.as_bytes())?;
        if let Some(d) = &desc.description {
            self.option(IF_DESCRIPTION, "if_description", d.as_bytes())?;
        }
        if desc.tsresol_nanos {
            self.option(IF_TSRESOL, "if_tsresol", &[9])?;
        }
        self.end("pcapng interface description block")?;
        self.interfaces.push(IfState {
            snaplen: desc.snaplen,
            nanos: desc.tsresol_nanos,
            first_ts: None,
            last_ts: None,
        });
        Ok(id)
    }

    /// Write an enhanced packet block: interface id, `ts_ns` nanoseconds since the
    /// epoch, the original length, the captured bytes (at most the interface's snaplen)
    /// and, if known, the direction (`epb_flags`).
    pub fn write_packet(
        &mut self,
        interface: u32,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        direction: Option<Direction>,
    ) -> Result<(), WriteError> {
        self.write_packet_parts(interface, ts_ns, orig_len, &[data], direction)
    }

    /// [`write_packet`](Self::write_packet) with the captured bytes given as consecutive
    /// pieces (e.g. a frame with a VLAN tag put back: MAC addresses, tag, rest), written
    /// straight from the slices: the only copy is the inner writer's.
    pub fn write_packet_parts(
        &mut self,
        interface: u32,
        ts_ns: u64,
        orig_len: u32,
        parts: &[&[u8]],
        direction: Option<Direction>,
    ) -> Result<(), WriteError> {
        let (head, tail) = self.frame(interface, ts_ns, orig_len, parts, direction)?;
        self.sink.commit_parts(
            "pcapng enhanced packet block",
            &head,
            parts,
            tail.as_slice(),
        )
    }

    /// Adds an enhanced packet block to `batch` instead of writing it (the same checks and
    /// bytes as [`write_packet_parts`](Self::write_packet_parts); the pieces are borrowed
    /// until [`write_batch`](Self::write_batch)).
    pub fn batch_packet<'a>(
        &mut self,
        batch: &mut PacketBatch<'a>,
        interface: u32,
        ts_ns: u64,
        orig_len: u32,
        parts: &[&'a [u8]],
        direction: Option<Direction>,
    ) -> Result<(), WriteError> {
        let (head, tail) = self.frame(interface, ts_ns, orig_len, parts, direction)?;
        batch.push(&head, parts, tail.as_slice());
        Ok(())
    }

    /// Writes the packets of `batch` with vectored writes and empties it. Like any write,
    /// it is part of the valid file after the next [`flush`](Self::flush).
    pub fn write_batch(&mut self, batch: &mut PacketBatch<'_>) -> Result<(), WriteError> {
        self.sink.commit_batch(batch)
    }

    /// Checks a packet and builds its enhanced packet block's head and tail.
    fn frame(
        &mut self,
        interface: u32,
        ts_ns: u64,
        orig_len: u32,
        parts: &[&[u8]],
        direction: Option<Direction>,
    ) -> Result<([u8; EPB_HEAD], Tail), WriteError> {
        self.sink.check()?;
        let caplen: usize = parts.iter().map(|p| p.len()).sum();
        let st = self
            .interfaces
            .get_mut(interface as usize)
            .ok_or(WriteError::UnknownInterface { interface })?;
        if st.snaplen != 0 && caplen > st.snaplen as usize {
            return Err(WriteError::CaplenExceedsSnaplen {
                caplen,
                snaplen: st.snaplen,
            });
        }
        if caplen > orig_len as usize {
            return Err(WriteError::CaplenExceedsOrigLen { caplen, orig_len });
        }
        // 28 bytes of fixed fields and lengths, 12 of epb_flags, 4 of opt_endofopt, padding.
        if caplen > MAX_BLOCK_LEN as usize - 48 {
            return Err(WriteError::TooLarge {
                what: "enhanced packet block",
                len: caplen + 48,
                max: MAX_BLOCK_LEN,
            });
        }
        let units = to_units(ts_ns, st.nanos);
        st.first_ts.get_or_insert(ts_ns);
        st.last_ts = Some(ts_ns);
        let pad = caplen.next_multiple_of(4) - caplen;
        let options = if direction.is_some() { 12 } else { 0 };
        // at most MAX_BLOCK_LEN - 1 after the check above
        let total = (EPB_HEAD + caplen + pad + options + 4) as u32;
        let mut head = [0u8; EPB_HEAD];
        let fields = [
            EPB_TYPE,
            total,
            interface,
            (units >> 32) as u32,
            units as u32,
            caplen as u32,
            orig_len,
        ];
        for (slot, v) in head.chunks_exact_mut(4).zip(fields) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        // padding (zeros), epb_flags and opt_endofopt if there is a direction, total length
        let mut tail = Tail::default();
        let mut t = pad;
        if let Some(d) = direction {
            tail.b[t..t + 2].copy_from_slice(&EPB_FLAGS.to_le_bytes());
            tail.b[t + 2..t + 4].copy_from_slice(&4u16.to_le_bytes());
            tail.b[t + 4..t + 8].copy_from_slice(&d.epb_flags().to_le_bytes());
            // opt_endofopt: code 0, length 0 (already zero)
            t += 12;
        }
        tail.b[t..t + 4].copy_from_slice(&total.to_le_bytes());
        tail.len = t + 4;
        Ok((head, tail))
    }

    /// Write an interface statistics block for `interface`. Start and end times left
    /// `None` are filled with the first and last packet times written on the interface.
    pub fn write_interface_stats(
        &mut self,
        interface: u32,
        stats: &InterfaceStats,
    ) -> Result<(), WriteError> {
        self.sink.check()?;
        let st = self
            .interfaces
            .get(interface as usize)
            .ok_or(WriteError::UnknownInterface { interface })?
            .clone();
        let start = stats.starttime_ns.or(st.first_ts);
        let end = stats.endtime_ns.or(st.last_ts);
        let ts = stats.ts_ns.or(end).unwrap_or(0);
        let units = to_units(ts, st.nanos);
        self.begin(ISB_TYPE);
        put_u32(&mut self.sink.buf, interface);
        put_u32(&mut self.sink.buf, (units >> 32) as u32);
        put_u32(&mut self.sink.buf, units as u32);
        let time = |t: u64| {
            let u = to_units(t, st.nanos);
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&((u >> 32) as u32).to_le_bytes());
            b[4..].copy_from_slice(&(u as u32).to_le_bytes());
            b
        };
        if let Some(t) = start {
            self.option(ISB_STARTTIME, "isb_starttime", &time(t))?;
        }
        if let Some(t) = end {
            self.option(ISB_ENDTIME, "isb_endtime", &time(t))?;
        }
        let counters = [
            (ISB_IFRECV, "isb_ifrecv", stats.ifrecv),
            (ISB_IFDROP, "isb_ifdrop", stats.ifdrop),
            (ISB_FILTERACCEPT, "isb_filteraccept", stats.filteraccept),
            (ISB_OSDROP, "isb_osdrop", stats.osdrop),
            (ISB_USRDELIV, "isb_usrdeliv", stats.usrdeliv),
        ];
        for (code, name, v) in counters {
            if let Some(v) = v {
                self.option(code, name, &v.to_le_bytes())?;
            }
        }
        self.end("pcapng interface statistics block")
    }

    /// Number of interfaces added so far.
    pub fn interface_count(&self) -> u32 {
        self.interfaces.len() as u32
    }

    /// Flush the inner writer. On success the whole output so far is a valid file.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.sink.flush()
    }

    /// Bytes handed to the inner writer so far (whole blocks only).
    pub fn bytes_written(&self) -> u64 {
        self.sink.written
    }

    /// The length up to which the output is known to be a valid file: the position of
    /// the last successful [`flush`](Self::flush). After a write error, truncate there.
    pub fn valid_len(&self) -> u64 {
        self.sink.valid_len
    }

    /// A reference to the inner writer.
    pub fn get_ref(&self) -> &W {
        &self.sink.inner
    }

    /// Flush and return the inner writer. Write the statistics blocks first.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.sink.flush()?;
        Ok(self.sink.inner)
    }

    fn begin(&mut self, block_type: u32) {
        self.has_options = false;
        let buf = &mut self.sink.buf;
        buf.clear();
        put_u32(buf, block_type);
        put_u32(buf, 0); // total length, patched in end()
    }

    fn option(&mut self, code: u16, name: &'static str, value: &[u8]) -> Result<(), WriteError> {
        let len = u16::try_from(value.len()).map_err(|_| WriteError::OptionTooLong {
            option: name,
            len: value.len(),
        })?;
        let buf = &mut self.sink.buf;
        put_u16(buf, code);
        put_u16(buf, len);
        buf.extend_from_slice(value);
        pad_to_4(buf);
        self.has_options = true;
        Ok(())
    }

    fn end(&mut self, what: &'static str) -> Result<(), WriteError> {
        let buf = &mut self.sink.buf;
        if self.has_options {
            put_u16(buf, OPT_ENDOFOPT);
            put_u16(buf, 0);
        }
        let total = buf.len() + 4;
        if total > MAX_BLOCK_LEN as usize {
            return Err(WriteError::TooLarge {
                what,
                len: total,
                max: MAX_BLOCK_LEN,
            });
        }
        let total = total as u32;
        put_u32(buf, total);
        if let Some(slot) = buf.get_mut(4..8) {
            slot.copy_from_slice(&total.to_le_bytes());
        }
        self.sink.commit(what)
    }
}

/// An enhanced packet block's tail: padding, `epb_flags` and `opt_endofopt`, total length.
#[derive(Debug, Default)]
struct Tail {
    b: [u8; 3 + 12 + 4],
    len: usize,
}

impl Tail {
    fn as_slice(&self) -> &[u8] {
        &self.b[..self.len]
    }
}

/// Nanoseconds to interface timestamp units (ns with `if_tsresol` 9, else µs).
fn to_units(ts_ns: u64, nanos: bool) -> u64 {
    if nanos { ts_ns } else { ts_ns / 1000 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PcapHeader, PcapWriter, TsResolution};

    fn ng() -> PcapngWriter<Vec<u8>> {
        let mut w = PcapngWriter::new(Vec::new(), &SectionDesc::default()).unwrap();
        for nanos in [true, false] {
            w.add_interface(&InterfaceDesc {
                name: "veth0".into(),
                description: Some("netns t".into()),
                linktype: LinkType::ETHERNET,
                snaplen: 0,
                tsresol_nanos: nanos,
            })
            .unwrap();
        }
        w
    }

    /// The packet bytes split in every way (empty pieces too) give the same file as one
    /// slice, for every padding, direction and timestamp resolution.
    #[test]
    fn parts_write_the_same_bytes_as_one_slice() {
        let data: Vec<u8> = (0..=255u8).cycle().take(70).collect();
        for len in [0usize, 1, 2, 3, 4, 13, 14, 17, 60, 70] {
            for dir in [None, Some(Direction::Inbound), Some(Direction::Outbound)] {
                for ifc in [0u32, 1] {
                    let d = &data[..len];
                    let ts = 1_700_000_000_123_456_789 + len as u64;
                    let mut whole = ng();
                    whole.write_packet(ifc, ts, 1514, d, dir).unwrap();
                    let whole = whole.finish().unwrap();
                    for a in 0..=len {
                        let b = (a + 4).min(len);
                        let mut split = ng();
                        split
                            .write_packet_parts(
                                ifc,
                                ts,
                                1514,
                                &[&d[..a], &d[a..b], &[], &d[b..]],
                                dir,
                            )
                            .unwrap();
                        assert_eq!(split.bytes_written(), whole.len() as u64);
                        assert_eq!(split.finish().unwrap(), whole, "len {len} split {a}..{b}");
                    }
                }
            }
        }
    }

    #[test]
    fn an_enhanced_packet_block_is_laid_out_as_the_format_says() {
        let mut w = ng();
        let start = w.bytes_written() as usize;
        w.write_packet_parts(
            0,
            0x1_0000_0002,
            9,
            &[&[1, 2], &[3]],
            Some(Direction::Outbound),
        )
        .unwrap();
        let out = w.finish().unwrap();
        let mut want = Vec::new();
        for v in [EPB_TYPE, 48, 0, 1, 2, 3, 9] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        want.extend_from_slice(&[1, 2, 3, 0]); // data, padding
        want.extend_from_slice(&[2, 0, 4, 0, 2, 0, 0, 0]); // epb_flags: outbound
        want.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        want.extend_from_slice(&48u32.to_le_bytes());
        assert_eq!(&out[start..], &want[..]);
    }

    #[test]
    fn checks_count_all_parts() {
        let mut w = PcapngWriter::new(Vec::new(), &SectionDesc::default()).unwrap();
        let id = w
            .add_interface(&InterfaceDesc {
                name: "veth0".into(),
                description: None,
                linktype: LinkType::ETHERNET,
                snaplen: 4,
                tsresol_nanos: true,
            })
            .unwrap();
        assert!(matches!(
            w.write_packet_parts(id, 0, 9, &[&[0; 3], &[0; 2]], None),
            Err(WriteError::CaplenExceedsSnaplen { caplen: 5, .. })
        ));
        assert!(matches!(
            w.write_packet_parts(id, 0, 3, &[&[0; 2], &[0; 2]], None),
            Err(WriteError::CaplenExceedsOrigLen { caplen: 4, .. })
        ));
        let mut p = PcapWriter::new(
            Vec::new(),
            PcapHeader {
                linktype: LinkType::ETHERNET,
                snaplen: 4,
                resolution: TsResolution::Nanos,
            },
        )
        .unwrap();
        assert!(matches!(
            p.write_packet_parts(0, 9, &[&[0; 3], &[0; 2]]),
            Err(WriteError::CaplenExceedsSnaplen { caplen: 5, .. })
        ));
    }

    #[test]
    fn pcap_parts_write_the_same_bytes_as_one_slice() {
        let data: Vec<u8> = (0..70u8).collect();
        for res in [TsResolution::Nanos, TsResolution::Micros] {
            let header = PcapHeader {
                resolution: res,
                ..PcapHeader::default()
            };
            let mut whole = PcapWriter::new(Vec::new(), header).unwrap();
            whole
                .write_packet(1_700_000_000_987_654_321, 100, &data)
                .unwrap();
            let whole = whole.finish().unwrap();
            for a in [0usize, 12, 70] {
                let mut split = PcapWriter::new(Vec::new(), header).unwrap();
                split
                    .write_packet_parts(1_700_000_000_987_654_321, 100, &[&data[..a], &data[a..]])
                    .unwrap();
                assert_eq!(split.finish().unwrap(), whole);
            }
        }
    }
}
