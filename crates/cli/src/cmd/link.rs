//! `nsring link`: list, move, create and configure interfaces in any namespace, over netlink
//! (the subset of `ip link` / `ip addr` the seed and the lab need).
//!
//! Arguments are parsed and checked first (namespace spellings, interface names, addresses)
//! without touching the system; only then are namespaces opened and the one netlink request
//! sent. So bad input fails before anything is created.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;

use clap::Subcommand;
use nsring_netns::link::{self, Link};
use nsring_netns::{NetNs, NsSpec};

use crate::out::{Out, json_lines};
use crate::usage;

const EXAMPLES: &str = "\
Examples:
  nsring link list                                  interfaces of the current namespace
  nsring link list --netns ns0 --json               ... of ns0, as JSON
  nsring link add veth0 type veth peer veth1 --peer-netns ns0
  nsring link set veth1 up --netns ns0
  nsring link set eth1 netns ns0                    move eth1 into ns0
  nsring link addr add 198.18.0.1/24 dev veth1 --netns ns0
  nsring link del veth0                             deletes both ends of the pair

NS is a namespace name (/run/netns/NAME, shared with `ip netns`), a path to a namespace
file (/proc/PID/ns/net), or pid:PID. Changing interfaces needs CAP_NET_ADMIN; acting in
another namespace also needs CAP_SYS_ADMIN.";

/// List, move, create and configure interfaces, in any namespace.
#[derive(Debug, clap::Args)]
#[command(after_long_help = crate::long_help(EXAMPLES), subcommand_required = true)]
pub struct Args {
    /// Act inside namespace NS (NAME, a path, pid:PID or a container such as podman:web1) instead of the current one.
    #[arg(long, short = 'n', value_name = "NS", global = true, add = crate::complete::netns())]
    netns: Option<String>,

    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// List interfaces: index, name, type, MAC, MTU, state, and the veth peer (PEER@NS).
    #[command(visible_alias = "ls", visible_alias = "show")]
    List {
        /// JSON lines instead of the table: one object per interface.
        #[arg(long)]
        json: bool,
    },
    /// `set DEV netns NS` moves DEV into NS; `set DEV up` / `set DEV down` sets its state.
    Set {
        /// The interface (at most 15 bytes).
        #[arg(value_name = "DEV")]
        dev: String,
        /// `netns NS`, `up` or `down`.
        #[arg(value_name = "ACTION", required = true, num_args = 1..)]
        action: Vec<String>,
    },
    /// `add NAME type veth peer PEER [--peer-netns NS]` creates a veth pair (both ends down).
    Add {
        /// The new interface (at most 15 bytes).
        #[arg(value_name = "NAME")]
        name: String,
        /// `type veth peer PEER` (`peer name PEER` works too, as in iproute2).
        #[arg(value_name = "SPEC", required = true, num_args = 1..)]
        spec: Vec<String>,
        /// Create the peer end in namespace NS (default: the same namespace as NAME).
        #[arg(long, value_name = "NS", add = crate::complete::netns())]
        peer_netns: Option<String>,
    },
    /// `del DEV` deletes a virtual interface (both ends of a veth pair).
    #[command(visible_alias = "delete")]
    Del {
        /// The interface.
        #[arg(value_name = "DEV")]
        dev: String,
    },
    /// `addr add CIDR dev DEV` adds an address (like `ip addr add`).
    Addr {
        #[command(subcommand)]
        cmd: AddrSub,
    },
}

#[derive(Debug, Subcommand)]
enum AddrSub {
    /// `add CIDR dev DEV`: add ADDR/PREFIX (IPv4 or IPv6; no prefix means a host address).
    Add {
        /// ADDR/PREFIX, e.g. 198.18.0.1/24.
        #[arg(value_name = "CIDR")]
        cidr: String,
        /// `dev DEV`.
        #[arg(value_name = "dev DEV", required = true, num_args = 1..)]
        dev: Vec<String>,
    },
}

