//! `--capture`: `nsring dump` writing pcapng into Wireshark's FIFO.
//!
//! The FIFO becomes standard output and `dump` runs with `-w -`, so the capture is dump's
//! own code path (and a reader that goes away is the quiet end dump already knows). Three
//! things are the extcap's: opening the FIFO without hanging if nobody ever reads it;
//! noticing the reader going away while no packet comes (a write would tell, but there may
//! be no write for a long time): a thread polls the FIFO for `POLLERR` and stops the
//! capture as SIGTERM would; and keeping standard error quiet while all is well, since
//! Wireshark shows anything written there as an error.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args as _, FromArgMatches as _};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{Args, interface, joined_filter};
use crate::cmd::dump;

/// How long to wait for Wireshark to open the FIFO for reading.
const OPEN_WAIT: Duration = Duration::from_secs(30);

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let target = interface(args)?;
    let fifo_path = args.fifo.as_deref().expect("clap requires --fifo");
    let dump_args = dump_args(args, &target.to_string())?;
    let fifo = open_writer(fifo_path)?;

    // From here on the capture writes to the FIFO through standard output, and standard
    // error goes nowhere until the capture is over (dump's closing line would read as an
    // error to Wireshark); an error is then reported on the real one.
    nix::unistd::dup2_stdout(&fifo).context("cannot make the FIFO standard output")?;
    let real_stderr = nix::unistd::dup(io::stderr()).context("cannot keep standard error")?;
    let null = File::options()
        .write(true)
        .open("/dev/null")
        .context("cannot open /dev/null")?;
    nix::unistd::dup2_stderr(&null).context("cannot quiet standard error")?;
    watch_reader(OwnedFd::from(fifo));

    let result = dump::run(dump_args);
    nix::unistd::dup2_stderr(&real_stderr).context("cannot restore standard error")?;
    result
}

/// `nsring dump`'s arguments for this capture: the interface, standard output, the
/// dialog's options, no start line.
fn dump_args(args: &Args, target: &str) -> anyhow::Result<dump::Args> {
    let mut argv: Vec<String> = ["dump", "-i", target, "-w", "-", "-q"]
        .map(String::from)
        .into();
    argv.extend(["--app-name".into(), "nsring-extcap".into()]);
    if let Some(f) = joined_filter(args) {
        argv.extend(["-f".into(), f]);
    }
    if let Some(s) = args.snaplen {
        argv.extend(["-s".into(), s.to_string()]);
    }
    if let Some(d) = args.direction {
        argv.extend(["-e".into(), d.to_string()]);
    }
    if args.no_promisc {
        argv.push("-J".into());
    }
    let cmd = dump::Args::augment_args(clap::Command::new("dump"));
    let matches = cmd
        .try_get_matches_from(argv)
        .map_err(|e| crate::usage(e.to_string().trim().to_owned()))?;
    Ok(dump::Args::from_arg_matches(&matches)?)
}

/// Opens `path` for writing once a reader has it open (a FIFO's `open` would otherwise
/// block with no way out), then makes writes blocking again. Gives up after
/// [`OPEN_WAIT`]; a plain file opens at once.
fn open_writer(path: &Path) -> anyhow::Result<File> {
    let deadline = Instant::now() + OPEN_WAIT;
    let file = loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => break f,
            // a FIFO nobody reads yet
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => anyhow::bail!(
                "nobody opened the FIFO {} for reading within {} s",
                path.display(),
                OPEN_WAIT.as_secs()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot open the FIFO {}", path.display()));
            }
        }
    };
    nix::fcntl::fcntl(
        &file,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .with_context(|| format!("cannot make writes to {} blocking", path.display()))?;
    Ok(file)
}

/// A thread that waits for the reader of `fifo` to go away (`POLLERR` on the write end)
/// and then stops the capture as SIGTERM does (dump's handler drains and closes it).
fn watch_reader(fifo: OwnedFd) {
    std::thread::spawn(move || {
        loop {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::empty())];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {
                    let gone = fds[0]
                        .revents()
                        .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP));
                    if gone {
                        let _ = kill(Pid::this(), Signal::SIGTERM);
                        return;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return, // not pollable (a plain file): nothing to watch
            }
        }
    });
}
