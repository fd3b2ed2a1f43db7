//! pcapng: sections, interfaces, packet and statistics blocks.

//!
//! Where libpcap and Wireshark differ, the reader takes the more forgiving side when the
//! file still says unambiguously what each packet is: several link types and snapshot
//! lengths in one file and sections of either byte order are read (Wireshark does;
//! libpcap stops); options of blocks other than interface descriptions that are cut
//! short are ignored (libpcap never reads them); a packet longer than its interface's
//! snapshot length is returned whole (Wireshark). A packet longer than its link type's
//! maximum ([`LinkType::max_snaplen`]) is an error, as in both.

use std::io::Read;

use super::{CaptureReader, Found, InterfaceInfo, MAX_INTERFACES, ReadError, SectionInfo, State};
use crate::bytes::{Cursor, Endian, pad4};
use crate::pcapng_write::{
    BYTE_ORDER_MAGIC, EPB_FLAGS, EPB_TYPE, IDB_TYPE, IF_DESCRIPTION, IF_NAME, IF_TSOFFSET,
    IF_TSRESOL, ISB_ENDTIME, ISB_FILTERACCEPT, ISB_IFDROP, ISB_IFRECV, ISB_OSDROP, ISB_STARTTIME,
    ISB_TYPE, ISB_USRDELIV, OPT_ENDOFOPT, PB_TYPE, SHB_HARDWARE, SHB_OS, SHB_TYPE, SHB_USERAPPL,
    SPB_TYPE,
};
use crate::{Direction, InterfaceStats, LinkType};

/// The largest block that can carry a packet of `max_snaplen` bytes: libpcap's
/// `MAX_BLOCKSIZE_FOR_SNAPLEN` (an enhanced packet block with 128 KiB of options).
fn max_block_for(max_snaplen: u32) -> u32 {
    max_snaplen.saturating_add(8 + 20 + 131_072 + 4)
}

impl<R: Read> CaptureReader<R> {
    pub(super) fn read_first_section(&mut self) -> Result<(), ReadError> {
        // The first block is the SHB by construction (the magic matched).
        let start = self.offset;
        let Some((_shb, len)) = self.block_header(start)? else {
            return Err(ReadError::TruncatedHeader {
                expected: 28,
                got: 0,
            });
        };
        self.read_block_body(start, len)?;
        self.parse_shb(start, len)
    }

    /// Read a block header (type and length; for an SHB also the byte-order magic,
    /// left at the start of `buf`). Returns `None` at a clean end of file.
    fn block_header(&mut self, start: u64) -> Result<Option<(u32, u32)>, ReadError> {
        let mut hdr = [0u8; 8];
        let got = self.fill(&mut hdr)?;
        if got == 0 {
            return Ok(None);
        }
        let trunc = |got: usize| ReadError::TruncatedBlock {
            offset: start,
            expected: 12,
            got: got as u64,
        };
        if got < hdr.len() {
            if start == 0 {
                return Err(ReadError::TruncatedHeader { expected: 28, got });
            }
            return Err(trunc(got));
        }
        let [t0, t1, t2, t3, l0, l1, l2, l3] = hdr;
        let type_le = u32::from_le_bytes([t0, t1, t2, t3]);
        let endian = if type_le == SHB_TYPE {
            let mut bom = [0u8; 4];
            let got = self.fill(&mut bom)?;
            if got < 4 {
                if start == 0 {
                    return Err(ReadError::TruncatedHeader {
                        expected: 28,
                        got: 8 + got,
                    });
                }
                return Err(trunc(8 + got));
            }
            let endian = match u32::from_le_bytes(bom) {
                BYTE_ORDER_MAGIC => Endian::Little,
                v if v.swap_bytes() == BYTE_ORDER_MAGIC => Endian::Big,
                value => {
                    return Err(ReadError::BadByteOrderMagic {
                        offset: start,
                        value,
                    });
                }
            };
            self.state = State::Pcapng { endian };
            self.buf.clear();
            self.buf.extend_from_slice(&bom);
            endian
        } else {
            self.endian()
        };
        let block_type = endian.u32([t0, t1, t2, t3]);
        let len = endian.u32([l0, l1, l2, l3]);
        let min = match block_type {
            SHB_TYPE => 28,
            IDB_TYPE => 20,
            EPB_TYPE => 32,
            SPB_TYPE => 16,
            ISB_TYPE => 24,
            PB_TYPE => 32,
            _ => 12,
        };
        if len < min {
            return Err(ReadError::BlockTooSmall {
                offset: start,
                len,
                min,
            });
        }
        if !len.is_multiple_of(4) {
            return Err(ReadError::BlockLengthNotMultipleOf4 { offset: start, len });
        }
        if len > self.max_block {
            return Err(ReadError::BlockTooLarge {
                offset: start,
                len,
                max: self.max_block,
            });
        }
        Ok(Some((block_type, len)))
    }

