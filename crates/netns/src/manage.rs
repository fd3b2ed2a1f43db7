//! Creating and deleting named namespaces, the iproute2 way.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::{Error, NETNS_RUN_DIR, NetNs, NsSpec, Result, sys, validate_name};

/// Creates the named namespace `/run/netns/NAME` (like `ip netns add NAME`) and returns it open.
///
/// On any failure nothing is left behind: no mount point file, no mount.
pub fn add(name: &str) -> Result<NetNs> {
    validate_name(name)?;
    let dir = Path::new(NETNS_RUN_DIR);
    sys::prepare_run_dir(dir).map_err(|e| Error::sys("prepare", NETNS_RUN_DIR, e))?;
    let path = dir.join(name);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists {
                name: name.to_owned(),
            });
        }
        Err(e) => return Err(Error::sys("create", path.display().to_string(), e)),
    }
    let bound = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("netns-add".into())
            .spawn_scoped(s, || sys::unshare_and_bind(&path))
            .map_err(|e| Error::sys("spawn thread", name, e))?
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
            .map_err(|e| Error::sys("create namespace", name, e))
    });
    if let Err(e) = bound {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    NetNs::open(&NsSpec::Name(name.to_owned())).inspect_err(|_| {
        let _ = del_mount(&path);
    })
}

fn del_mount(path: &Path) -> io::Result<()> {
    let detached = sys::detach(path);
    let removed = std::fs::remove_file(path);
    detached.and(removed)
}

/// Deletes the name of a namespace (like `ip netns del NAME`): the bind mount is detached and
/// the file removed. The namespace itself lives on while a process or an open handle holds it.
pub fn del(name: &str) -> Result<()> {
    validate_name(name)?;
    let path = Path::new(NETNS_RUN_DIR).join(name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                spec: name.to_owned(),
            });
        }
        Err(e) => return Err(Error::sys("stat", path.display().to_string(), e)),
        Ok(_) => {}
    }
    del_mount(&path).map_err(|e| Error::sys("delete", path.display().to_string(), e))
}
