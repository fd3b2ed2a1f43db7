//! A throw-away network lab for tests and demos: named namespaces, veth pairs and addresses
//! from 198.18.0.0/15 (RFC 2544 benchmarking space, never routed), all removed on drop —
//! also when the test panics.
//!
//! Names are unique per process and per lab (`nsrt-<pid>-<counter>-<tag>-<short>`), so tests
//! running in parallel, in one process or many, never collide. A lab left behind by a crashed
//! run (its PID no longer exists) is swept by the next [`Lab::new`].
//!
//! The lab methods panic on failure: they are meant for tests, where a failed setup is a
//! failed test. [`Drop`] never panics.
//!
//! ```no_run
//! let mut lab = nsring_netns::lab::Lab::new("ping");
//! lab.netns("a");
//! lab.netns("b");
//! let (ia, ib) = lab.veth("a", "veth-a", "b", "veth-b");
//! lab.addr("a", "veth-a", "198.18.0.1/24");
//! lab.addr("b", "veth-b", "198.18.0.2/24");
//! # let _ = (ia, ib);
//! // ... run the test; the namespaces and the veth pair go away with `lab`.
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{NETNS_RUN_DIR, NetNs, link};

pub mod docker;
pub mod podman;

/// Labs made by this process, for unique names.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Where every lab name starts.
pub const PREFIX: &str = "nsrt-";

/// A set of namespaces and interfaces that is removed when dropped.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Vec<(String, String, NetNs)>,
    host_links: Vec<String>,
    initial: Option<NetNs>,
}

impl Lab {
    /// A new, empty lab. Sweeps first the namespaces (and initial-namespace veths) of earlier
    /// runs whose process is gone.
    ///
    /// `tag` (say, the test's name) is kept in the names to help a human reading `ip netns`;
    /// it is cut to 12 characters and anything but `[A-Za-z0-9_]` becomes `_`.
    pub fn new(tag: &str) -> Lab {
        sweep_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag: String = tag
            .chars()
            .take(12)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut prefix = format!("{PREFIX}{}-{n}", std::process::id());
        if !tag.is_empty() {
            prefix.push('-');
            prefix.push_str(&tag);
        }
        Lab {
            prefix,
            namespaces: Vec::new(),
            host_links: Vec::new(),
            initial: None,
        }
    }

    /// The prefix every namespace of this lab starts with (`nsrt-<pid>-<counter>[-tag]`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full iproute2 name of lab namespace `short` (whether or not it exists yet).
    pub fn ns_name(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// Creates the named namespace `<prefix>-<short>` with `lo` up and returns a handle on it.
    ///
    /// # Panics
    /// If the namespace cannot be created, or exists in this lab already.
    pub fn netns(&mut self, short: &str) -> NetNs {
        assert!(
            !self.namespaces.iter().any(|(s, _, _)| s == short),
            "lab namespace '{short}' created twice"
        );
        let name = self.ns_name(short);
        let ns = crate::add(&name).unwrap_or_else(|e| panic!("lab: creating {name}: {e:?}"));
        // Record it before anything else can fail, so Drop removes it.
        let handle = ns
            .try_clone()
            .unwrap_or_else(|e| panic!("lab: dup of {name}: {e:?}"));
        self.namespaces.push((short.to_owned(), name.clone(), ns));
        link::set_up(&handle, "lo", true).unwrap_or_else(|e| panic!("lab: lo up in {name}: {e:?}"));
        // No IPv6 autoconfiguration (router solicitations, MLD, DAD) on the lab's links: the
        // only frames on the wire are the ones a test sends, so counts can be exact.
        handle
            .run(|| {
                ["default", "all"].iter().try_for_each(|conf| {
                    std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "1")
                })
            })
            .and_then(|r| r.map_err(|e| crate::Error::sys("disable ipv6", name.clone(), e)))
            .unwrap_or_else(|e| panic!("lab: disabling IPv6 in {name}: {e:?}"));
        handle
    }

    /// The handle on lab namespace `short`.
    ///
    /// # Panics
    /// If the lab has no such namespace.
    pub fn ns(&self, short: &str) -> &NetNs {
        self.namespaces
            .iter()
            .find(|(s, _, _)| s == short)
            .map(|(_, _, ns)| ns)
            .unwrap_or_else(|| panic!("lab has no namespace '{short}' (create it with netns())"))
    }

