//! The setns/mount corner: the only unsafe-adjacent code of this crate, kept small.
//! Everything goes through nix where nix has the call.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;

fn to_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Opens an nsfs file read-only, close-on-exec.
pub fn open_nsfs(path: &Path) -> io::Result<OwnedFd> {
    open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(to_io)
}

/// Moves the calling thread into the network namespace `fd`.
pub fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    setns(fd, CloneFlags::CLONE_NEWNET).map_err(to_io)
}

/// True if `fd` is an nsfs file of a network namespace (NS_GET_NSTYPE).
pub fn is_netns(fd: BorrowedFd<'_>) -> bool {
    // NS_GET_NSTYPE = _IO(0xb7, 0x3)
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor's type; `fd`
    // is a valid open descriptor borrowed for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    r == libc::CLONE_NEWNET
}

/// Makes `/run/netns` exist and be a shared mount point, as iproute2's `netns add` does, so
/// that bind mounts made in it propagate to other mount namespaces (e.g. `netns exec`).
pub fn prepare_run_dir(dir: &Path) -> io::Result<()> {
    use nix::mount::{MsFlags, mount};
    match std::fs::create_dir(dir) {
        Ok(()) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then make it shared.
            mount(
                Some(dir),
                dir,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(to_io)?;
            shared().map_err(to_io)
        }
        Err(e) => Err(to_io(e)),
    }
}

/// Creates a new network namespace on the calling thread (which must be a thread of its
/// own: it stays in the new namespace) and bind-mounts it onto `target`.
pub fn unshare_and_bind(target: &Path) -> io::Result<()> {
    use nix::mount::{MsFlags, mount};
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(to_io)?;
    mount(
        Some("/proc/thread-self/ns/net"),
        target,
        Some("none"),
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(to_io)
}

/// Lazily unmounts `target` (MNT_DETACH), as `ip netns del` does.
pub fn detach(target: &Path) -> io::Result<()> {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(to_io)
}

/// Bind-mounts `source` onto `target` (an existing file), as `ip netns attach` does.
pub fn bind_mount(source: &Path, target: &Path) -> io::Result<()> {
    use nix::mount::{MsFlags, mount};
    mount(
        Some(source),
        target,
        Some("none"),
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(to_io)
}
