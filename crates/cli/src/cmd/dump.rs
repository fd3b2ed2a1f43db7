//! `nsring dump`: pfdump's job — the capture engine of `count` writing pcapng (or pcap)
//! files, one interface block per (namespace, interface), from any number of namespaces.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_capture::{Block, Capture, Dir, Frame, Stats};
use nsring_netns::{NetNs, NsSpec};
use nsring_pcap::{
    InterfaceDesc, InterfaceStats, LinkType, PacketBatch, PcapHeader, PcapWriter, PcapngWriter,
    SectionDesc, TsResolution, WriteError,
};

use crate::cmd::count::{CaptureArgs, Defaults, parse_secs};
use crate::target::Target;

/// Output buffer for what is copied (file headers, statistics blocks, the frames of several
/// interfaces, small batches): it reaches the file in writes of up to this size.
const BUF_BYTES: usize = 64 << 10;
/// Frames of one interface go from the ring to the file in gathered writes (writev) of
/// about this many bytes, so the kernel's copy into the page cache is the only copy.
const BATCH_BYTES: u64 = 256 << 10;
/// Whole packets, as tcpdump.
const DUMP_SNAPLEN: u32 = 262_144;
/// Ring blocks (1 MiB each): 64 MiB, four times count's. Writing a file stalls now and
/// then (page-cache allocation, writeback) where counting does not; in the benchmark
/// (1514-byte frames to /dev/shm) 16 MiB dropped a few thousand packets in some runs of
/// 5 million, and 64 MiB none in any.
const DUMP_BLOCKS: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// pcapng: interface blocks with names and namespaces, directions, drop statistics.
    Pcapng,
    /// Classic pcap with nanosecond timestamps (magic a1b23c4d).
    Pcap,
}

const AFTER_HELP: &str = "\
Examples:
  nsring dump -i ns0/eth1 -w eth1.pcapng
  nsring dump -i ns0/eth1 -i ns1/eth1 -f 'udp port 53' -w dns.pcapng
  nsring dump -i ns0/eth1 -w - | tshark -r -
  nsring dump -i ns0/eth1 -w ring.pcapng -C 100 -W 5

pcapng (the default) gets one interface description block per -i, named after the interface,
with 'netns NAME (inode N)' as its description and nanosecond timestamps, enhanced packet
blocks with the direction, and at the end an interface statistics block per interface
(received, dropped by the kernel, written). VLAN tags the kernel took out are put back into
the written bytes, as tcpdump does. With several -i, give them the same link type if
tcpdump is to read the file (Wireshark reads any mix).

Rotation: -C MB starts a new file after MB million bytes, -G SECS after SECS seconds; the
files are FILE, FILE1, FILE2, ... (numbered, never dated); -W N keeps the newest N and
deletes older ones. Each file is complete and valid on its own.

With one -i, packets go from the capture ring to the file in gathered writes of about
256 KiB, with no copy in between; the file is flushed after every ring block. Ctrl-C,
--duration and -N end the capture with a complete file. If the disk fills up, the file is
cut back to its last complete block (still a valid file) and nsring exits with status 1.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP,
    after_long_help = crate::long_help(AFTER_HELP))]
pub struct Args {
    #[command(flatten)]
    pub capture: CaptureArgs,
    /// Write to FILE, or '-' for standard output.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: String,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Pcapng)]
    pub format: Format,
    /// Start a new file after this many million bytes.
    #[arg(short = 'C', value_name = "MB", value_parser = clap::value_parser!(u64).range(1..))]
    pub file_size: Option<u64>,
    /// Start a new file after this many seconds.
    #[arg(short = 'G', value_name = "SECS", value_parser = parse_secs)]
    pub file_secs: Option<Duration>,
    /// Keep only the newest N files (with -C or -G).
    #[arg(short = 'W', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub file_count: Option<u32>,
    /// No start line on stderr (the final statistics line is still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

// --- the output: files, rotation, failure handling -------------------------------------

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
struct IfMeta {
    name: String,
    description: String,
    linktype: LinkType,
    label: String,
}

/// The stdout reader went away: end quietly.
#[derive(Debug)]
struct PipeClosed;

impl std::fmt::Display for PipeClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reader of standard output went away")
    }
}