    /// Deletes lab namespace `short` now, as `ip netns del` does: its name goes and the
    /// lab's handle is closed, so the kernel tears it down (and its veths with it) once
    /// nothing else holds it.
    ///
    /// # Panics
    /// If the lab has no such namespace or it cannot be deleted.
    pub fn remove(&mut self, short: &str) {
        let i = self
            .namespaces
            .iter()
            .position(|(s, _, _)| s == short)
            .unwrap_or_else(|| panic!("lab has no namespace '{short}'"));
        let (_, name, ns) = self.namespaces.remove(i);
        drop(ns);
        crate::del(&name).unwrap_or_else(|e| panic!("lab: deleting {name}: {e:?}"));
    }

    /// A veth pair `a_if` (in lab namespace `a_ns`) — `b_if` (in `b_ns`), both up. Returns
    /// the two ifindexes.
    ///
    /// # Panics
    /// If a namespace is not part of the lab or the pair cannot be made.
    pub fn veth(&mut self, a_ns: &str, a_if: &str, b_ns: &str, b_if: &str) -> (u32, u32) {
        let a = self.ns(a_ns);
        let b = self.ns(b_ns);
        link::add_veth(a, a_if, b_if, Some(b))
            .unwrap_or_else(|e| panic!("lab: veth {a_ns}/{a_if} -- {b_ns}/{b_if}: {e:?}"));
        for (ns, dev) in [(a, a_if), (b, b_if)] {
            link::set_up(ns, dev, true).unwrap_or_else(|e| panic!("lab: {dev} up: {e:?}"));
        }
        let ia = link::get(a, a_if).unwrap_or_else(|e| panic!("lab: {a_if}: {e:?}"));
        let ib = link::get(b, b_if).unwrap_or_else(|e| panic!("lab: {b_if}: {e:?}"));
        (ia.index, ib.index)
    }

    /// A veth pair with one end in the *initial* namespace, under a unique name of at most
    /// 15 bytes (returned), and the other end `b_if` in lab namespace `b_ns`; both up; the
    /// initial-namespace end is deleted on drop. Use it only when a test really needs an
    /// initial-namespace interface (moving one into a namespace, say).
    ///
    /// # Panics
    /// If the pair cannot be made.
    pub fn host_veth(&mut self, b_ns: &str, b_if: &str) -> String {
        static HOST_COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = HOST_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = host_name(std::process::id(), n);
        self.host_netns();
        // Recorded first, so Drop deletes it whatever fails next.
        self.host_links.push(name.clone());
        let b = self.ns(b_ns);
        let initial = self.initial.as_ref().expect("set above");
        link::add_veth(initial, &name, b_if, Some(b))
            .unwrap_or_else(|e| panic!("lab: host veth {name} -- {b_ns}/{b_if}: {e:?}"));
        link::set_up(initial, &name, true).unwrap_or_else(|e| panic!("lab: {name} up: {e:?}"));
        link::set_up(b, b_if, true).unwrap_or_else(|e| panic!("lab: {b_if} up: {e:?}"));
        name
    }

    /// The namespace [`Lab::host_veth`] puts its first end in: the initial namespace
    /// ([`NetNs::initial`]), or the caller's own if that cannot be found.
    ///
    /// # Panics
    /// If neither can be opened.
    pub fn host_netns(&mut self) -> &NetNs {
        self.initial.get_or_insert_with(|| {
            NetNs::initial()
                .or_else(|_| NetNs::current())
                .unwrap_or_else(|e| panic!("lab: initial netns: {e:?}"))
        })
    }

    /// Adds `cidr` (like `198.18.0.1/24`) to `dev` in lab namespace `ns`.
    ///
    /// # Panics
    /// If `cidr` is not inside 198.18.0.0/15 (the lab never uses other addresses), or the
    /// address cannot be added.
    pub fn addr(&mut self, ns: &str, dev: &str, cidr: &str) {
        let (addr, prefix_len) =
            parse_lab_cidr(cidr).unwrap_or_else(|why| panic!("lab: address {cidr:?}: {why}"));
        link::add_addr(self.ns(ns), dev, IpAddr::V4(addr), prefix_len)
            .unwrap_or_else(|e| panic!("lab: addr {cidr} on {ns}/{dev}: {e:?}"));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(initial) = &self.initial {
            for name in self.host_links.drain(..) {
                match link::del(initial, &name) {
                    Ok(()) | Err(crate::Error::LinkNotFound { .. }) => {}
                    Err(e) => warn(format_args!("could not delete {name}: {e}")),
                }
            }
        }
        for (_, name, ns) in self.namespaces.drain(..).rev() {
            // Virtual interfaces die with their namespace, but only once nobody holds it (a
            // test may keep a handle or a socket): delete them now, so a veth never outlives
            // the lab in a namespace that lingers.
            if let Ok(links) = link::list(&ns) {
                for l in links.iter().filter(|l| l.kind.is_some()) {
                    let _ = link::del(&ns, &l.name);
                }
            }
            drop(ns);
            if let Err(e) = crate::del(&name)
                && !matches!(e, crate::Error::NotFound { .. })
            {
                warn(format_args!("could not delete namespace {name}: {e}"));
            }
        }
    }
}