/// What to do, with every argument checked; nothing opened yet.
#[derive(Debug, PartialEq)]
enum Plan {
    List {
        json: bool,
    },
    SetNetns {
        dev: String,
        target: NsSpec,
    },
    SetUp {
        dev: String,
        up: bool,
    },
    AddVeth {
        name: String,
        peer: String,
        peer_ns: Option<NsSpec>,
    },
    Del {
        dev: String,
    },
    AddAddr {
        dev: String,
        addr: IpAddr,
        prefix_len: u8,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ns_spec = parse_ns(args.netns.as_deref())?;
    let plan = plan(args.cmd)?;
    let ns = open_ns(&ns_spec)?;
    match plan {
        Plan::List { json } => {
            let links = link::list(&ns).map_err(lib)?;
            let mut out = Out::new();
            if json {
                json_lines(&mut out, &links)?;
            } else {
                write_table(&mut out, &links)?;
            }
            out.flush()?;
        }
        Plan::SetNetns { dev, target } => {
            let target = open_ns(&target)?;
            link::set_netns(&ns, &dev, &target).map_err(lib)?;
        }
        Plan::SetUp { dev, up } => link::set_up(&ns, &dev, up).map_err(lib)?,
        Plan::AddVeth {
            name,
            peer,
            peer_ns,
        } => {
            let peer_ns = peer_ns.as_ref().map(open_ns).transpose()?;
            link::add_veth(&ns, &name, &peer, peer_ns.as_ref()).map_err(lib)?;
        }
        Plan::Del { dev } => link::del(&ns, &dev).map_err(lib)?,
        Plan::AddAddr {
            dev,
            addr,
            prefix_len,
        } => link::add_addr(&ns, &dev, addr, prefix_len).map_err(lib)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn plan(cmd: Sub) -> anyhow::Result<Plan> {
    Ok(match cmd {
        Sub::List { json } => Plan::List { json },
        Sub::Set { dev, action } => {
            check_ifname(&dev)?;
            let words: Vec<&str> = action.iter().map(String::as_str).collect();
            match words.as_slice() {
                ["up"] => Plan::SetUp { dev, up: true },
                ["down"] => Plan::SetUp { dev, up: false },
                ["netns", ns] => Plan::SetNetns {
                    dev,
                    target: parse_ns(Some(ns))?,
                },
                ["netns"] => {
                    return Err(usage("'set DEV netns' needs a namespace: set DEV netns NS"));
                }
                _ => {
                    return Err(usage(format!(
                        "cannot understand 'set {dev} {}': use 'set DEV netns NS', 'set DEV up' or 'set DEV down'",
                        action.join(" ")
                    )));
                }
            }
        }
        Sub::Add {
            name,
            spec,
            peer_netns,
        } => {
            check_ifname(&name)?;
            let words: Vec<&str> = spec.iter().map(String::as_str).collect();
            let peer = match words.as_slice() {
                ["type", "veth", "peer", peer] | ["type", "veth", "peer", "name", peer] => *peer,
                ["type", kind, ..] if *kind != "veth" => {
                    return Err(usage(format!(
                        "only 'type veth' can be created (not '{kind}')"
                    )));
                }
                _ => {
                    return Err(usage(format!(
                        "cannot understand 'add {name} {}': use 'add NAME type veth peer PEER'",
                        spec.join(" ")
                    )));
                }
            };
            check_ifname(peer)?;
            let peer_ns = peer_netns
                .as_deref()
                .map(|s| parse_ns(Some(s)))
                .transpose()?;
            if peer == name && peer_ns.is_none() {
                return Err(usage(format!(
                    "the two ends of a veth pair in one namespace need different names (both are '{name}')"
                )));
            }
            Plan::AddVeth {
                name,
                peer: peer.to_owned(),
                peer_ns,
            }
        }
        Sub::Del { dev } => {
            check_ifname(&dev)?;
            Plan::Del { dev }
        }
        Sub::Addr {
            cmd: AddrSub::Add { cidr, dev },
        } => {
            let (addr, prefix_len) = parse_cidr(&cidr)?;
            let dev = match dev.as_slice() {
                [kw, dev] if kw == "dev" => dev.clone(),
                _ => {
                    return Err(usage(format!(
                        "cannot understand 'addr add {cidr} {}': use 'addr add CIDR dev DEV'",
                        dev.join(" ")
                    )));
                }
            };
            check_ifname(&dev)?;
            Plan::AddAddr {
                dev,
                addr,
                prefix_len,
            }
        }
    })
}

/// `None` is the current namespace.
fn parse_ns(s: Option<&str>) -> anyhow::Result<NsSpec> {
    match s {
        None => Ok(NsSpec::Current),
        Some(s) => s.parse::<NsSpec>().map_err(lib),
    }
}

fn open_ns(spec: &NsSpec) -> anyhow::Result<NetNs> {
    NetNs::open(spec).map_err(|e| match e {
        // These say which namespace already.
        nsring_netns::Error::NotFound { .. }
        | nsring_netns::Error::NotANetNs { .. }
        | nsring_netns::Error::InvalidName { .. } => lib(e),
        e => anyhow::Error::new(e).context(match spec {
            NsSpec::Current => "opening the current network namespace".to_owned(),
            spec => format!("opening network namespace '{spec}'"),
        }),
    })
}

fn check_ifname(name: &str) -> anyhow::Result<()> {
    link::validate_ifname(name).map_err(lib)
}

/// `ADDR/PREFIX`, or `ADDR` alone for a host address (/32, /128), like `ip addr add`.
fn parse_cidr(s: &str) -> anyhow::Result<(IpAddr, u8)> {
    let bad = || {
        usage(format!(
            "invalid address '{s}': expected ADDR/PREFIX, e.g. 198.18.0.1/24"
        ))
    };
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
    };
    Ok((addr, len))
}

/// Library errors that mean the user named something that is not there (or is taken, or
/// is not a valid name) are usage errors (exit 2); the rest are runtime errors (exit 1),
/// with their io::Error kept in the chain for capability advice.
fn lib(e: nsring_netns::Error) -> anyhow::Error {
    if e.is_usage() {
        usage(e.to_string())
    } else {
        anyhow::Error::new(e)
    }
}

/// The TYPE column: the link kind, or what the hardware type says for physical interfaces.
fn type_of(l: &Link) -> String {
    if let Some(kind) = &l.kind {
        return kind.clone();
    }
    match l.link_type {
        1 => "ether".into(),
        772 => "loopback".into(),
        65534 => "none".into(),
        n => format!("arphrd-{n}"),
    }
}

/// The PEER column: `name` (same namespace), `name@ns`, `if12@nsid 3`, or `-`.
fn peer_of(l: &Link) -> String {
    let Some(p) = &l.peer else {
        return "-".into();
    };
    let name = p.name.clone().unwrap_or_else(|| format!("if{}", p.index));
    match (&p.netns, p.netns_id) {
        (_, None) => name,
        (Some(ns), Some(_)) => format!("{name}@{ns}"),
        (None, Some(id)) => format!("{name}@nsid {id}"),
    }
}

fn write_table(out: &mut impl Write, links: &[Link]) -> std::io::Result<()> {
    let header = [
        "INDEX", "NAME", "TYPE", "MAC", "MTU", "STATE", "OPER", "PEER",
    ];
    let rows: Vec<[String; 8]> = links
        .iter()
        .map(|l| {
            [
                l.index.to_string(),
                l.name.clone(),
                type_of(l),
                l.mac.clone().unwrap_or_else(|| "-".into()),
                l.mtu.to_string(),
                if l.admin_up { "up" } else { "down" }.into(),
                l.oper_state.clone(),
                peer_of(l),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                writeln!(out, "{cell}")?;
            } else if i == 0 || i == 4 {
                // Numbers right-aligned.
                write!(out, "{cell:>w$}  ", w = widths[i])?;
            } else {
                write!(out, "{cell:<w$}  ", w = widths[i])?;
            }
        }
        Ok(())
    };
    line(out, &header)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsring_netns::link::Peer;

    fn plan_of(args: &[&str]) -> anyhow::Result<Plan> {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct T {
            #[command(flatten)]
            args: Args,
        }
        let t = T::try_parse_from(std::iter::once("link").chain(args.iter().copied()))
            .map_err(|e| usage(e.to_string()))?;
        plan(t.args.cmd)
    }

    fn is_usage(e: &anyhow::Error) -> bool {
        e.chain().any(|e| e.is::<crate::Usage>())
    }

    #[test]
    fn plans() {
        assert_eq!(
            plan_of(&["set", "eth1", "netns", "ns0"]).unwrap(),
            Plan::SetNetns {
                dev: "eth1".into(),
                target: NsSpec::Plain("ns0".into())
            }
        );
        assert_eq!(
            plan_of(&["set", "eth1", "up", "--netns", "pid:7"]).unwrap(),
            Plan::SetUp {
                dev: "eth1".into(),
                up: true
            }
        );
        assert_eq!(
            plan_of(&[
                "add",
                "a",
                "type",
                "veth",
                "peer",
                "name",
                "b",
                "--peer-netns",
                "/proc/1/ns/net"
            ])
            .unwrap(),
            Plan::AddVeth {
                name: "a".into(),
                peer: "b".into(),
                peer_ns: Some(NsSpec::Path("/proc/1/ns/net".into()))
            }
        );
        assert_eq!(
            plan_of(&["addr", "add", "198.18.0.1/24", "dev", "v0"]).unwrap(),
            Plan::AddAddr {
                dev: "v0".into(),
                addr: "198.18.0.1".parse().unwrap(),
                prefix_len: 24
            }
        );
    }

    #[test]
    fn bad_plans_are_usage_errors() {
        for bad in [
            &["set", "eth1", "sideways"][..],
            &["set", "eth1", "netns"],
            &["set", "eth1", "netns", "pid:x"],
            &["set", "x234567890123456", "up"],
            &["add", "a", "type", "bridge"],
            &["add", "a", "type", "veth", "peer", "b234567890123456"],
            &["add", "a", "type", "veth", "peer", "a"],
            &["add", "a", "type", "veth"],
            &["addr", "add", "198.18.0.1/33", "dev", "v0"],
            &["addr", "add", "nonsense", "dev", "v0"],
            &["addr", "add", "198.18.0.1/24", "v0"],
            &["del", "a/b"],
        ] {
            let err = plan_of(bad).expect_err(&format!("{bad:?} accepted"));
            assert!(is_usage(&err), "{bad:?}: {err:#}");
        }
    }

    #[test]
    fn cidr() {
        assert_eq!(
            parse_cidr("198.18.0.1").unwrap(),
            ("198.18.0.1".parse().unwrap(), 32)
        );
        assert_eq!(parse_cidr("2001:db8::1/64").unwrap().1, 64);
        assert!(parse_cidr("198.18.0.1/").is_err());
        assert!(parse_cidr("2001:db8::1/129").is_err());
    }

    fn link(index: u32, name: &str, peer: Option<Peer>) -> Link {
        Link {
            index,
            name: name.into(),
            kind: peer.as_ref().map(|_| "veth".into()),
            mac: (index != 1).then(|| "02:00:00:00:00:01".into()),
            mtu: if index == 1 { 65536 } else { 1500 },
            admin_up: index == 1,
            oper_state: if index == 1 { "unknown" } else { "down" }.into(),
            link_type: if index == 1 { 772 } else { 1 },
            promiscuity: 0,
            num_rx_queues: 1,
            num_tx_queues: 1,
            peer,
            master: None,
            stats: None,
        }
    }

    #[test]
    fn table_snapshot() {
        let links = [
            link(1, "lo", None),
            link(
                5,
                "veth-a",
                Some(Peer {
                    index: 4,
                    name: Some("veth-b".into()),
                    netns_id: Some(0),
                    netns: Some("ns1".into()),
                }),
            ),
            link(
                6,
                "x0",
                Some(Peer {
                    index: 12,
                    name: None,
                    netns_id: Some(3),
                    netns: None,
                }),
            ),
            link(
                7,
                "p0",
                Some(Peer {
                    index: 8,
                    name: Some("p1".into()),
                    netns_id: None,
                    netns: None,
                }),
            ),
        ];
        let mut buf = Vec::new();
        write_table(&mut buf, &links).unwrap();
        let expected = "\
INDEX  NAME    TYPE      MAC                  MTU  STATE  OPER     PEER
    1  lo      loopback  -                  65536  up     unknown  -
    5  veth-a  veth      02:00:00:00:00:01   1500  down   down     veth-b@ns1
    6  x0      veth      02:00:00:00:00:01   1500  down   down     if12@nsid 3
    7  p0      veth      02:00:00:00:00:01   1500  down   down     p1
";
        assert_eq!(String::from_utf8(buf).unwrap(), expected);
    }
}
