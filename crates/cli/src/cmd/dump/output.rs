//! The output of `dump`: files (or standard output), rotation, interface blocks as captures
//! join and leave, and what is left behind when a write fails.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_capture::{Block, Dir, Stats};
use nsring_pcap::{
    InterfaceDesc, InterfaceStats, LinkType, PacketBatch, PcapHeader, PcapWriter, PcapngWriter,
    SectionDesc, TsResolution, WriteError,
};

use super::frames::{Parts, vlan_tag, with_vlan};
use super::{Args, DUMP_SNAPLEN, Format};

/// Output buffer for what is copied (file headers, statistics blocks, the frames of several
/// interfaces, small batches): it reaches the file in writes of up to this size.
const BUF_BYTES: usize = 64 << 10;
/// Frames of one interface go from the ring to the file in gathered writes (writev) of
/// about this many bytes, so the kernel's copy into the page cache is the only copy.
const BATCH_BYTES: u64 = 256 << 10;
/// Where blocks go: a file (which can be cut back after a failure) or stdout.
#[derive(Debug)]
enum Sink {
    File(File),
    Stdout(io::Stdout),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Stdout(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write_vectored(bufs),
            Sink::Stdout(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Stdout(s) => s.flush(),
        }
    }
}

/// The sink behind a buffer of [`BUF_BYTES`] for small writes, which a large gathered
/// write (a [`PacketBatch`]) passes by: `BufWriter` would copy it, or write it slice by
/// slice, since it cannot know that our sink takes vectored writes.
#[derive(Debug)]
struct Buffered {
    buf: Vec<u8>,
    sink: Sink,
}

impl Buffered {
    fn new(sink: Sink) -> Buffered {
        Buffered {
            buf: Vec::with_capacity(BUF_BYTES),
            sink,
        }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        let r = self.sink.write_all(&self.buf);
        self.buf.clear();
        r
    }
}

impl Write for Buffered {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() + b.len() > BUF_BYTES {
            self.flush_buf()?;
        }
        if b.len() >= BUF_BYTES {
            return self.sink.write(b);
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.buf.len() + total > BUF_BYTES {
            self.flush_buf()?;
        }
        if total >= BUF_BYTES {
            return self.sink.write_vectored(bufs);
        }
        for b in bufs {
            self.buf.extend_from_slice(b);
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.sink.flush()
    }
}

impl Drop for Buffered {
    /// As `BufWriter`: what is buffered goes out (after a failure the writer is leaked
    /// instead, see [`Output::fail`]).
    fn drop(&mut self) {
        let _ = self.flush_buf();
    }
}

#[derive(Debug)]
enum Writer {
    Ng(PcapngWriter<Buffered>),
    Pcap(PcapWriter<Buffered>),
}

impl Writer {
    fn sink(&self) -> &Sink {
        match self {
            Writer::Ng(w) => &w.get_ref().sink,
            Writer::Pcap(w) => &w.get_ref().sink,
        }
    }

    fn valid_len(&self) -> u64 {
        match self {
            Writer::Ng(w) => w.valid_len(),
            Writer::Pcap(w) => w.valid_len(),
        }
    }

    fn bytes_written(&self) -> u64 {
        match self {
            Writer::Ng(w) => w.bytes_written(),
            Writer::Pcap(w) => w.bytes_written(),
        }
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        match self {
            Writer::Ng(w) => w.flush(),
            Writer::Pcap(w) => w.flush(),
        }
    }
}

/// One interface of the capture, as the file describes it.
#[derive(Debug, Clone)]
pub(super) struct IfMeta {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) linktype: LinkType,
}

/// The stdout reader went away: end quietly.
#[derive(Debug)]
pub(super) struct PipeClosed;

impl std::fmt::Display for PipeClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reader of standard output went away")
    }
}

impl std::error::Error for PipeClosed {}

/// An interface that is being captured, as the current file knows it.
#[derive(Debug)]
struct OpenIf {
    meta: IfMeta,
    /// Its interface id in the current file (pcapng: the order of its description block).
    file_id: u32,
    /// Packets written.
    written: u64,
    /// The latest kernel counters.
    stats: Stats,
}