impl std::error::Error for PipeClosed {}

#[derive(Debug)]
struct Output {
    format: Format,
    /// None: stdout.
    base: Option<PathBuf>,
    ifs: Vec<IfMeta>,
    snaplen: u32,
    rotate_bytes: Option<u64>,
    rotate_after: Option<Duration>,
    keep: Option<u32>,
    w: Option<Writer>,
    path: Option<PathBuf>,
    file_no: u32,
    opened_at: Instant,
    kept: VecDeque<PathBuf>,
    /// Packets written, in total and per interface.
    written: u64,
    per_if: Vec<u64>,
    /// The latest kernel counters of each interface.
    stats: Vec<Stats>,
    /// The batch of [`Output::block`], kept between blocks with its buffers.
    spare: Option<PacketBatch<'static>>,
}

impl Output {
    fn new(args: &Args, ifs: Vec<IfMeta>) -> anyhow::Result<Output> {
        let n = ifs.len();
        let mut o = Output {
            format: args.format,
            base: (args.write != "-").then(|| PathBuf::from(&args.write)),
            ifs,
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
            per_if: vec![0; n],
            stats: vec![Stats::default(); n],
            spare: Some(PacketBatch::with_capacity(
                BATCH_BYTES as usize + (64 << 10),
                PacketBatch::MAX_SLICES,
            )),
        };
        o.open_next()?;
        Ok(o)
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
                    linktype: self.ifs[0].linktype,
                    snaplen: self.snaplen,
                    resolution: TsResolution::Nanos,
                },
            )
            .map(Writer::Pcap),
        };
        self.w = Some(w.map_err(|e| self.failed_early(e))?);
        if let Some(Writer::Ng(w)) = self.w.as_mut() {
            for m in &self.ifs {
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

    fn flush(&mut self) -> anyhow::Result<()> {
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

    /// Writes the frames of one ring block of interface `ifc`, at most `room` of them,
    /// gathered straight from the ring into vectored writes: no copy in user space, the
    /// kernel's copy into the file is the only one. Returns their wire bytes.
    fn block(&mut self, ifc: usize, block: &Block<'_>, room: Option<u64>) -> anyhow::Result<u64> {
        // VLAN tags the kernel took out, to be put back: gathered first (with the index of
        // their frame), so that the batch can borrow them.
        let tags: Vec<(usize, [u8; 4])> = block
            .frames()
            .enumerate()
            .filter_map(|(i, f)| Some((i, vlan_tag(&f)?)))
            .collect();
        let mut tags = tags.iter().peekable();
        self.with_batch(|out, batch| {
            let mut bytes = 0u64;
            for (i, f) in block.frames().enumerate() {
                if room.is_some_and(|r| i as u64 >= r) {
                    break;
                }
                let tag = tags.next_if(|(k, _)| *k == i).map(|(_, t)| t);
                bytes += u64::from(f.wire_len());
                out.put(
                    batch,
                    ifc,
                    f.timestamp_ns(),
                    f.wire_len(),
                    with_vlan(f.data(), tag),
                    f.direction() == Dir::Out,
                )?;
            }
            Ok(bytes)
        })
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

    /// Adds one frame of interface `ifc` (cut to the snaplen) to `batch`, rotating first
    /// if due, and writes the batch once it is large.
    fn put<'a>(
        &mut self,
        batch: &mut PacketBatch<'a>,
        ifc: usize,
        ts: u64,
        wire_len: u32,
        mut parts: Parts<'a>,
        out: bool,
    ) -> anyhow::Result<()> {
        if self.rotate_due(batch.bytes()) {
            self.write_batch(batch)?;
            self.rotate()?;
        }
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
            Some(Writer::Ng(w)) => w.batch_packet(batch, ifc as u32, ts, orig, parts, Some(dir)),
            Some(Writer::Pcap(w)) => w.batch_packet(batch, ts, orig, parts),
            None => return Ok(()),
        };
        r.map_err(|e| self.fail(e))?;
        self.written += 1;
        self.per_if[ifc] += 1;
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

    /// Closes the current file and starts the next one.
    fn rotate(&mut self) -> anyhow::Result<()> {
        self.close_file()?;
        self.file_no += 1;
        self.open_next()
    }

    /// Statistics blocks (pcapng) and the final flush of the current file.
    fn close_file(&mut self) -> anyhow::Result<()> {
        if let Some(Writer::Ng(w)) = self.w.as_mut() {
            let mut err = None;
            for (i, st) in self.stats.iter().enumerate() {
                let r = w.write_interface_stats(
                    i as u32,
                    &InterfaceStats {
                        ifrecv: Some(st.packets),
                        ifdrop: Some(st.drops),
                        usrdeliv: Some(self.per_if[i]),
                        ..Default::default()
                    },
                );
                if let Err(e) = r {
                    err = Some(e);
                    break;
                }
            }
            if let Some(e) = err {
                return Err(self.fail(e));
            }
        }
        self.flush()?;
        self.w = None;
        Ok(())
    }
}

fn source_kind(e: &WriteError) -> Option<io::ErrorKind> {
    match e {
        WriteError::Io { source, .. } => Some(source.kind()),
        _ => None,
    }
}

// --- the capture side --------------------------------------------------------------------

/// What each capture does with its frames.
trait Consumer {
    /// Takes the frames of one ring block; returns whether to stop at once, and the frames'
    /// wire bytes.
    fn block(&mut self, block: &Block<'_>) -> anyhow::Result<(bool, u64)>;
    /// The ring block is done; `stats` are the capture's kernel counters now.
    fn block_done(&mut self, stats: Stats) -> anyhow::Result<()>;
}

/// Reads `cap` until it is woken and drained, `deadline` passes (then it wakes itself and
/// drains), the consumer asks to stop, or the interface goes down or away (after the
/// ring is drained). Returns the final kernel counters, and why the interface ended
/// the capture if it did.
fn drive(
    cap: &mut Capture,
    deadline: Option<Instant>,
    c: &mut impl Consumer,
) -> anyhow::Result<(Stats, Option<nsring_capture::Error>)> {
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) && !cap.stop_requested() {
            let _ = cap.waker().wake();
        }
        let wait = deadline
            .map_or(Duration::from_millis(250), |d| {
                d.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(250));
        let mut gone = None;
        let got = match cap.next_block(Some(wait)) {
            Ok(Some(block)) => Some(c.block(&block)?),
            Ok(None) => None,
            Err(e) if e.interface_gone() => {
                gone = Some(e);
                None
            }
            Err(e) => return Err(e.into()),
        };
        if gone.is_some() {
            return Ok((cap.stats()?, gone));
        }
        let Some((stop, bytes)) = got else {
            if cap.finished() {
                break;
            }
            continue;
        };
        cap.add_bytes(bytes); // for `nsring ls`: one store per block
        let st = cap.stats()?;
        c.block_done(st)?;
        if stop {
            break;
        }
    }
    Ok((cap.stats()?, None))
}

/// Single interface: frames go straight from the ring into the file.
struct Inline<'a> {
    out: &'a mut Output,
    limit: Option<u64>,
}

impl Consumer for Inline<'_> {
    fn block(&mut self, block: &Block<'_>) -> anyhow::Result<(bool, u64)> {
        let room = self.limit.map(|n| n.saturating_sub(self.out.written));
        let bytes = self.out.block(0, block, room)?;
        Ok((self.limit.is_some_and(|n| self.out.written >= n), bytes))
    }

    fn block_done(&mut self, stats: Stats) -> anyhow::Result<()> {
        self.out.stats[0] = stats;
        self.out.flush()
    }
}

