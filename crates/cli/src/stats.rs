//! PF_RING-style statistics (pfcount's block) and their JSON form.

use nsring_netns::ContainerTag;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Formats an integer with `'` as the thousands separator, like pfcount: `1'234'567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\'');
        }
        out.push(c);
    }
    out
}

/// A rate with two decimals and `'` separators: `412'345.67`.
pub fn rate(x: f64) -> String {
    let x = if x.is_finite() && x > 0.0 { x } else { 0.0 };
    let cents = (x * 100.0).round() as u64;
    format!("{}.{:02}", thousands(cents / 100), cents % 100)
}

/// Counter totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub packets: u64,
    pub bytes: u64,
    pub drops: u64,
    pub freezes: u64,
}

/// The once-a-second block: absolute since start, actual since the previous block.
pub fn block(now: Totals, since_start: Duration, prev: Totals, since_prev: Duration) -> String {
    let total = now.packets + now.drops;
    let drop_pct = if total == 0 {
        0.0
    } else {
        100.0 * now.drops as f64 / total as f64
    };
    let secs = since_start.as_secs_f64().max(1e-9);
    let d_pkts = now.packets.saturating_sub(prev.packets);
    let d_bytes = now.bytes.saturating_sub(prev.bytes);
    let d_secs = since_prev.as_secs_f64().max(1e-9);
    format!(
        "=========================\n\
         Absolute Stats: [{} pkts total][{} pkts dropped][{:.1}% dropped]\n\
         [{} pkts rcvd][{} bytes rcvd][{} pkt/sec][{} Mbit/sec]\n\
         =========================\n\
         Actual Stats: [{} pkts rcvd][{} ms][{} pps][{:.2} Gbps]\n\
         =========================\n",
        thousands(total),
        thousands(now.drops),
        drop_pct,
        thousands(now.packets),
        thousands(now.bytes),
        rate(now.packets as f64 / secs),
        rate(now.bytes as f64 * 8.0 / secs / 1e6),
        thousands(d_pkts),
        rate(since_prev.as_secs_f64() * 1e3),
        rate(d_pkts as f64 / d_secs),
        d_bytes as f64 * 8.0 / d_secs / 1e9,
    )
}

/// One JSON object of `--json` output.
#[derive(Debug, serde::Serialize)]
pub struct JsonStats<'a> {
    /// "stats" once a second, "final" at the end.
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub interface: &'a str,
    /// The container of the interface's namespace (the first, named ones first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<&'a ContainerTag>,
    #[serde(flatten)]
    pub totals: Totals,
    pub elapsed_s: f64,
    pub pps: f64,
    pub mbps: f64,
    pub interval_packets: u64,
    pub interval_pps: f64,
}

impl<'a> JsonStats<'a> {
    pub fn new(
        kind: &'a str,
        interface: &'a str,
        now: Totals,
        since_start: Duration,
        prev: Totals,
        since_prev: Duration,
    ) -> Self {
        let secs = since_start.as_secs_f64().max(1e-9);
        let d_pkts = now.packets.saturating_sub(prev.packets);
        JsonStats {
            kind,
            interface,
            container: None,
            totals: now,
            elapsed_s: since_start.as_secs_f64(),
            pps: now.packets as f64 / secs,
            mbps: now.bytes as f64 * 8.0 / secs / 1e6,
            interval_packets: d_pkts,
            interval_pps: d_pkts as f64 / since_prev.as_secs_f64().max(1e-9),
        }
    }
}

/// Emits the periodic and final statistics of a capture: the text block on stderr, or JSON
/// lines on `out`.
#[derive(Debug)]
pub struct Reporter {
    label: String,
    container: Option<ContainerTag>,
    json: bool,
    quiet: bool,
    start: Instant,
    last: Instant,
    prev: Totals,
}

impl Reporter {
    /// `quiet` suppresses the periodic text blocks (the final one is always printed).
    pub fn new(label: &str, json: bool, quiet: bool) -> Reporter {
        let now = Instant::now();
        Reporter {
            label: label.to_owned(),
            container: None,
            json,
            quiet,
            start: now,
            last: now,
            prev: Totals::default(),
        }
    }

    /// The JSON lines name this container (the capture's namespace belongs to it).
    pub fn container(mut self, tag: Option<ContainerTag>) -> Reporter {
        self.container = tag;
        self
    }

    /// When the capture started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Time left until the next periodic report is due.
    pub fn until_due(&self, interval: Duration) -> Duration {
        interval.saturating_sub(self.last.elapsed())
    }

    /// Reports `now` (periodic, or the final report), then remembers it for the next interval.
    pub fn emit(&mut self, out: &mut impl Write, totals: Totals, last: bool) -> io::Result<()> {
        let now = Instant::now();
        let (since_start, since_prev) = (now - self.start, now - self.last);
        if self.json {
            let kind = if last { "final" } else { "stats" };
            let mut line = JsonStats::new(
                kind,
                &self.label,
                totals,
                since_start,
                self.prev,
                since_prev,
            );
            line.container = self.container.as_ref();
            crate::out::json_line(out, &line)?;
            out.flush()?;
        } else if last || !self.quiet {
            out.flush()?;
            eprint!("{}", block(totals, since_start, self.prev, since_prev));
        }
        self.prev = totals;
        self.last = now;
        Ok(())
    }
}

/// One capture of several, as `count --json` reports it: when it opens (`open`), every
/// interval (`stats`), when it ends (`close`, with the reason) and in the final report
/// (`final`).
#[derive(Debug, serde::Serialize)]
pub struct TargetLine<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// `NS/IFACE`.
    pub target: String,
    pub netns: &'a str,
    pub netns_inode: u64,
    pub interface: &'a str,
    pub ifindex: u32,
    /// The container its namespace belongs to (the first, named ones first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerTag>,
    /// All of them, when there are several (a pod's namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<ContainerTag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_bytes: Option<u64>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl<'a> TargetLine<'a> {
    pub fn new(kind: &'a str, t: &'a nsring_multi::TargetInfo) -> TargetLine<'a> {
        let tags = crate::identity::of(t);
        TargetLine {
            kind,
            target: t.label(),
            netns: &t.netns,
            netns_inode: t.netns_inode,
            interface: &t.interface,
            ifindex: t.ifindex,
            container: tags.first().cloned(),
            containers: (tags.len() > 1).then_some(tags),
            ring_bytes: None,
            totals: None,
            reason: None,
        }
    }
}

/// The counters of a capture as `count` shows them.
pub fn totals_of(s: &nsring_multi::TargetStats) -> Totals {
    Totals {
        packets: s.packets,
        bytes: s.bytes,
        drops: s.kernel.drops,
        freezes: s.kernel.freezes,
    }
}

/// The sum of all captures, every interval (`total`) and at the end (`final_total`).
#[derive(Debug, serde::Serialize)]
pub struct TotalLine<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Captures open now, and opened since the start.
    pub open: usize,
    pub opened: usize,
    #[serde(flatten)]
    pub totals: Totals,
    pub elapsed_s: f64,
    pub pps: f64,
    pub mbps: f64,
}

impl<'a> TotalLine<'a> {
    pub fn new(kind: &'a str, open: usize, opened: usize, t: Totals, since: Duration) -> Self {
        let secs = since.as_secs_f64().max(1e-9);
        TotalLine {
            kind,
            open,
            opened,
            totals: t,
            elapsed_s: since.as_secs_f64(),
            pps: t.packets as f64 / secs,
            mbps: t.bytes as f64 * 8.0 / secs / 1e6,
        }
    }
}

/// One row of the table `count` prints with several captures.
#[derive(Debug, Clone)]
pub struct Row {
    pub netns: String,
    pub interface: String,
    pub totals: Totals,
    /// `open`, or why it ended.
    pub state: String,
}

/// The table of several captures: a row each, then the total.
pub fn table(rows: &[Row], total: Totals, since_start: Duration) -> String {
    let ns_w = rows.iter().map(|r| r.netns.len()).max().unwrap_or(0).max(5);
    let if_w = rows
        .iter()
        .map(|r| r.interface.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let line = |ns: &str, i: &str, t: &Totals, state: &str| {
        let l = format!(
            "{ns:<ns_w$}  {i:<if_w$}  {:>14}  {:>16}  {:>10}  {state}",
            thousands(t.packets),
            thousands(t.bytes),
            thousands(t.drops),
        );
        format!("{}\n", l.trim_end())
    };
    let mut out = format!(
        "========================= {:.1} s, {} capture{}\n",
        since_start.as_secs_f64(),
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    out.push_str(&format!(
        "{:<ns_w$}  {:<if_w$}  {:>14}  {:>16}  {:>10}  STATE\n",
        "NETNS", "INTERFACE", "PACKETS", "BYTES", "DROPS"
    ));
    for r in rows {
        let ns = if r.netns.is_empty() { "-" } else { &r.netns };
        out.push_str(&line(ns, &r.interface, &r.totals, &r.state));
    }
    out.push_str(&line("TOTAL", "", &total, ""));
    out.push_str("=========================\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1'000");
        assert_eq!(thousands(1_234_567), "1'234'567");
        assert_eq!(rate(412_345.674), "412'345.67");
        assert_eq!(rate(0.005), "0.01");
        assert_eq!(rate(f64::NAN), "0.00");
    }

    #[test]
    fn table_shape() {
        let t = |p, b, d| Totals {
            packets: p,
            bytes: b,
            drops: d,
            freezes: 0,
        };
        let rows = [
            Row {
                netns: "nsrt-1-a".into(),
                interface: "veth0".into(),
                totals: t(1000, 64_000, 0),
                state: "open".into(),
            },
            Row {
                netns: "".into(),
                interface: "eth1".into(),
                totals: t(5, 300, 2),
                state: "interface removed or moved away".into(),
            },
        ];
        let expected = "\
========================= 2.0 s, 2 captures
NETNS     INTERFACE         PACKETS             BYTES       DROPS  STATE
nsrt-1-a  veth0               1'000            64'000           0  open
-         eth1                    5               300           2  interface removed or moved away
TOTAL                         1'005            64'300           2
=========================
";
        assert_eq!(
            table(&rows, t(1005, 64_300, 2), Duration::from_secs(2)),
            expected
        );
    }

    #[test]
    fn pfcount_block_shape() {
        let now = Totals {
            packets: 1_234_555,
            bytes: 98_765_432,
            drops: 12,
            freezes: 0,
        };
        let prev = Totals {
            packets: 822_555,
            ..now
        };
        let b = block(
            now,
            Duration::from_secs(3),
            prev,
            Duration::from_micros(1_000_210),
        );
        let expected = "\
=========================
Absolute Stats: [1'234'567 pkts total][12 pkts dropped][0.0% dropped]
[1'234'555 pkts rcvd][98'765'432 bytes rcvd][411'518.33 pkt/sec][263.37 Mbit/sec]
=========================
Actual Stats: [412'000 pkts rcvd][1'000.21 ms][411'913.50 pps][0.00 Gbps]
=========================
";
        assert_eq!(b, expected);
    }
}
