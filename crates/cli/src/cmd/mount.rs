//! `nsring mount DIR`: the per-namespace view as files, laid out like PF_RING's
//! `/proc/net/pf_ring` (`info`, `dev/<ifname>/info`, one file per socket, `stats/`). Each
//! reader sees the namespace it is in, as with procfs. Runs until Ctrl-C/SIGTERM (or an
//! outside `umount`), then unmounts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use nsring_registry::RunDir;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  mkdir -p /run/pf_ring && nsring mount /run/pf_ring &
  cat /run/pf_ring/info                        this namespace's rings
  ip netns exec ns0 cat /run/pf_ring/info      ns0's rings (the same path, another view)
  ls /run/pf_ring/dev/                         interfaces, as /proc/net/pf_ring/dev/
  grep 'Tot Packets' /run/pf_ring/*-*          every capture's packet count
  cat /run/pf_ring/stats/4242-eth1.0           the application's own figures

Files: info (summary), dev/<ifname>/info, <pid>-<ifname>.<id> per packet socket (nsring's
named by their record; others <pid>-<ifname>.<socket inode>, first owning PID, marked
'Foreign'), stats/<pid>-<ifname>.<id> (nsring's sockets: duration, packets, dropped, bytes).
Contents are read when a file is opened; nothing is cached, so a file always shows the
moment it was opened, in the reader's namespace.

The mount point must exist and have nothing mounted on it; a dead nsring mount left by a
killed process is cleared. Ctrl-C, SIGTERM or SIGHUP unmount (a busy mount is detached).")]
pub struct Args {
    /// The directory to mount on (it must exist).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Only the mounting user may read the mount (no FUSE allow_other; needed without root
    /// when /etc/fuse.conf lacks user_allow_other).
    #[arg(long)]
    pub private: bool,
    /// Request threads.
    #[arg(long, default_value = "2", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    ctrlc::set_handler(move || s.store(true, Ordering::Relaxed))
        .context("cannot install the Ctrl-C handler")?;
    let opts = nsring_mount::Options {
        allow_other: !args.private,
        ring_defaults: crate::cmd::ls::ring_defaults(),
        run: RunDir::new(),
        threads: usize::from(args.threads),
    };
    let mounted = match nsring_mount::mount(&args.dir, opts) {
        Ok(m) => m,
        Err(e) if e.is_usage() => return Err(crate::usage(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let point = mounted.point().display().to_string();
    if mounted.prepared == nsring_mount::Prepared::ClearedStale {
        eprintln!("nsring: cleared a dead nsring mount at {point} (its process was gone)");
    }
    eprintln!(
        "nsring: mounted the namespace view at {point}{} (Ctrl-C unmounts)",
        if args.private {
            ", for this user only"
        } else {
            ""
        }
    );
    mounted.wait(|| stop.load(Ordering::Relaxed), Duration::from_millis(100));
    if mounted.ended() {
        eprintln!("nsring: {point} was unmounted from outside");
        return Ok(ExitCode::SUCCESS);
    }
    mounted.unmount()?;
    eprintln!("nsring: unmounted {point}");
    Ok(ExitCode::SUCCESS)
}
