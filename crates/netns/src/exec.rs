//! Running a command inside a network namespace with the semantics of `ip netns exec`.
//!
//! The command runs in a child process that enters the namespace, gets a private mount
//! namespace (with `/` a recursive slave, so nothing it mounts leaks out), sees each entry of
//! `/etc/netns/NAME/` bind-mounted over `/etc/ENTRY` (named namespaces only, iproute2's
//! rule), and a fresh `/sys` so that `/sys/class/net` lists the namespace's interfaces. The
//! calling process never changes namespace.
//!
//! Everything the child needs is prepared before `fork`; after it, the child only makes
//! system calls (no allocation, no locks) and reports a failure to the parent through a
//! close-on-exec pipe, so the parent can tell "the command could not be started" (an
//! [`Error`]) from "the command ran and failed" (an [`ExecStatus`]).

use std::ffi::{CStr, CString, OsStr};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};

use crate::{Error, NETNS_ETC_DIR, NetNs, NsSpec, Result};

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStatus {
    /// It exited with this status.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExecStatus {
    /// The status a shell would report: the exit status, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExecStatus::Exited(c) => c,
            ExecStatus::Signaled(s) => 128 + s,
        }
    }
}

/// Where the child failed, sent to the parent with the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Stage {
    Setns = 1,
    Unshare = 2,
    MakeSlave = 3,
    MountSys = 4,
    Exec = 5,
}

impl Stage {
    fn from_u32(n: u32) -> Option<Stage> {
        [
            Stage::Setns,
            Stage::Unshare,
            Stage::MakeSlave,
            Stage::MountSys,
            Stage::Exec,
        ]
        .into_iter()
        .find(|s| *s as u32 == n)
    }
}

/// One `/etc/netns/NAME/ENTRY` to bind over `/etc/ENTRY`, and the warning printed if that fails.
#[derive(Debug)]
struct Bind {
    src: CString,
    dst: CString,
    warning: Vec<u8>,
}

/// Everything the child needs, prepared before `fork`.
#[derive(Debug)]
struct Plan {
    argv: Vec<CString>,
    binds: Vec<Bind>,
    sys_source: CString,
    sys_flags: MsFlags,
}

/// Runs `argv` inside the namespace `spec` names, like `ip netns exec`, waits for it and
/// returns how it ended.
///
/// A named namespace (`NsSpec::Name`, or a bare name that is one) also gets its
/// `/etc/netns/NAME/` files over `/etc`; a path, `pid:` or a container does not (there is no
/// name to look them up by). `argv[0]` is looked up
/// in `PATH` inside the child.
///
/// While the command runs, the calling process ignores `SIGINT` and `SIGQUIT` (as
/// `system(3)` does) so that Ctrl-C reaches the command and its status is still reported;
/// the command itself gets the dispositions the caller had.
///
/// Errors: [`Error::NotFound`] for a missing namespace ([`Error::ProcessNotFound`] for a
/// `pid:` of no process); [`Error::Exec`] when the command
/// cannot be run (its source's errno is `ENOENT` when it was not found — shells exit 127 —
/// and, say, `EACCES` when it is not executable — 126); [`Error::Sys`] when entering the
/// namespace or preparing the mounts failed.
pub fn exec<S: AsRef<OsStr>>(spec: &NsSpec, argv: &[S]) -> Result<ExecStatus> {
    let ns = NetNs::open(spec).map_err(|e| match (e, spec) {
        (Error::NotFound { .. }, NsSpec::Pid(pid)) => Error::ProcessNotFound { pid: *pid },
        (e, _) => e,
    })?;
    let cmd = argv
        .first()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .unwrap_or_default();
    let exec_err = |errno: i32| Error::Exec {
        cmd: cmd.clone(),
        ns: spec.to_string(),
        source: std::io::Error::from_raw_os_error(errno),
    };
    if argv.is_empty() {
        return Err(exec_err(libc::EINVAL));
    }
    // What the spec turned out to be: a bare name may be a named namespace (its /etc/netns
    // files apply) or a container (no name, nothing over /etc).
    let plan = prepare(ns.spec(), argv).map_err(|_| exec_err(libc::EINVAL))?;
    let mut ptrs: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());

    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("pipe2", spec.to_string(), e.into()))?;
    let ignored = IgnoreInterrupts::new();

    // SAFETY: the child only makes async-signal-safe calls (setns, unshare, mount, umount2,
    // sigaction, write, execvp, _exit) on data prepared before the fork (`plan`, `ptrs`,
    // `ignored`); it never allocates, takes a lock, unwinds or returns.
    let fork = unsafe { nix::unistd::fork() };
    match fork.map_err(|e| Error::sys("fork", spec.to_string(), e.into()))? {
        ForkResult::Child => child(ns.as_fd(), &plan, &ptrs, &ignored, wr.as_fd()),
        ForkResult::Parent { child } => {
            drop(wr);
            drop(ns);
            let report = read_report(rd);
            let status = wait(child);
            drop(ignored);
            let status = status.map_err(|e| Error::sys("waitpid", spec.to_string(), e.into()))?;
            match report {
                None => Ok(status),
                Some((Stage::Exec, errno)) => Err(exec_err(errno)),
                Some((stage, errno)) => {
                    let (call, what) = match stage {
                        Stage::Setns => ("setns", format!("into namespace '{spec}'")),
                        Stage::Unshare => ("unshare(CLONE_NEWNS)", "for the command".into()),
                        Stage::MakeSlave => ("mount", "/ as a recursive slave".into()),
                        Stage::MountSys => {
                            ("mount", format!("of sysfs on /sys for namespace '{spec}'"))
                        }
                        Stage::Exec => unreachable!("handled above"),
                    };
                    Err(Error::sys(
                        call,
                        what,
                        std::io::Error::from_raw_os_error(errno),
                    ))
                }
            }
        }
    }
}