    /// Read the rest of a block of total length `len` whose 8-byte header (and for an
    /// SHB the byte-order magic, already in `buf`) has been read; check the trailing
    /// length and leave the body (everything between the header and the trailer) in
    /// `buf`.
    fn read_block_body(&mut self, start: u64, len: u32) -> Result<(), ReadError> {
        let already = self.offset - start; // 8, or 12 for an SHB
        let prefix = std::mem::take(&mut self.buf);
        let need = (u64::from(len) - already) as usize;
        let got = self.fill_buf(need)?;
        if got < need {
            return Err(ReadError::TruncatedBlock {
                offset: start,
                expected: u64::from(len),
                got: already + got as u64,
            });
        }
        if already > 8 {
            // Put the byte-order magic back in front of the body.
            let mut body = prefix;
            body.extend_from_slice(&self.buf);
            self.buf = body;
        }
        let endian = self.endian();
        let tail_at = self.buf.len().saturating_sub(4);
        let trailer = self
            .buf
            .get(tail_at..)
            .and_then(|t| <[u8; 4]>::try_from(t).ok())
            .map(|t| endian.u32(t))
            .unwrap_or(0);
        if trailer != len {
            return Err(ReadError::BlockLengthMismatch {
                offset: start,
                len,
                trailer,
            });
        }
        self.buf.truncate(tail_at);
        Ok(())
    }

    pub(super) fn next_pcapng(&mut self) -> Result<Option<Found>, ReadError> {
        loop {
            let start = self.offset;
            let Some((block_type, len)) = self.block_header(start)? else {
                return Ok(None);
            };
            self.read_block_body(start, len)?;
            match block_type {
                SHB_TYPE => self.parse_shb(start, len)?,
                IDB_TYPE => self.parse_idb(start)?,
                ISB_TYPE => self.parse_isb(start)?,
                EPB_TYPE => return self.parse_epb(start, false).map(Some),
                PB_TYPE => return self.parse_epb(start, true).map(Some),
                SPB_TYPE => return self.parse_spb(start).map(Some),
                _ => {} // unknown or uninteresting block: skipped
            }
        }
    }

    fn parse_shb(&mut self, start: u64, _len: u32) -> Result<(), ReadError> {
        let endian = self.endian();
        let mut c = Cursor::new(&self.buf, endian);
        let short = || ReadError::Malformed {
            offset: start,
            block: "section header block",
            reason: "fixed fields cut short",
        };
        let _bom = c.u32().ok_or_else(short)?;
        let major = c.u16().ok_or_else(short)?;
        let minor = c.u16().ok_or_else(short)?;
        let _section_len = c.u64().ok_or_else(short)?;
        if major != 1 {
            return Err(ReadError::UnsupportedVersion {
                offset: start,
                format: "pcapng",
                major,
                minor,
                expected: "1.x",
            });
        }
        let mut info = SectionInfo {
            offset: start,
            big_endian: endian == Endian::Big,
            version: (major, minor),
            hardware: None,
            os: None,
            userappl: None,
        };
        lenient(parse_options(
            &mut c,
            start,
            "section header block",
            |code, v| {
                match code {
                    SHB_HARDWARE => info.hardware = Some(string(v)),
                    SHB_OS => info.os = Some(string(v)),
                    SHB_USERAPPL => info.userappl = Some(string(v)),
                    _ => {}
                }
                Ok(())
            },
        ));
        self.sections.push(info);
        self.section_base = self.interfaces.len();
        Ok(())
    }

