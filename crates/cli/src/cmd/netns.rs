//! `nsring netns`: manage network namespaces like `ip netns` (named ones are iproute2's, in
//! `/run/netns`), and find the anonymous ones that processes (containers) hold.
//!
//! Arguments are parsed and checked (names, namespace spellings) before anything is changed,
//! so `del a b/c` deletes nothing when one name is bad or missing.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use nsring_netns::{DeleteReport, Fate, Holder, NsInfo, NsSpec};

use crate::out::{Out, json_lines};
use crate::usage;

const EXAMPLES: &str = "\
Examples:
  nsring netns add ns0
  nsring netns list                  named namespaces, like `ip netns list`
  nsring netns list --all            also anonymous ones held by processes (containers)
  nsring netns exec ns0 ip -o link   run a command inside ns0
  nsring netns exec podman:web1 ip -o addr
                                     inside a container's namespace (only that)
  nsring netns identify 1234         the name(s) of PID 1234's namespace
  nsring netns pids ns0
  nsring netns attach web 1234       name PID 1234's namespace 'web'
  nsring netns attach web podman:web1
                                     name a container's namespace (any NS spelling)
  nsring netns del ns0               says who still holds it and what happens to its interfaces

NS is a namespace name (/run/netns/NAME, shared with `ip netns`), a path to a namespace
file (/proc/PID/ns/net), or pid:PID. Creating, deleting and entering namespaces needs
CAP_SYS_ADMIN.";