#[derive(Debug)]
pub(super) struct Output {
    format: Format,
    /// None: stdout.
    base: Option<PathBuf>,
    /// The interfaces captured now, by target id (the order they joined in).
    open: BTreeMap<u64, OpenIf>,
    /// The next interface id in the current file.
    next_file_id: u32,
    /// Classic pcap's one link type, from the first interface.
    pcap_linktype: LinkType,
    snaplen: u32,
    rotate_bytes: Option<u64>,
    rotate_after: Option<Duration>,
    keep: Option<u32>,
    w: Option<Writer>,
    path: Option<PathBuf>,
    file_no: u32,
    opened_at: Instant,
    kept: VecDeque<PathBuf>,
    /// Packets written, in total.
    pub(super) written: u64,
    /// Kernel drops of the interfaces that left.
    pub(super) left_drops: u64,
    /// The batch of [`Output::block`], kept between blocks with its buffers.
    spare: Option<PacketBatch<'static>>,
    /// The block being written.
    cur: Option<Current>,
}

/// The interface whose block is being written: its id in the current file, and its packets
/// written so far in this block.
#[derive(Debug)]
struct Current {
    id: u64,
    file_id: u32,
    written: u64,
}

impl Output {
    /// Creates the first file, with a description block for each of `first` (the
    /// interfaces captured at the start, by target id).
    pub(super) fn new(args: &Args, first: Vec<(u64, IfMeta)>) -> anyhow::Result<Output> {
        let pcap_linktype = first
            .first()
            .map_or(LinkType::ETHERNET, |(_, m)| m.linktype);
        let mut o = Output {
            format: args.format,
            base: (args.write != "-").then(|| PathBuf::from(&args.write)),
            open: first
                .into_iter()
                .map(|(id, meta)| {
                    let i = OpenIf {
                        meta,
                        file_id: 0,
                        written: 0,
                        stats: Stats::default(),
                    };
                    (id, i)
                })
                .collect(),
            next_file_id: 0,
            pcap_linktype,
            snaplen: args.capture.snaplen.unwrap_or(DUMP_SNAPLEN),
            rotate_bytes: args.file_size.map(|mb| mb.saturating_mul(1_000_000)),
            rotate_after: args.file_secs,
            keep: args.file_count,
            w: None,
            path: None,
            file_no: 0,
            opened_at: Instant::now(),
            kept: VecDeque::new(),
            written: 0,
            left_drops: 0,
            spare: Some(PacketBatch::with_capacity(
                BATCH_BYTES as usize + (64 << 10),
                PacketBatch::MAX_SLICES,
            )),
            cur: None,
        };
        o.open_next()?;
        Ok(o)
    }

    /// An interface joins: its description block goes into the current file (pcapng
    /// allows them anywhere in a section). Nothing happens if it is already there.
    pub(super) fn join(&mut self, id: u64, meta: IfMeta) -> anyhow::Result<()> {
        if self.open.contains_key(&id) {
            return Ok(());
        }
        let file_id = self.describe_interface(&meta)?;
        self.open.insert(
            id,
            OpenIf {
                meta,
                file_id,
                written: 0,
                stats: Stats::default(),
            },
        );
        Ok(())
    }

    /// An interface leaves: its statistics block, with its final counters, goes into the
    /// current file.
    pub(super) fn leave(&mut self, id: u64, stats: Stats) -> anyhow::Result<()> {
        let Some(mut i) = self.open.remove(&id) else {
            return Ok(());
        };
        i.stats = stats;
        self.left_drops += stats.drops;
        self.interface_stats(&i)?;
        self.flush()
    }

    /// The latest kernel counters of interface `id` (for the statistics block at rotation).
    pub(super) fn set_stats(&mut self, id: u64, stats: Stats) {
        if let Some(i) = self.open.get_mut(&id) {
            i.stats = stats;
        }
    }