    fn parse_idb(&mut self, start: u64) -> Result<(), ReadError> {
        const BLOCK: &str = "interface description block";
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(ReadError::TooManyInterfaces {
                offset: start,
                max: MAX_INTERFACES,
            });
        }
        let mut c = Cursor::new(&self.buf, self.endian());
        let short = || ReadError::Malformed {
            offset: start,
            block: BLOCK,
            reason: "fixed fields cut short",
        };
        let linktype = c.u16().ok_or_else(short)?;
        let _reserved = c.u16().ok_or_else(short)?;
        let snaplen = c.u32().ok_or_else(short)?;
        let endian = self.endian();
        let mut info = InterfaceInfo {
            section: self.sections.len().saturating_sub(1) as u32,
            id_in_section: (self.interfaces.len() - self.section_base) as u32,
            name: None,
            description: None,
            linktype: LinkType(linktype),
            snaplen,
            tsresol: 6,
            tsoffset: 0,
            stats: None,
        };
        parse_options(&mut c, start, BLOCK, |code, v| {
            match code {
                IF_NAME => info.name = Some(string(v)),
                IF_DESCRIPTION => info.description = Some(string(v)),
                IF_TSRESOL => match v {
                    [r] => info.tsresol = *r,
                    _ => return Err("if_tsresol is not 1 byte long"),
                },
                IF_TSOFFSET => match <[u8; 8]>::try_from(v) {
                    Ok(b) => info.tsoffset = endian.u64(b) as i64,
                    Err(_) => return Err("if_tsoffset is not 8 bytes long"),
                },
                _ => {}
            }
            Ok(())
        })?;
        self.max_block = self
            .max_block
            .max(max_block_for(info.linktype.max_snaplen()));
        self.interfaces.push(info);
        Ok(())
    }

    fn linktype(&self, index: usize) -> LinkType {
        self.interfaces
            .get(index)
            .map_or(LinkType::ETHERNET, |i| i.linktype)
    }

    /// Global index of interface `id` of the current section.
    fn interface(&self, start: u64, id: u32) -> Result<usize, ReadError> {
        let known = self.interfaces.len() - self.section_base;
        if (id as usize) < known {
            Ok(self.section_base + id as usize)
        } else {
            Err(ReadError::UnknownInterface {
                offset: start,
                interface: id,
                known,
            })
        }
    }

    fn timestamp(&self, start: u64, index: usize, units: u64) -> Result<u64, ReadError> {
        let info = self.interfaces.get(index);
        let (tsresol, tsoffset) = info.map_or((6, 0), |i| (i.tsresol, i.tsoffset));
        units_to_ns(units, tsresol, tsoffset)
            .ok_or(ReadError::TimestampOutOfRange { offset: start })
    }

    fn parse_epb(&mut self, start: u64, obsolete: bool) -> Result<Found, ReadError> {
        let block = if obsolete {
            "packet block"
        } else {
            "enhanced packet block"
        };
        let mut c = Cursor::new(&self.buf, self.endian());
        let short = || ReadError::Malformed {
            offset: start,
            block,
            reason: "fixed fields cut short",
        };
        let id = if obsolete {
            let id = c.u16().ok_or_else(short)?;
            let _drops = c.u16().ok_or_else(short)?;
            u32::from(id)
        } else {
            c.u32().ok_or_else(short)?
        };
        let hi = c.u32().ok_or_else(short)?;
        let lo = c.u32().ok_or_else(short)?;
        let caplen = c.u32().ok_or_else(short)?;
        let orig_len = c.u32().ok_or_else(short)?;
        let data_at = c.pos();
        let available = c.remaining();
        let padded = pad4(caplen as usize).unwrap_or(usize::MAX);
        if padded > available {
            return Err(ReadError::CaplenExceedsBlock {
                offset: start,
                caplen,
                available,
            });
        }
        c.take(padded).ok_or_else(short)?;
        let mut direction = None;
        lenient(parse_options(&mut c, start, block, |code, v| {
            if code == EPB_FLAGS {
                match <[u8; 4]>::try_from(v) {
                    Ok(b) => direction = Direction::from_epb_flags(self.endian().u32(b)),
                    Err(_) => return Err("epb_flags is not 4 bytes long"),
                }
            }
            Ok(())
        }));
        let index = self.interface(start, id)?;
        let max = self.linktype(index).max_snaplen();
        if caplen > max {
            return Err(ReadError::CaplenTooLarge {
                offset: start,
                caplen,
                max,
            });
        }
        let ts_ns = self.timestamp(start, index, (u64::from(hi) << 32) | u64::from(lo))?;
        Ok(Found {
            interface: index as u32,
            ts_ns,
            orig_len,
            data: data_at..data_at + caplen as usize,
            direction,
        })
    }

    fn parse_spb(&mut self, start: u64) -> Result<Found, ReadError> {
        let mut c = Cursor::new(&self.buf, self.endian());
        let orig_len = c.u32().ok_or(ReadError::Malformed {
            offset: start,
            block: "simple packet block",
            reason: "fixed fields cut short",
        })?;
        let index = self.interface(start, 0)?;
        // No captured length: the wire length, cut to what the block holds and to the
        // snapshot length (0 or above the link type's maximum means that maximum).
        let max = self.linktype(index).max_snaplen();
        let snaplen = match self.interfaces.get(index).map_or(0, |i| i.snaplen) {
            0 => max,
            n => n.min(max),
        };
        let caplen = (orig_len as usize).min(c.remaining()).min(snaplen as usize);
        Ok(Found {
            interface: index as u32,
            ts_ns: 0,
            orig_len,
            data: 4..4 + caplen,
            direction: None,
        })
    }

    fn parse_isb(&mut self, start: u64) -> Result<(), ReadError> {
        const BLOCK: &str = "interface statistics block";
        let endian = self.endian();
        let mut c = Cursor::new(&self.buf, endian);
        let short = || ReadError::Malformed {
            offset: start,
            block: BLOCK,
            reason: "fixed fields cut short",
        };
        let id = c.u32().ok_or_else(short)?;
        let hi = c.u32().ok_or_else(short)?;
        let lo = c.u32().ok_or_else(short)?;
        let index = self.interface(start, id)?;
        let (tsresol, tsoffset) = self
            .interfaces
            .get(index)
            .map_or((6, 0), |i| (i.tsresol, i.tsoffset));
        let to_ns = |units: u64| units_to_ns(units, tsresol, tsoffset);
        let mut stats = InterfaceStats {
            ts_ns: Some(
                to_ns((u64::from(hi) << 32) | u64::from(lo))
                    .ok_or(ReadError::TimestampOutOfRange { offset: start })?,
            ),
            ..InterfaceStats::default()
        };
        lenient(parse_options(&mut c, start, BLOCK, |code, v| {
            let Ok(b) = <[u8; 8]>::try_from(v) else {
                return match code {
                    ISB_STARTTIME..=ISB_USRDELIV => Err("a statistics option is not 8 bytes long"),
                    _ => Ok(()),
                };
            };
            let n = endian.u64(b);
            let time = || {
                let hi = u64::from(endian.u32([b[0], b[1], b[2], b[3]]));
                let lo = u64::from(endian.u32([b[4], b[5], b[6], b[7]]));
                to_ns((hi << 32) | lo).ok_or("a statistics time is out of range")
            };
            match code {
                ISB_STARTTIME => stats.starttime_ns = Some(time()?),
                ISB_ENDTIME => stats.endtime_ns = Some(time()?),
                ISB_IFRECV => stats.ifrecv = Some(n),
                ISB_IFDROP => stats.ifdrop = Some(n),
                ISB_FILTERACCEPT => stats.filteraccept = Some(n),
                ISB_OSDROP => stats.osdrop = Some(n),
                ISB_USRDELIV => stats.usrdeliv = Some(n),
                _ => {}
            }
            Ok(())
        }));
        if let Some(i) = self.interfaces.get_mut(index) {
            i.stats = Some(stats);
        }
        Ok(())
    }
}
/// Walk the options of a block from the cursor to the end (or `opt_endofopt`).
/// `f` returns `Err(reason)` for a malformed option value.
fn parse_options(
    c: &mut Cursor<'_>,
    start: u64,
    block: &'static str,
    mut f: impl FnMut(u16, &[u8]) -> Result<(), &'static str>,
) -> Result<(), ReadError> {
    let bad = |reason| ReadError::Malformed {
        offset: start,
        block,
        reason,
    };
    while c.remaining() > 0 {
        let (Some(code), Some(len)) = (c.u16(), c.u16()) else {
            return Err(bad("an option header is cut short"));
        };
        if code == OPT_ENDOFOPT {
            break;
        }
        let value = c
            .take(len as usize)
            .ok_or_else(|| bad("an option value runs past the end of the block"))?;
        let pad = pad4(len as usize).unwrap_or(0) - len as usize;
        c.take(pad)
            .ok_or_else(|| bad("an option's padding runs past the end of the block"))?;
        f(code, value).map_err(bad)?;
    }
    Ok(())
}