/// Manage network namespaces (like `ip netns`; named namespaces are shared with iproute2).
#[derive(Debug, clap::Args)]
#[command(after_long_help = crate::long_help(EXAMPLES), subcommand_required = true)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Create the named namespace NAME (/run/netns/NAME).
    Add {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Delete named namespaces; tells which processes still hold each and what happens to
    /// its interfaces.
    #[command(visible_alias = "delete")]
    Del {
        /// Names (or /run/netns/NAME paths).
        #[arg(value_name = "NAME", required = true, num_args = 1.., add = crate::complete::netns())]
        names: Vec<String>,
        /// JSON lines instead of text: one report per namespace.
        #[arg(long)]
        json: bool,
        /// Return at once; by default, when the namespace goes away (no process holds it),
        /// wait up to 5 s until its interfaces' veth peers are gone too (exit 1 naming what
        /// remains), so their names can be used again right away.
        #[arg(long)]
        no_wait: bool,
    },
    /// List named namespaces (`NAME (id: N)` like `ip netns list`); --all adds every namespace
    /// a process holds.
    #[command(visible_alias = "ls", visible_alias = "show")]
    List {
        /// Every network namespace: inode, id, names, the processes in it.
        #[arg(long, short = 'a')]
        all: bool,
        /// JSON lines instead of text: one object per namespace.
        #[arg(long)]
        json: bool,
    },
    /// Run CMD inside NS, like `ip netns exec`: /etc/netns/NAME/* over /etc, /sys remounted;
    /// exits with CMD's status (127: not found, 126: not executable, 128+N: signal N).
    Exec {
        #[arg(value_name = "NS", add = crate::complete::netns())]
        ns: String,
        /// The command and its arguments (`--` before it is optional).
        #[arg(
            value_name = "CMD",
            required = true,
            num_args = 1..,
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        cmd: Vec<OsString>,
    },
    /// Print the name(s) of the namespace of PID (default: this process), like
    /// `ip netns identify`.
    Identify {
        #[arg(value_name = "PID")]
        pid: Option<u32>,
    },
    /// Print the PIDs of the processes in NS, like `ip netns pids`.
    Pids {
        #[arg(value_name = "NS", add = crate::complete::netns())]
        ns: String,
    },
    /// Give a namespace the name NAME, like `ip netns attach NAME PID`: NS is a PID (as
    /// for ip), or any namespace spelling (pid:PID, a container such as podman:web1, a path,
    /// another name; name:1234 for a namespace named 1234).
    Attach {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "NS", add = crate::complete::netns())]
        ns: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Sub::Add { name } => {
            nsring_netns::add(&name)?;
            Ok(ExitCode::SUCCESS)
        }
        Sub::Del {
            names,
            json,
            no_wait,
        } => del(&names, json, no_wait),
        Sub::List { all: false, json } => list(json),
        Sub::List { all: true, json } => list_all(json),
        Sub::Exec { ns, cmd } => exec(&ns, &cmd),
        Sub::Identify { pid } => {
            let pid = pid.unwrap_or_else(std::process::id);
            let names = nsring_netns::identify(pid).map_err(process_usage)?;
            let mut out = Out::new();
            for n in names {
                writeln!(out, "{n}")?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Sub::Pids { ns } => {
            let ns = open_ns(&ns)?;
            let mut out = Out::new();
            for pid in nsring_netns::pids(&ns) {
                writeln!(out, "{pid}")?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Sub::Attach { name, ns } => {
            // A bare number is a PID, as `ip netns attach` reads it.
            let spec = match ns.parse::<u32>() {
                Ok(pid) => NsSpec::Pid(pid),
                Err(_) => ns.parse()?,
            };
            nsring_netns::attach(&name, &spec).map_err(process_usage)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A PID that does not exist, or a path that is not a namespace, was named by the user: a
/// usage error.
fn process_usage(e: nsring_netns::Error) -> anyhow::Error {
    match e {
        nsring_netns::Error::ProcessNotFound { .. } | nsring_netns::Error::NotANetNs { .. } => {
            usage(e.to_string())
        }
        e => e.into(),
    }
}

/// Opens a namespace argument (NAME, path or pid:PID).
fn open_ns(arg: &str) -> anyhow::Result<nsring_netns::NetNs> {
    let spec: NsSpec = arg.parse()?;
    nsring_netns::NetNs::open(&spec).map_err(|e| {
        process_usage(match (e, &spec) {
            (nsring_netns::Error::NotFound { .. }, NsSpec::Pid(pid)) => {
                nsring_netns::Error::ProcessNotFound { pid: *pid }
            }
            (e, _) => e,
        })
    })
}

/// The name a `del` argument stands for: NAME, or a path /run/netns/NAME.
fn del_name(arg: &str) -> anyhow::Result<String> {
    match arg.parse::<NsSpec>()? {
        NsSpec::Name(n) | NsSpec::Plain(n) => Ok(n),
        NsSpec::Path(p) if p.parent() == Some(Path::new(nsring_netns::NETNS_RUN_DIR)) => {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            nsring_netns::validate_name(n)?;
            Ok(n.to_owned())
        }
        other => Err(usage(format!(
            "'{other}' has no name to delete: del removes names in {} (see 'nsring netns list')",
            nsring_netns::NETNS_RUN_DIR
        ))),
    }
}

/// How long `del` waits for the veth peers of a destroyed namespace to go.
const DEL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn del(args: &[String], json: bool, no_wait: bool) -> anyhow::Result<ExitCode> {
    // Check every name first: a bad or missing one deletes nothing.
    let mut names = Vec::new();
    for arg in args {
        let name = del_name(arg)?;
        if std::fs::symlink_metadata(Path::new(nsring_netns::NETNS_RUN_DIR).join(&name)).is_err() {
            return Err(nsring_netns::Error::NotFound { spec: name }.into());
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut reports = Vec::new();
    for name in &names {
        reports.push(if no_wait {
            nsring_netns::del(name)?
        } else {
            nsring_netns::del_and_wait(name, DEL_WAIT)?
        });
    }
    let mut out = Out::new();
    if json {
        json_lines(&mut out, &reports)?;
    } else {
        for r in &reports {
            write_report(&mut out, r)?;
        }
    }
    out.flush()?;
    let remaining: Vec<String> = reports
        .iter()
        .filter(|r| !r.remaining.is_empty())
        .map(|r| format!("{}: {}", r.name, r.remaining.join(", ")))
        .collect();
    if !remaining.is_empty() {
        anyhow::bail!(
            "deleted, but after {} s these veth peers are still there: {}",
            DEL_WAIT.as_secs(),
            remaining.join("; ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn holder_text(h: &Holder) -> String {
    match h.tid {
        None => format!("{} ({})", h.pid, h.comm),
        Some(tid) => format!("{} ({}, thread {tid})", h.pid, h.comm),
    }
}

fn write_report(out: &mut impl Write, r: &DeleteReport) -> std::io::Result<()> {
    if r.initial {
        return writeln!(
            out,
            "{}: deleted; it named the initial namespace, which lives on with its interfaces",
            r.name
        );
    }
    if r.lives_on() {
        let who: Vec<String> = r.holders.iter().map(holder_text).collect();
        writeln!(
            out,
            "{}: deleted; still held by {}, lives on until they exit",
            r.name,
            who.join(", ")
        )?;
    } else {
        writeln!(out, "{}: deleted", r.name)?;
    }
    if r.links_unknown {
        writeln!(out, "  (its interfaces could not be listed)")?;
    }
    let later = if r.lives_on() {
        " when the namespace goes away"
    } else {
        ""
    };
    for l in r.links.iter().filter(|l| l.name != "lo") {
        match (l.fate, &l.kind) {
            (Fate::Destroyed, Some(kind)) => {
                writeln!(out, "  {}: destroyed ({kind}){later}", l.name)?
            }
            (Fate::Destroyed, None) => writeln!(out, "  {}: destroyed{later}", l.name)?,
            (Fate::ReturnsToInitial, _) => {
                writeln!(out, "  {}: returns to the initial namespace{later}", l.name)?
            }
        }
    }
    Ok(())
}

fn list(json: bool) -> anyhow::Result<ExitCode> {
    let named = nsring_netns::list()?;
    let mut out = Out::new();
    if json {
        json_lines(&mut out, &named)?;
    } else {
        for n in &named {
            match n.id {
                Some(id) => writeln!(out, "{} (id: {id})", n.name)?,
                None => writeln!(out, "{}", n.name)?,
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// How many processes a row of `list --all` shows before "+N more".
const MAX_SHOWN: usize = 6;

fn list_all(json: bool) -> anyhow::Result<ExitCode> {
    let found = nsring_netns::discover(nsring_netns::DiscoverOptions { runtimes: true })?;
    for note in &found.notes {
        eprintln!("nsring: note: {note}");
    }
    let all = found.namespaces;
    let mut out = Out::new();
    if json {
        json_lines(&mut out, &all)?;
    } else {
        write_table(&mut out, &all)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_table(out: &mut impl Write, all: &[NsInfo]) -> std::io::Result<()> {
    let names: Vec<String> = all
        .iter()
        .map(|i| {
            let mut n: Vec<String> = i.names.clone();
            n.extend(i.mounts.iter().map(|m| m.display().to_string()));
            n.extend(i.containers.iter().map(|c| c.label()));
            if n.is_empty() {
                "-".to_owned()
            } else {
                n.join(",")
            }
        })
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0).max(5);
    writeln!(
        out,
        "{:<12} {:>4}  {:<width$}  PROCESSES",
        "INODE", "ID", "NAMES"
    )?;
    for (info, names) in all.iter().zip(&names) {
        let id = info.id.map_or("-".to_owned(), |i| i.to_string());
        let mut procs: Vec<String> = info
            .holders
            .iter()
            .take(MAX_SHOWN)
            .map(holder_text)
            .collect();
        if info.holders.len() > MAX_SHOWN {
            procs.push(format!("+{} more", info.holders.len() - MAX_SHOWN));
        }
        let mut line = format!(
            "{:<12} {id:>4}  {names:<width$}  {}",
            info.inode,
            if procs.is_empty() {
                "-".to_owned()
            } else {
                procs.join(", ")
            }
        );
        if info.initial {
            line.push_str("  [initial]");
        }
        if info.current {
            line.push_str("  [current]");
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn exec(ns: &str, cmd: &[OsString]) -> anyhow::Result<ExitCode> {
    let spec: NsSpec = ns.parse()?;
    match nsring_netns::exec(&spec, cmd) {
        Ok(status) => Ok(ExitCode::from(status.code().clamp(0, 255) as u8)),
        Err(e @ nsring_netns::Error::Exec { .. }) => {
            let errno = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error);
            let code = if errno == Some(libc::ENOENT) {
                127
            } else {
                126
            };
            let err = anyhow::Error::new(e);
            eprintln!("nsring: error: {}", format!("{err:#}").replace('\n', " "));
            Ok(ExitCode::from(code))
        }
        Err(e) => Err(process_usage(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsring_netns::LinkFate;

    #[test]
    fn del_names() {
        assert_eq!(del_name("ns0").unwrap(), "ns0");
        assert_eq!(del_name("/run/netns/ns0").unwrap(), "ns0");
        assert!(del_name("pid:1").is_err());
        assert!(del_name("/proc/1/ns/net").is_err());
        assert!(del_name("..").is_err());
        assert!(del_name("/run/netns/..").is_err());
    }

    fn report(holders: Vec<Holder>) -> DeleteReport {
        let fate = |name: &str, kind: Option<&str>| LinkFate {
            name: name.into(),
            index: 1,
            kind: kind.map(Into::into),
            fate: nsring_netns::manage::fate_of(name, kind),
        };
        DeleteReport {
            name: "ns0".into(),
            inode: 4026532290,
            holders,
            links: vec![
                fate("lo", None),
                fate("veth0", Some("veth")),
                fate("eth1", None),
            ],
            links_unknown: false,
            initial: false,
            remaining: vec![],
        }
    }

    #[test]
    fn report_text() {
        let mut buf = Vec::new();
        write_report(&mut buf, &report(vec![])).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "ns0: deleted\n  veth0: destroyed (veth)\n  eth1: returns to the initial namespace\n"
        );
        let mut buf = Vec::new();
        let held = vec![Holder {
            pid: 1234,
            comm: "sleep".into(),
            tid: None,
        }];
        write_report(&mut buf, &report(held)).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with(
                "ns0: deleted; still held by 1234 (sleep), lives on until they exit\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  veth0: destroyed (veth) when the namespace goes away\n"),
            "{text}"
        );
    }

    #[test]
    fn table() {
        let info = |inode, names: &[&str], n: usize, initial: bool| NsInfo {
            inode,
            id: (!initial).then_some(0),
            names: names.iter().map(|s| s.to_string()).collect(),
            mounts: vec![],
            holders: (0..n)
                .map(|i| Holder {
                    pid: 100 + i as u32,
                    comm: "sh".into(),
                    tid: None,
                })
                .collect(),
            initial,
            current: initial,
            containers: vec![],
        };
        let mut buf = Vec::new();
        write_table(
            &mut buf,
            &[
                info(4026531833, &[], 8, true),
                info(4026532290, &["ns0"], 0, false),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "\
INODE          ID  NAMES  PROCESSES
4026531833      -  -      100 (sh), 101 (sh), 102 (sh), 103 (sh), 104 (sh), 105 (sh), +2 more  [initial]  [current]
4026532290      0  ns0    -
"
        );
    }
}