    /// Writes the description block of one interface into the current file; returns its
    /// interface id there.
    fn describe_interface(&mut self, m: &IfMeta) -> anyhow::Result<u32> {
        let id = self.next_file_id;
        if let Some(Writer::Ng(w)) = self.w.as_mut() {
            let r = w.add_interface(&InterfaceDesc {
                name: m.name.clone(),
                description: Some(m.description.clone()),
                linktype: m.linktype,
                snaplen: self.snaplen,
                tsresol_nanos: true,
            });
            if let Err(e) = r {
                return Err(self.fail(e));
            }
        }
        self.next_file_id += 1;
        Ok(id)
    }

    /// Writes the statistics block of one interface into the current file (pcapng).
    fn interface_stats(&mut self, i: &OpenIf) -> anyhow::Result<()> {
        if let Some(Writer::Ng(w)) = self.w.as_mut() {
            let r = w.write_interface_stats(
                i.file_id,
                &InterfaceStats {
                    ifrecv: Some(i.stats.packets),
                    ifdrop: Some(i.stats.drops),
                    usrdeliv: Some(i.written),
                    ..Default::default()
                },
            );
            if let Err(e) = r {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    fn name_of(&self, k: u32) -> Option<PathBuf> {
        let base = self.base.as_ref()?;
        if k == 0 {
            return Some(base.clone());
        }
        let mut s = base.clone().into_os_string();
        s.push(k.to_string());
        Some(PathBuf::from(s))
    }

    /// Opens file number `file_no` and writes its headers.
    fn open_next(&mut self) -> anyhow::Result<()> {
        let path = self.name_of(self.file_no);
        let sink = match &path {
            Some(p) => Sink::File(File::create(p).with_context(|| {
                format!(
                    "cannot create {}; check that its directory exists and is writable",
                    p.display()
                )
            })?),
            None => Sink::Stdout(io::stdout()),
        };
        let buf = Buffered::new(sink);
        self.path = path.clone();
        self.opened_at = Instant::now();
        let w = match self.format {
            Format::Pcapng => PcapngWriter::new(buf, &SectionDesc::default()).map(Writer::Ng),
            Format::Pcap => PcapWriter::new(
                buf,
                PcapHeader {
                    linktype: self.pcap_linktype,
                    snaplen: self.snaplen,
                    resolution: TsResolution::Nanos,
                },
            )
            .map(Writer::Pcap),
        };
        self.w = Some(w.map_err(|e| self.failed_early(e))?);
        // the interfaces captured now, each with an id in this file
        self.next_file_id = 0;
        let ids: Vec<u64> = self.open.keys().copied().collect();
        for id in ids {
            let meta = self.open[&id].meta.clone();
            let file_id = self.describe_interface(&meta)?;
            if let Some(i) = self.open.get_mut(&id) {
                i.file_id = file_id;
            }
        }
        self.flush()?;
        if let Some(p) = path {
            self.kept.push_back(p);
            if let Some(keep) = self.keep {
                while self.kept.len() > keep as usize {
                    if let Some(old) = self.kept.pop_front() {
                        std::fs::remove_file(&old)
                            .with_context(|| format!("cannot remove {} (-W)", old.display()))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A failure of the very first write (the file header): nothing valid exists.
    fn failed_early(&self, e: WriteError) -> anyhow::Error {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
        self.describe(e, 0)
    }

    fn describe(&self, e: WriteError, valid: u64) -> anyhow::Error {
        let what = self
            .path
            .as_ref()
            .map_or("standard output".to_owned(), |p| p.display().to_string());
        if source_kind(&e) == Some(io::ErrorKind::BrokenPipe) {
            return anyhow::Error::new(PipeClosed);
        }
        match e {
            WriteError::Io { source, .. } => {
                let cut = match (&self.path, valid) {
                    (None, _) => String::new(),
                    (Some(_), 0) => "; the file was removed (nothing complete was written)".into(),
                    (Some(_), v) => format!(
                        "; the file was cut back to {v} bytes, its last complete block, and is a valid capture file"
                    ),
                };
                anyhow::anyhow!("writing {what} failed: {source}{cut}")
            }
            e => anyhow::Error::new(e).context(format!("writing {what} failed")),
        }
    }

    /// After a write error: cut the file back to its valid length (remove it if nothing
    /// valid is left) and describe the error.
    fn fail(&mut self, e: WriteError) -> anyhow::Error {
        let valid = self.w.as_ref().map_or(0, Writer::valid_len);
        if let (Some(w), Some(p)) = (self.w.take(), &self.path) {
            if let Sink::File(f) = w.sink() {
                if valid == 0 {
                    let _ = std::fs::remove_file(p);
                } else {
                    let _ = f.set_len(valid);
                }
            }
            // Dropping the writer would flush its buffer past the cut; the process is about
            // to exit, so leak it (and its descriptor) instead.
            std::mem::forget(w);
        }
        self.describe(e, valid)
    }

    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        let r = match self.w.as_mut() {
            Some(w) => w.flush(),
            None => return Ok(()),
        };
        r.map_err(|e| self.fail(e))
    }

    /// Whether the current file is due to be closed, with `pending` bytes not yet written.
    fn rotate_due(&self, pending: u64) -> bool {
        let Some(w) = &self.w else { return false };
        self.base.is_some()
            && (self
                .rotate_bytes
                .is_some_and(|b| w.bytes_written() + pending >= b)
                || self
                    .rotate_after
                    .is_some_and(|d| self.opened_at.elapsed() >= d))
    }

    /// Writes the frames of one ring block of interface `id`, at most `room` of them,
    /// gathered straight from the ring into vectored writes: no copy in user space, the
    /// kernel's copy into the file is the only one. Returns their wire bytes.
    pub(super) fn block(
        &mut self,
        id: u64,
        block: &Block<'_>,
        room: Option<u64>,
    ) -> anyhow::Result<u64> {
        let Some(file_id) = self.open.get(&id).map(|i| i.file_id) else {
            return Ok(0);
        };
        self.cur = Some(Current {
            id,
            file_id,
            written: 0,
        });
        // VLAN tags the kernel took out, to be put back: gathered first (with the index of
        // their frame), so that the batch can borrow them.
        let tags: Vec<(usize, [u8; 4])> = block
            .frames()
            .enumerate()
            .filter_map(|(i, f)| Some((i, vlan_tag(&f)?)))
            .collect();
        let mut tags = tags.iter().peekable();
        let r = self.with_batch(|out, batch| {
            let mut bytes = 0u64;
            for (i, f) in block.frames().enumerate() {
                if room.is_some_and(|r| i as u64 >= r) {
                    break;
                }
                let tag = tags.next_if(|(k, _)| *k == i).map(|(_, t)| t);
                bytes += u64::from(f.wire_len());
                out.put(
                    batch,
                    f.timestamp_ns(),
                    f.wire_len(),
                    with_vlan(f.data(), tag),
                    f.direction() == Dir::Out,
                )?;
            }
            Ok(bytes)
        });
        self.commit();
        self.cur = None;
        r
    }

    /// Adds the packets written of the current block to its interface's count.
    fn commit(&mut self) {
        if let Some(c) = self.cur.as_mut()
            && let Some(i) = self.open.get_mut(&c.id)
        {
            i.written += std::mem::take(&mut c.written);
        }
    }

    /// Runs `f` with the output's batch (its buffers kept from one call to the next), and
    /// writes what `f` left in it.
    fn with_batch<'a, R>(
        &mut self,
        f: impl FnOnce(&mut Output, &mut PacketBatch<'a>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let mut batch = self.spare.take().unwrap_or_default().recycle();
        let r = f(self, &mut batch)?;
        self.write_batch(&mut batch)?;
        self.spare = Some(batch.recycle());
        Ok(r)
    }

    /// Adds one frame of the current block (cut to the snaplen) to `batch`, rotating first
    /// if due, and writes the batch once it is large.
    fn put<'a>(
        &mut self,
        batch: &mut PacketBatch<'a>,
        ts: u64,
        wire_len: u32,
        mut parts: Parts<'a>,
        out: bool,
    ) -> anyhow::Result<()> {
        if self.rotate_due(batch.bytes()) {
            self.write_batch(batch)?;
            self.rotate()?;
        }
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        parts.truncate(self.snaplen as usize);
        let parts = parts.as_slice();
        let caplen: usize = parts.iter().map(|p| p.len()).sum();
        let orig = wire_len.max(caplen as u32);
        let dir = if out {
            nsring_pcap::Direction::Outbound
        } else {
            nsring_pcap::Direction::Inbound
        };
        let r = match self.w.as_mut() {
            Some(Writer::Ng(w)) => w.batch_packet(batch, cur.file_id, ts, orig, parts, Some(dir)),
            Some(Writer::Pcap(w)) => w.batch_packet(batch, ts, orig, parts),
            None => return Ok(()),
        };
        cur.written += 1;
        r.map_err(|e| self.fail(e))?;
        self.written += 1;
        // a packet adds at most 4 slices (framing, three pieces), so 8 spare is room for one
        if batch.bytes() >= BATCH_BYTES || batch.slices() + 8 >= PacketBatch::MAX_SLICES {
            self.write_batch(batch)?;
        }
        Ok(())
    }

    fn write_batch(&mut self, batch: &mut PacketBatch<'_>) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let r = match self.w.as_mut() {
            Some(Writer::Ng(w)) => w.write_batch(batch),
            Some(Writer::Pcap(w)) => w.write_batch(batch),
            None => return Ok(()),
        };
        r.map_err(|e| self.fail(e))
    }

    /// Closes the current file and starts the next one, which describes the interfaces
    /// captured now.
    fn rotate(&mut self) -> anyhow::Result<()> {
        self.commit();
        self.close_file()?;
        self.file_no += 1;
        self.open_next()?;
        if let Some(c) = self.cur.as_mut()
            && let Some(i) = self.open.get(&c.id)
        {
            c.file_id = i.file_id;
        }
        Ok(())
    }

    /// Statistics blocks of the interfaces captured now (pcapng) and the final flush of the
    /// current file.
    pub(super) fn close_file(&mut self) -> anyhow::Result<()> {
        let ids: Vec<u64> = self.open.keys().copied().collect();
        for id in ids {
            if let Some(i) = self.open.remove(&id) {
                let r = self.interface_stats(&i);
                self.open.insert(id, i);
                r?;
            }
        }
        self.flush()?;
        self.w = None;
        Ok(())
    }
}

pub(super) fn source_kind(e: &WriteError) -> Option<io::ErrorKind> {
    match e {
        WriteError::Io { source, .. } => Some(source.kind()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{BUF_BYTES, Buffered, Sink};
    use std::io::{IoSlice, Read, Seek, Write};

    /// Small writes are buffered, a large gathered write goes past the buffer: the file
    /// still gets every byte in the order written.
    #[test]
    fn the_buffer_keeps_order_around_gathered_writes() {
        let path = std::env::temp_dir().join(format!("nsring-buffered-{}", std::process::id()));
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut b = Buffered::new(Sink::File(file));
        let big: Vec<u8> = (0..BUF_BYTES * 2).map(|i| (i % 251) as u8).collect();
        let mut want = b"head".to_vec();
        b.write_all(b"head").unwrap();
        let mut put = |b: &mut Buffered, pieces: &[&[u8]]| {
            let slices: Vec<_> = pieces.iter().map(|p| IoSlice::new(p)).collect();
            let n = b.write_vectored(&slices).unwrap();
            let all: Vec<u8> = pieces.concat();
            want.extend_from_slice(&all[..n]);
            if n < all.len() {
                b.write_all(&all[n..]).unwrap();
                want.extend_from_slice(&all[n..]);
            }
        };
        put(&mut b, &[b"ab", b"cd"]); // small: buffered
        put(&mut b, &[&big[..BUF_BYTES], b"xy", &big[BUF_BYTES..]]); // large: straight out
        put(&mut b, &[b"tail"]);
        b.flush().unwrap();
        let Sink::File(mut f) = std::mem::replace(&mut b.sink, Sink::Stdout(std::io::stdout()))
        else {
            unreachable!()
        };
        f.rewind().unwrap();
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes out of order");
    }
}