/// A warning from `Drop`; unlike `eprintln!`, never panics (stderr may be closed).
fn warn(msg: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "lab: {msg}");
}

/// `nsrt<pid hex>h<counter hex>`: at most 4 + 6 + 1 + 4 = 15 bytes for PIDs up to 2^22
/// (the kernel's limit) and 65536 host veths per process.
fn host_name(pid: u32, n: u32) -> String {
    format!("nsrt{pid:x}h{:x}", n & 0xffff)
}

/// The PID in a host veth name made by [`host_name`].
fn host_name_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("nsrt")?;
    let (pid, n) = rest.split_once('h')?;
    u32::from_str_radix(n, 16).ok()?;
    u32::from_str_radix(pid, 16).ok()
}

/// The PID in a lab namespace name `nsrt-<pid>-<counter>...`.
fn ns_name_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    Some(pid)
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces (and initial-namespace veths) left by lab processes that are gone.
fn sweep_stale() {
    if let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) {
        for entry in dir.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if ns_name_pid(&name).is_some_and(|pid| !pid_alive(pid)) {
                let _ = crate::del(&name);
            }
        }
    }
    if let Ok(initial) = NetNs::initial().or_else(|_| NetNs::current())
        && let Ok(links) = link::list(&initial)
    {
        for l in links {
            if l.kind.as_deref() == Some("veth")
                && host_name_pid(&l.name).is_some_and(|pid| !pid_alive(pid))
            {
                let _ = link::del(&initial, &l.name);
            }
        }
    }
}

/// Parses `A.B.C.D/N` and checks it lies in 198.18.0.0/15.
fn parse_lab_cidr(cidr: &str) -> Result<(Ipv4Addr, u8), &'static str> {
    let (addr, len) = cidr
        .split_once('/')
        .ok_or("expected A.B.C.D/N, e.g. 198.18.0.1/24")?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| "not an IPv4 address")?;
    let len: u8 = len.parse().map_err(|_| "not a prefix length")?;
    if len > 32 {
        return Err("prefix length above 32");
    }
    if len < 15 {
        return Err("prefix shorter than /15 would reach outside 198.18.0.0/15");
    }
    let o = addr.octets();
    if o[0] != 198 || (o[1] & 0xfe) != 18 {
        return Err("the lab only uses 198.18.0.0/15");
    }
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_fit_and_parse_back() {
        for (pid, n) in [(1, 0), (4_194_304, 0xffff), (123_456, 7)] {
            let name = host_name(pid, n);
            assert!(name.len() <= 15, "{name}");
            link::validate_ifname(&name).unwrap();
            assert_eq!(host_name_pid(&name), Some(pid));
        }
        assert_eq!(host_name_pid("eth0"), None);
        assert_eq!(host_name_pid("nsrtxh1"), None);
    }

    #[test]
    fn ns_names_parse_back() {
        assert_eq!(ns_name_pid("nsrt-1234-0-tag-a"), Some(1234));
        assert_eq!(ns_name_pid("nsrt-1234-5-a"), Some(1234));
        assert_eq!(ns_name_pid("nsrt-ex-1234"), None);
        assert_eq!(ns_name_pid("nsrt-1234"), None);
        assert_eq!(ns_name_pid("ns0"), None);
    }

    #[test]
    fn lab_addresses_stay_in_198_18() {
        assert!(parse_lab_cidr("198.18.0.1/24").is_ok());
        assert!(parse_lab_cidr("198.19.255.254/30").is_ok());
        assert!(parse_lab_cidr("198.18.0.0/15").is_ok());
        for bad in [
            "10.0.0.1/24",
            "198.20.0.1/24",
            "198.18.0.1/14",
            "198.18.0.1",
            "198.18.0.1/33",
            "x/24",
        ] {
            assert!(parse_lab_cidr(bad).is_err(), "{bad} accepted");
        }
    }
}
