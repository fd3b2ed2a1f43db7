//! TCX (Linux 6.6): a program at an interface's ingress or egress as a `bpf_link`, which
//! the kernel detaches when its last descriptor closes — also when the process is killed.
//! Programs on one hook run in a chain (include/net/tcx.h, kernel/bpf/mprog.c): each
//! returns `TCX_NEXT` to hand the packet on, or a verdict that ends the chain.
//!
//! Where in the chain ours goes: first at ingress (it sees every packet that arrives,
//! as a packet socket does, before any other program can drop or redirect it) and last
//! at egress (it sees what leaves after the other programs, as a packet socket sees
//! what reaches the driver). Ours always returns `TCX_NEXT`, so the others run as before
//! and their verdicts stand.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::program::Program;
use crate::sys;
use crate::translate::Hook;

/// An attached TCX link; dropping it detaches the program.
#[derive(Debug)]
pub struct TcxLink {
    fd: OwnedFd,
    hook: Hook,
}

/// The attach type of a TC hook.
pub fn attach_type(hook: Hook) -> u32 {
    match hook {
        Hook::Egress => sys::TCX_EGRESS,
        _ => sys::TCX_INGRESS,
    }
}

impl TcxLink {
    /// Attaches `prog` (of [`Hook::Ingress`] or [`Hook::Egress`]) to `ifindex` of the
    /// calling thread's namespace. `EINVAL` means this kernel has no TCX.
    pub fn attach_here(prog: &Program, ifindex: u32) -> io::Result<TcxLink> {
        let hook = prog.hook();
        let flags = match hook {
            Hook::Egress => sys::F_AFTER,
            _ => sys::F_BEFORE,
        };
        let fd = sys::tcx_link_create(prog.as_fd(), ifindex, attach_type(hook), flags)?;
        Ok(TcxLink { fd, hook })
    }

    /// The hook the link is on.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// The link's id, program id and interface (0 once the interface is gone).
    pub fn info(&self) -> io::Result<sys::LinkInfo> {
        sys::link_info(self.fd.as_fd())
    }

    /// Detaches now (dropping the link would do it too); an error means it was not
    /// attached any more (its interface is gone).
    pub fn detach(&self) -> io::Result<()> {
        sys::link_detach(self.fd.as_fd())
    }
}

/// The programs and links at a TCX hook of `ifindex` in the calling thread's namespace.
pub fn query_here(ifindex: u32, hook: Hook) -> io::Result<sys::Query> {
    sys::prog_query(ifindex, attach_type(hook))
}