/// A ring block's frames, copied out for the writer thread.
#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    /// (timestamp, wire length, end offset in `data`, outbound). Frames are copied with
    /// their VLAN tag put back; the writer cuts them to the snaplen.
    recs: Vec<(u64, u32, u32, bool)>,
    /// The capture's kernel counters after this block.
    stats: Stats,
}

enum Msg {
    Batch(usize, Batch),
    Done(
        usize,
        anyhow::Result<(Stats, Option<nsring_capture::Error>)>,
    ),
}

/// One of several interfaces: frames are batched per ring block and sent to the writer.
struct Batcher {
    src: usize,
    tx: mpsc::SyncSender<Msg>,
    cur: Batch,
}

impl Consumer for Batcher {
    fn block(&mut self, block: &Block<'_>) -> anyhow::Result<(bool, u64)> {
        let mut bytes = 0;
        for f in block {
            bytes += u64::from(f.wire_len());
            let tag = vlan_tag(&f);
            for part in with_vlan(f.data(), tag.as_ref()).as_slice() {
                self.cur.data.extend_from_slice(part);
            }
            self.cur.recs.push((
                f.timestamp_ns(),
                f.wire_len(),
                self.cur.data.len() as u32,
                f.direction() == Dir::Out,
            ));
        }
        Ok((false, bytes))
    }

