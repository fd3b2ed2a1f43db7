//! One scrape: every chosen namespace's view, written as OpenMetrics text.
//!
//! The names and labels are nsring's contract (docs/DESIGN.md): `nsring_` first, base units
//! with their suffix, `_total` on counters; labels `netns` (never `namespace`, which
//! Kubernetes scrapes rewrite), `container`, `interface`, `owner`, `socket`. A socket has at
//! most four series, labelled the same for its whole life. A count nobody knows (another
//! process's socket's packets, a ring socket's drops) has no series at all.

use std::fmt;
use std::time::Instant;

use nsring_registry::record::{RecordKind, SocketMode};
use nsring_registry::{NamespaceView, RunDir, SocketEntry, host};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::{Error, Select};

/// The media type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one scrape found.
#[derive(Debug)]
pub struct Scrape {
    /// The views of the namespaces read.
    pub views: Vec<NamespaceView>,
    /// Namespaces chosen but not readable this time (gone meanwhile, say), with why.
    pub failed: Vec<(String, String)>,
    /// Seconds the collection took.
    pub seconds: f64,
}

/// Reads every namespace `select` chooses: one survey of the host.
pub fn collect(select: &Select, run: &RunDir) -> Result<Scrape, Error> {
    let start = Instant::now();
    let chosen = select.filter(host::namespaces()?);
    let survey = host::survey(&chosen, run)?;
    Ok(Scrape {
        views: survey.views,
        failed: survey.failed,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The scrape as OpenMetrics text, ending with `# EOF`.
pub fn render(scrape: Scrape) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(scrape)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

/// A sample's labels, in the order of the naming rule.
type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
struct Families(Scrape);

impl Collector for Families {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.0;
        netns_families(&mut enc, &s.views)?;
        interface_families(&mut enc, &s.views)?;
        socket_families(&mut enc, &s.views)?;
        exporter_families(&mut enc, s)
    }
}

/// A counter or gauge family and its samples; a family without samples is left out.
struct Family<'a> {
    name: &'a str,
    help: &'a str,
    unit: Option<Unit>,
    kind: MetricType,
    samples: Vec<(Labels, u64)>,
}

impl Family<'_> {
    fn write(self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        if self.samples.is_empty() {
            return Ok(());
        }
        let mut m = enc.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        for (labels, v) in &self.samples {
            let e = m.encode_family(labels)?;
            match self.kind {
                MetricType::Counter => ConstCounter::new(*v).encode(e)?,
                _ => ConstGauge::new(i64::try_from(*v).unwrap_or(i64::MAX)).encode(e)?,
            }
        }
        Ok(())
    }
}

fn counter<'a>(name: &'a str, help: &'a str, unit: Option<Unit>) -> Family<'a> {
    Family {
        name,
        help,
        unit,
        kind: MetricType::Counter,
        samples: Vec::new(),
    }
}

fn gauge<'a>(name: &'a str, help: &'a str) -> Family<'a> {
    Family {
        name,
        help,
        unit: None,
        kind: MetricType::Gauge,
        samples: Vec::new(),
    }
}

/// The labels every series of a namespace starts with.
fn ns_labels(v: &NamespaceView) -> Labels {
    let mut l = vec![("netns", v.namespace.label.clone())];
    if let Some(c) = &v.namespace.container {
        l.push(("container", c.clone()));
    }
    l
}

fn netns_families(enc: &mut DescriptorEncoder<'_>, views: &[NamespaceView]) -> fmt::Result {
    let mut info = gauge(
        "nsring_netns_info",
        "A network namespace nsring reads (1), with its nsfs inode.",
    );
    for v in views {
        let mut l = ns_labels(v);
        l.push(("inode", v.namespace.inode.to_string()));
        info.samples.push((l, 1));
    }
    info.write(enc)
}