/// Options of blocks libpcap does not interpret (section headers, packets, statistics):
/// a malformed one ends the option list instead of the file. What was read before it
/// stands.
fn lenient(parsed: Result<(), ReadError>) {
    let _ = parsed;
}

/// A string option: UTF-8 (lossy), without trailing NULs some writers add.
fn string(v: &[u8]) -> String {
    let end = v.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    String::from_utf8_lossy(v.get(..end).unwrap_or(&[])).into_owned()
}

/// Convert a timestamp in `if_tsresol` units plus an `if_tsoffset` in seconds to
/// nanoseconds since the epoch; `None` if it does not fit in a u64.
fn units_to_ns(units: u64, tsresol: u8, tsoffset: i64) -> Option<u64> {
    let units = u128::from(units);
    let exp = u32::from(tsresol & 0x7f);
    let ns: u128 = if tsresol & 0x80 == 0 {
        if exp <= 9 {
            units * 10u128.pow(9 - exp)
        } else {
            match 10u128.checked_pow(exp - 9) {
                Some(d) => units / d,
                None => 0,
            }
        }
    } else {
        // 2^-exp seconds per unit; units < 2^64 so units * 1e9 < 2^94.
        (units * 1_000_000_000) >> exp
    };
    let total = i128::try_from(ns)
        .ok()?
        .checked_add(i128::from(tsoffset) * 1_000_000_000)?;
    u64::try_from(total).ok()
}