    fn block_done(&mut self, stats: Stats) -> anyhow::Result<()> {
        let mut b = std::mem::take(&mut self.cur);
        b.stats = stats;
        // the writer is gone (failed): nothing more to do but drain
        let _ = self.tx.send(Msg::Batch(self.src, b));
        Ok(())
    }
}

/// A frame's bytes as libpcap hands them out, in at most three borrowed pieces: with a
/// VLAN tag the kernel took out put back after the MAC addresses, as
/// `Frame::copy_with_vlan` does, without copying the packet.
#[derive(Debug)]
struct Parts<'a> {
    p: [&'a [u8]; 3],
    n: usize,
}

impl<'a> Parts<'a> {
    fn one(data: &'a [u8]) -> Parts<'a> {
        Parts {
            p: [data, &[], &[]],
            n: 1,
        }
    }

    fn as_slice(&self) -> &[&'a [u8]] {
        &self.p[..self.n]
    }

    /// Cut to at most `max` bytes in all.
    fn truncate(&mut self, max: usize) {
        let mut left = max;
        for (i, part) in self.p[..self.n].iter_mut().enumerate() {
            if part.len() >= left {
                *part = &part[..left];
                self.n = i + 1;
                return;
            }
            left -= part.len();
        }
    }
}

/// The MAC addresses: a restored VLAN tag goes after them.
const VLAN_OFFSET: usize = 12;

/// The VLAN tag the kernel took out of `f`, as it goes back into the bytes.
fn vlan_tag(f: &Frame<'_>) -> Option<[u8; 4]> {
    let (tpid, tci) = f.vlan()?;
    if f.data().len() < VLAN_OFFSET {
        return None;
    }
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_be_bytes());
    Some(tag)
}

/// A frame's bytes with `tag` (from [`vlan_tag`]) put back after the MAC addresses.
fn with_vlan<'a>(data: &'a [u8], tag: Option<&'a [u8; 4]>) -> Parts<'a> {
    match tag {
        Some(tag) if data.len() >= VLAN_OFFSET => {
            let (macs, rest) = data.split_at(VLAN_OFFSET);
            Parts {
                p: [macs, &tag[..], rest],
                n: 3,
            }
        }
        _ => Parts::one(data),
    }
}

fn linktype_of(ns: &NetNs, t: &Target) -> anyhow::Result<LinkType> {
    let Some(iface) = &t.iface else {
        // 'any': every interface keeps its own header; Ethernet is by far the common case
        return Ok(LinkType::ETHERNET);
    };
    let link = nsring_netns::link::get(ns, iface)?;
    Ok(match link.link_type {
        1 | 772 => LinkType::ETHERNET, // ARPHRD_ETHER, ARPHRD_LOOPBACK
        65534 => LinkType::RAW,        // ARPHRD_NONE (tun)
        other => anyhow::bail!(
            "{t} has hardware type {other}, which nsring dump cannot describe in a capture file yet"
        ),
    })
}