fn interface_families(enc: &mut DescriptorEncoder<'_>, views: &[NamespaceView]) -> fmt::Result {
    use nsring_netns::link::LinkStats;
    type Pick = fn(&LinkStats) -> u64;
    let counters: [(&str, &str, Option<Unit>, Pick); 8] = [
        (
            "nsring_interface_receive_packets",
            "Packets the interface received (the kernel's counter).",
            None,
            |s| s.rx_packets,
        ),
        (
            "nsring_interface_transmit_packets",
            "Packets the interface sent (the kernel's counter).",
            None,
            |s| s.tx_packets,
        ),
        (
            "nsring_interface_receive",
            "Bytes the interface received (the kernel's counter).",
            Some(Unit::Bytes),
            |s| s.rx_bytes,
        ),
        (
            "nsring_interface_transmit",
            "Bytes the interface sent (the kernel's counter).",
            Some(Unit::Bytes),
            |s| s.tx_bytes,
        ),
        (
            "nsring_interface_receive_drops",
            "Received packets the interface dropped (the kernel's counter).",
            None,
            |s| s.rx_dropped,
        ),
        (
            "nsring_interface_transmit_drops",
            "Packets to send that the interface dropped (the kernel's counter).",
            None,
            |s| s.tx_dropped,
        ),
        (
            "nsring_interface_receive_errors",
            "Receive errors of the interface (the kernel's counter).",
            None,
            |s| s.rx_errors,
        ),
        (
            "nsring_interface_transmit_errors",
            "Transmit errors of the interface (the kernel's counter).",
            None,
            |s| s.tx_errors,
        ),
    ];
    let ifaces = || {
        views.iter().flat_map(|v| {
            v.devices.iter().map(move |d| {
                let mut l = ns_labels(v);
                l.push(("interface", d.link.name.clone()));
                (l, d)
            })
        })
    };
    for (name, help, unit, pick) in counters {
        let mut f = counter(name, help, unit);
        for (l, d) in ifaces() {
            if let Some(st) = &d.link.stats {
                f.samples.push((l, pick(st)));
            }
        }
        f.write(enc)?;
    }
    let mut up = gauge(
        "nsring_interface_up",
        "1 if the interface is up (operationally, or administratively where the driver tells no state, as lo), else 0.",
    );
    for (l, d) in ifaces() {
        let s = d.link.oper_state.as_str();
        let is_up = s == "up" || (s == "unknown" && d.link.admin_up);
        up.samples.push((l, u64::from(is_up)));
    }
    up.write(enc)
}

/// A socket's identity labels: the same on all its series, for its whole life.
fn socket_labels(v: &NamespaceView, s: &SocketEntry) -> Labels {
    let mut l = ns_labels(v);
    l.push(("interface", s.ifname()));
    l.push(("owner", s.owner_text()));
    l.push(("socket", s.inode.to_string()));
    l
}