fn prepare<S: AsRef<OsStr>>(spec: &NsSpec, argv: &[S]) -> std::result::Result<Plan, ()> {
    let argv = argv
        .iter()
        .map(|a| CString::new(a.as_ref().as_bytes()).map_err(drop))
        .collect::<std::result::Result<Vec<_>, ()>>()?;
    let mut binds = Vec::new();
    if let NsSpec::Name(name) = spec {
        let dir = Path::new(NETNS_ETC_DIR).join(name);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut entries: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            entries.sort();
            for entry in entries {
                let src = dir.join(&entry);
                let dst = Path::new("/etc").join(&entry);
                let warning = format!(
                    "nsring: warning: bind mount of {} over {} failed: ",
                    src.display(),
                    dst.display()
                )
                .into_bytes();
                let (Ok(src), Ok(dst)) = (
                    CString::new(src.as_os_str().as_bytes()),
                    CString::new(dst.as_os_str().as_bytes()),
                ) else {
                    continue;
                };
                binds.push(Bind { src, dst, warning });
            }
        }
    }
    // Keep /sys read-only if it is (as iproute2 does).
    let ro = nix::sys::statvfs::statvfs("/sys")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    let sys_source = CString::new(spec.name().unwrap_or("sysfs")).map_err(drop)?;
    Ok(Plan {
        argv,
        binds,
        sys_source,
        sys_flags: if ro {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        },
    })
}

/// The forked child: enter, remount, exec. Never returns.
fn child(
    ns: BorrowedFd<'_>,
    plan: &Plan,
    argv: &[*const libc::c_char],
    ignored: &IgnoreInterrupts,
    report: BorrowedFd<'_>,
) -> ! {
    let fail = |stage: Stage, errno: Errno| -> ! {
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
        msg[4..].copy_from_slice(&(errno as i32).to_ne_bytes());
        let _ = nix::unistd::write(report, &msg);
        // SAFETY: `_exit` ends the child without running the parent's atexit handlers or
        // destructors, which must not run twice.
        unsafe { libc::_exit(127) }
    };
    if let Err(e) = nix::sched::setns(ns, CloneFlags::CLONE_NEWNET) {
        fail(Stage::Setns, e);
    }
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWNS) {
        fail(Stage::Unshare, e);
    }
    if let Err(e) = nix::mount::mount(
        None::<&CStr>,
        c"/",
        None::<&CStr>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&CStr>,
    ) {
        fail(Stage::MakeSlave, e);
    }
    // No sysfs mounted there is fine: mount a fresh one anyway.
    let _ = nix::mount::umount2(c"/sys", MntFlags::MNT_DETACH);
    if let Err(e) = nix::mount::mount(
        Some(plan.sys_source.as_c_str()),
        c"/sys",
        Some(c"sysfs"),
        plan.sys_flags,
        None::<&CStr>,
    ) {
        fail(Stage::MountSys, e);
    }
    for b in &plan.binds {
        if let Err(e) = nix::mount::mount(
            Some(b.src.as_c_str()),
            b.dst.as_c_str(),
            Some(c"none"),
            MsFlags::MS_BIND,
            None::<&CStr>,
        ) {
            let stderr = std::io::stderr();
            let _ = nix::unistd::write(stderr.as_fd(), &b.warning);
            let _ = nix::unistd::write(stderr.as_fd(), e.desc().as_bytes());
            let _ = nix::unistd::write(stderr.as_fd(), b"\n");
        }
    }
    ignored.restore();
    // SAFETY: `argv` is a null-terminated array of pointers into `plan.argv`'s CStrings,
    // which outlive this call; execvp only returns on failure.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    fail(Stage::Exec, Errno::last());
}