fn ns_description(ns: &NetNs) -> String {
    let name = match ns.spec() {
        NsSpec::Current if ns.is_initial() => "initial".to_owned(),
        NsSpec::Current => "current".to_owned(),
        spec => spec.to_string(),
    };
    format!("netns {name} (inode {})", ns.inode())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let c = &args.capture;
    let targets = c.targets()?;
    if args.write == "-" && (args.file_size.is_some() || args.file_secs.is_some()) {
        return Err(crate::usage(
            "-C and -G rotate files; they cannot be used with -w - (standard output)",
        ));
    }
    if args.file_count.is_some() && args.file_size.is_none() && args.file_secs.is_none() {
        return Err(crate::usage("-W needs -C or -G"));
    }
    let cfgs = targets
        .iter()
        .map(|t| {
            c.config(
                t,
                Defaults {
                    snaplen: DUMP_SNAPLEN,
                    blocks: DUMP_BLOCKS,
                },
                "dump",
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Open every capture before creating the file: a bad interface leaves nothing behind.
    let mut caps = Vec::new();
    let mut metas = Vec::new();
    for (t, cfg) in targets.iter().zip(&cfgs) {
        let ns = NetNs::open(&t.ns)?;
        let linktype = linktype_of(&ns, t)?;
        caps.push(Capture::open(&ns, cfg)?);
        metas.push(IfMeta {
            name: t.iface_name().to_owned(),
            description: ns_description(&ns),
            linktype,
            label: t.to_string(),
        });
    }
    if args.format == Format::Pcap && metas.iter().any(|m| m.linktype != metas[0].linktype) {
        return Err(crate::usage(
            "the interfaces have different link types, which a pcap file cannot hold; use --format pcapng",
        ));
    }
    let wakers: Vec<_> = caps.iter().map(Capture::waker).collect();
    let for_handler = wakers.clone();
    ctrlc::set_handler(move || {
        for w in &for_handler {
            let _ = w.wake();
        }
    })
    .context("cannot install the Ctrl-C handler")?;

    let mut out = Output::new(&args, metas.clone())?;
    if !args.quiet {
        eprintln!(
            "nsring dump: capturing on {}, {}, writing {} to {}",
            metas
                .iter()
                .map(|m| format!("{} ({})", m.label, m.description))
                .collect::<Vec<_>>()
                .join(", "),
            c.describe(&cfgs[0]),
            match args.format {
                Format::Pcapng => "pcapng",
                Format::Pcap => "pcap",
            },
            if args.write == "-" {
                "standard output"
            } else {
                &args.write
            },
        );
    }
    // One warning however many sockets could not be recorded.
    crate::warn_unrecorded("dump", caps.iter().find_map(Capture::record_error));
    let deadline = c.duration.map(|d| Instant::now() + d);

    let result = if caps.len() == 1 {
        let mut cap = caps.pop().expect("one capture");
        let mut c = Inline {
            out: &mut out,
            limit: c.limit,
        };
        drive(&mut cap, deadline, &mut c).map(|(st, gone)| {
            out.stats[0] = st;
            gone
        })
    } else {
        many(caps, &wakers, deadline, c.limit, &mut out)
    };
    // An interface that went down or away ends the capture, not the file: it is closed
    // as after Ctrl-C (statistics blocks and all), then the reason is given.
    let (gone, result) = match result {
        Ok(gone) => (gone, Ok(())),
        Err(e) => (None, Err(e)),
    };
    let finish = result.and_then(|()| out.close_file());
    let drops: u64 = out.stats.iter().map(|s| s.drops).sum();
    let summary = || {
        eprintln!(
            "{} packets captured, {} dropped by kernel",
            out.written, drops
        );
    };
    match finish {
        Ok(()) => {}
        Err(e) if e.is::<PipeClosed>() => {}
        Err(e) => {
            // What was written before the failure is a valid file; say how much.
            summary();
            return Err(e);
        }
    }
    summary();
    match gone {
        Some(e) => Ok(crate::error::report(&e.into())),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Several interfaces: one thread per capture, batches to this thread, which writes.
fn many(
    caps: Vec<Capture>,
    wakers: &[nsring_capture::Waker],
    deadline: Option<Instant>,
    limit: Option<u64>,
    out: &mut Output,
) -> anyhow::Result<Option<nsring_capture::Error>> {
    let (tx, rx) = mpsc::sync_channel::<Msg>(64);
    let mut threads = Vec::new();
    for (src, mut cap) in caps.into_iter().enumerate() {
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            let mut b = Batcher {
                src,
                tx: tx.clone(),
                cur: Batch::default(),
            };
            let r = drive(&mut cap, None, &mut b);
            let _ = tx.send(Msg::Done(src, r));
        }));
    }
    drop(tx);
    let stop_all = || {
        for w in wakers {
            let _ = w.wake();
        }
    };
    let mut running = threads.len();
    let mut result = Ok(());
    let mut gone = None;
    let mut stopped = false;
    while running > 0 {
        let wait = deadline.map_or(Duration::from_millis(250), |d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) && !stopped {
                    stopped = true;
                    stop_all();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Msg::Batch(src, b) => {
                out.stats[src] = b.stats;
                if result.is_err() || limit.is_some_and(|n| out.written >= n) {
                    continue;
                }
                result = out.with_batch(|out, batch| {
                    let mut start = 0usize;
                    for &(ts, wire, end, outbound) in &b.recs {
                        if limit.is_some_and(|n| out.written >= n) {
                            break;
                        }
                        let data = &b.data[start..end as usize];
                        out.put(batch, src, ts, wire, Parts::one(data), outbound)?;
                        start = end as usize;
                    }
                    Ok(())
                });
                if result.is_ok() {
                    result = out.flush();
                }
                if (result.is_err() || limit.is_some_and(|n| out.written >= n)) && !stopped {
                    stopped = true;
                    stop_all();
                }
            }
            Msg::Done(src, r) => {
                running -= 1;
                match r {
                    Ok((st, None)) => out.stats[src] = st,
                    Ok((st, Some(e))) => {
                        // one interface gone ends the whole capture
                        out.stats[src] = st;
                        gone.get_or_insert(e);
                        if !stopped {
                            stopped = true;
                            stop_all();
                        }
                    }
                    Err(e) => {
                        if result.is_ok() {
                            result = Err(e);
                        }
                        if !stopped {
                            stopped = true;
                            stop_all();
                        }
                    }
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) && !stopped {
            stopped = true;
            stop_all();
        }
    }
    for t in threads {
        let _ = t.join();
    }
    result.map(|()| gone)
}

#[cfg(test)]
mod tests {
    use super::{BUF_BYTES, Buffered, Parts, Sink};
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

    fn cut(p: &[&[u8]], max: usize) -> Vec<Vec<u8>> {
        let mut parts = Parts {
            p: [
                p.first().copied().unwrap_or_default(),
                p.get(1).copied().unwrap_or_default(),
                p.get(2).copied().unwrap_or_default(),
            ],
            n: p.len(),
        };
        parts.truncate(max);
        parts.as_slice().iter().map(|s| s.to_vec()).collect()
    }

    #[test]
    fn parts_are_cut_to_the_snaplen_across_pieces() {
        let (a, t, b): (&[u8], &[u8], &[u8]) = (&[1, 2, 3], &[9, 9], &[4, 5, 6]);
        let all = [a, t, b];
        assert_eq!(cut(&all, 100), [a, t, b]);
        assert_eq!(cut(&all, 8), [a, t, b]);
        assert_eq!(cut(&all, 7), [a, t, &b[..2]]);
        assert_eq!(cut(&all, 5), [a, t]);
        assert_eq!(cut(&all, 4), [a, &t[..1]]);
        assert_eq!(cut(&all, 2), [&a[..2]]);
        assert_eq!(cut(&all, 0), [&a[..0]]);
        assert_eq!(cut(&[a], 2), [&a[..2]]);
        assert_eq!(cut(&[a], 9), [a]);
    }
}