fn socket_families(enc: &mut DescriptorEncoder<'_>, views: &[NamespaceView]) -> fmt::Result {
    let mut info = gauge(
        "nsring_socket_info",
        "A packet socket (1): kind nsring (with its application name) or other (another program's, tcpdump's say).",
    );
    let mut rx_packets = counter(
        "nsring_socket_receive_packets",
        "Packets the socket received; only where known (nsring's sockets: the kernel tells no count for another program's).",
        None,
    );
    let mut rx_bytes = counter(
        "nsring_socket_receive",
        "Bytes the socket received (nsring's sockets).",
        Some(Unit::Bytes),
    );
    let mut rx_drops = counter(
        "nsring_socket_receive_drops",
        "Packets the kernel dropped for the socket; only where known (nsring's sockets, and other sockets without a ring).",
        None,
    );
    let mut tx_packets = counter(
        "nsring_socket_transmit_packets",
        "Packets the socket sent (nsring's transmit sockets).",
        None,
    );
    let mut tx_bytes = counter(
        "nsring_socket_transmit",
        "Bytes the socket sent (nsring's transmit-only sockets).",
        Some(Unit::Bytes),
    );
    let mut tx_errors = counter(
        "nsring_socket_transmit_errors",
        "Packets the kernel refused to send for the socket (nsring's transmit sockets).",
        None,
    );
    let mut counters = KernelCounters::default();
    for v in views {
        for s in &v.sockets {
            let l = socket_labels(v, s);
            if s.record
                .as_ref()
                .is_some_and(|r| r.info.kind == RecordKind::KernelCounter)
            {
                counters.add(l, s);
                continue;
            }
            let mut il = l.clone();
            match &s.record {
                Some(r) => {
                    il.push(("kind", "nsring".into()));
                    il.push(("app", r.info.app_name.clone()));
                }
                None => il.push(("kind", "other".into())),
            }
            info.samples.push((il, 1));
            if let Some(n) = s.packets {
                rx_packets.samples.push((l.clone(), n));
            }
            if let Some(n) = s.drops {
                rx_drops.samples.push((l.clone(), n));
            }
            let Some(r) = &s.record else { continue };
            let c = &r.counters;
            match r.info.mode {
                SocketMode::Tx => {
                    tx_packets.samples.push((l.clone(), c.sent));
                    tx_bytes.samples.push((l.clone(), c.bytes));
                    tx_errors.samples.push((l, c.send_errors));
                }
                SocketMode::RxTx => {
                    tx_packets.samples.push((l.clone(), c.sent));
                    tx_errors.samples.push((l, c.send_errors));
                }
                _ => rx_bytes.samples.push((l, c.bytes)),
            }
        }
    }
    for f in [
        info, rx_packets, rx_bytes, rx_drops, tx_packets, tx_bytes, tx_errors,
    ] {
        f.write(enc)?;
    }
    counters.write(enc)
}

/// In-kernel counters (`nsring count --backend kernel`): eBPF programs at an interface's
/// traffic-control hooks, recorded with the packet socket that anchors them. Labelled as
/// sockets are (by that socket); they count what the filter accepts, and nothing is copied
/// or dropped.
struct KernelCounters<'a> {
    info: Family<'a>,
    packets: Family<'a>,
    bytes: Family<'a>,
}

impl Default for KernelCounters<'_> {
    fn default() -> Self {
        KernelCounters {
            info: gauge(
                "nsring_kernel_counter_info",
                "An in-kernel counter (1), with its application name, direction and filter.",
            ),
            packets: counter(
                "nsring_kernel_counter_packets",
                "Packets an in-kernel counter counted (those its filter accepts).",
                None,
            ),
            bytes: counter(
                "nsring_kernel_counter",
                "Bytes of the packets an in-kernel counter counted.",
                Some(Unit::Bytes),
            ),
        }
    }
}

impl KernelCounters<'_> {
    fn add(&mut self, l: Labels, s: &SocketEntry) {
        let Some(r) = &s.record else { return };
        let mut il = l.clone();
        il.push(("app", r.info.app_name.clone()));
        il.push(("direction", r.info.direction.clone()));
        if let Some(f) = &r.info.filter {
            il.push(("filter", f.clone()));
        }
        self.info.samples.push((il, 1));
        self.packets.samples.push((l.clone(), r.counters.packets));
        self.bytes.samples.push((l, r.counters.bytes));
    }

    fn write(self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        self.info.write(enc)?;
        self.packets.write(enc)?;
        self.bytes.write(enc)
    }
}

fn exporter_families(enc: &mut DescriptorEncoder<'_>, s: &Scrape) -> fmt::Result {
    let mut read = gauge(
        "nsring_exporter_namespaces",
        "Namespaces read in this scrape.",
    );
    read.samples.push((Vec::new(), s.views.len() as u64));
    read.write(enc)?;
    let mut failed = gauge(
        "nsring_exporter_namespace_failures",
        "Namespaces chosen but not readable in this scrape (gone meanwhile, say).",
    );
    failed.samples.push((Vec::new(), s.failed.len() as u64));
    failed.write(enc)?;
    // seconds are not whole: written by hand as a float gauge
    let mut m = enc.encode_descriptor(
        "nsring_exporter_scrape_duration",
        "Seconds this scrape took to read the namespaces.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    let none: Labels = Vec::new();
    let e = m.encode_family(&none)?;
    ConstGauge::new(s.seconds).encode(e)
}

#[cfg(test)]
mod tests;