/// Reads the child's failure report: `None` if the pipe closed empty (the exec succeeded).
fn read_report(rd: OwnedFd) -> Option<(Stage, i32)> {
    let mut buf = Vec::with_capacity(8);
    let _ = std::fs::File::from(rd).read_to_end(&mut buf);
    let stage = u32::from_ne_bytes(buf.get(..4)?.try_into().ok()?);
    let errno = i32::from_ne_bytes(buf.get(4..8)?.try_into().ok()?);
    Some((Stage::from_u32(stage)?, errno))
}

fn wait(child: Pid) -> nix::Result<ExecStatus> {
    loop {
        match nix::sys::wait::waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExecStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ExecStatus::Signaled(sig as i32)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The dispositions of `SIGINT` and `SIGQUIT` before the first running command made them
/// ignored, and how many commands are running: commands run from several threads at once
/// share one "ignored" period, and the last one to finish puts the old dispositions back.
static INTERRUPTS: Mutex<(usize, Saved)> =
    Mutex::new((0, [(Signal::SIGINT, None), (Signal::SIGQUIT, None)]));

type Saved = [(Signal, Option<SigAction>); 2];

/// `SIGINT` and `SIGQUIT` ignored while a command runs; the old dispositions are restored
/// when the last guard is dropped (in the parent), or by [`IgnoreInterrupts::restore`] in the
/// child before exec (from a copy, without the lock).
#[derive(Debug)]
struct IgnoreInterrupts {
    old: Saved,
}

impl IgnoreInterrupts {
    fn new() -> IgnoreInterrupts {
        let mut state = INTERRUPTS.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 == 0 {
            let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
            for (sig, old) in &mut state.1 {
                // SAFETY: installing SIG_IGN runs no handler code; the old action is kept to
                // be put back.
                *old = unsafe { nix::sys::signal::sigaction(*sig, &ignore) }.ok();
            }
        }
        state.0 += 1;
        IgnoreInterrupts { old: state.1 }
    }

    /// Puts the old dispositions back (async-signal-safe: only `sigaction`).
    fn restore(&self) {
        restore(&self.old);
    }
}

fn restore(saved: &Saved) {
    for (sig, old) in saved {
        if let Some(old) = old {
            // SAFETY: reinstalls the exact action that was in place before it was ignored.
            let _ = unsafe { nix::sys::signal::sigaction(*sig, old) };
        }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        let mut state = INTERRUPTS.lock().unwrap_or_else(|p| p.into_inner());
        state.0 -= 1;
        if state.0 == 0 {
            restore(&state.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(ExecStatus::Exited(7).code(), 7);
        assert_eq!(ExecStatus::Signaled(15).code(), 143);
    }

    #[test]
    fn stages_round_trip() {
        for s in [
            Stage::Setns,
            Stage::Unshare,
            Stage::MakeSlave,
            Stage::MountSys,
            Stage::Exec,
        ] {
            assert_eq!(Stage::from_u32(s as u32), Some(s));
        }
        assert_eq!(Stage::from_u32(0), None);
    }

    #[test]
    fn argv_with_nul_is_refused() {
        assert!(prepare(&NsSpec::Current, &["a\0b"]).is_err());
        let plan = prepare(&NsSpec::Pid(1), &["ls", "-l"]).unwrap();
        assert_eq!(plan.argv, vec![c"ls".to_owned(), c"-l".to_owned()]);
        assert!(plan.binds.is_empty());
        assert_eq!(plan.sys_source.as_c_str(), c"sysfs");
    }
}
