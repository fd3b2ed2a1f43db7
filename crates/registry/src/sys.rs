//! The registry's only unsafe corner: the shared counter page of a record (a `MAP_SHARED`
//! mapping written with atomic stores) and `getsockopt(SO_NETNS_COOKIE)`, which nix does
//! not wrap. Everything else in the crate is safe code over nix and std.
#![allow(unsafe_code)]

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// A writable shared mapping of the first `len` bytes of a file: the counter area of a
/// record. Stores are atomic (relaxed) u64 stores at 8-aligned offsets, so a reader of the
/// file never sees a half-written counter from this side.
#[derive(Debug)]
pub struct SharedPage {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; all access is through atomic
// operations, so sharing `&SharedPage` between threads is sound, and nothing ties the
// mapping to the thread that created it.
unsafe impl Send for SharedPage {}
// SAFETY: see above: every access through `&self` is an atomic load or store.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    /// Maps `len` bytes of `fd` at offset 0, read-write and shared. The file must be at least
    /// `len` bytes long and must never be truncated below that while mapped (the record's
    /// owner creates it at its full size and only ever unlinks it).
    pub fn map(fd: impl AsFd, len: usize) -> io::Result<SharedPage> {
        let size =
            NonZeroUsize::new(len).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(io::Error::from)?;
        if (st.st_size as u64) < len as u64 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr None) of a file we checked is at
        // least `len` bytes long; no existing memory is affected.
        let p = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )
        }
        .map_err(io::Error::from)?;
        Ok(SharedPage {
            ptr: p.cast::<u8>(),
            len,
        })
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "counter offset {offset} outside the mapped page"
        );
        // SAFETY: the offset is 8-aligned inside the mapping (checked above; the mapping
        // itself is page aligned), the memory lives as long as `self`, and it is only ever
        // accessed atomically by this process.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset).cast::<u64>()) }
    }

    /// Stores a little-endian u64 at `offset` (relaxed: readers want a recent value, not
    /// an ordering with other memory).
    #[inline]
    pub fn store(&self, offset: usize, value: u64) {
        self.word(offset).store(value.to_le(), Ordering::Relaxed);
    }

    /// Loads the u64 at `offset`.
    #[inline]
    pub fn load(&self, offset: usize) -> u64 {
        u64::from_le(self.word(offset).load(Ordering::Relaxed))
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no reference into the mapping
        // outlives `self` (`word` borrows `self`).
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// The network namespace cookie of the namespace `sock` lives in (`SO_NETNS_COOKIE`,
/// Linux 5.14): unique for the life of the system, unlike the nsfs inode, which a later
/// namespace may reuse.
pub fn netns_cookie(sock: impl AsFd) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` are valid for writes of the sizes given; the descriptor is
    // borrowed for the call.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != size_of::<u64>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn stores_reach_the_file() {
        let mut f = tempfile_in_tmp();
        f.write_all(&[0u8; 4096]).unwrap();
        let page = SharedPage::map(&f, 4096).unwrap();
        page.store(64, 0x0102_0304_0506_0708);
        page.store(4088, 7);
        assert_eq!(page.load(64), 0x0102_0304_0506_0708);
        let mut buf = vec![0u8; 4096];
        f.rewind().unwrap();
        f.read_exact(&mut buf).unwrap();
        assert_eq!(buf[64..72], 0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(buf[4088..4096], 7u64.to_le_bytes());
    }

    #[test]
    fn refuses_a_short_file() {
        let mut f = tempfile_in_tmp();
        f.write_all(&[0u8; 100]).unwrap();
        assert!(SharedPage::map(&f, 4096).is_err());
    }

    #[test]
    fn cookie_of_a_socket() {
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let a = netns_cookie(&s).unwrap();
        let t = std::os::unix::net::UnixDatagram::unbound().unwrap();
        assert_eq!(a, netns_cookie(&t).unwrap(), "same namespace, same cookie");
        assert_ne!(a, 0);
    }

    fn tempfile_in_tmp() -> std::fs::File {
        use std::sync::atomic::AtomicU32;
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "nsring-sys-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }
}
