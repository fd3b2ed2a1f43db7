//! The syscall funnel: every bpf(2) call of the crate goes through here, with the
//! `union bpf_attr` members it uses re-declared with their C layout
//! (include/uapi/linux/bpf.h). This is the crate's only unsafe code.
//!
//! A command's attribute struct may be shorter than the kernel's `union bpf_attr`: the
//! kernel copies what it is given and treats the rest as zero
//! (kernel/bpf/syscall.c, `__sys_bpf`: `bpf_check_uarg_tail_zero`, `copy_from_bpfptr`).
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::insn::Insn;

// enum bpf_cmd
const MAP_CREATE: libc::c_int = 0;
const MAP_LOOKUP_ELEM: libc::c_int = 1;
const PROG_LOAD: libc::c_int = 5;
const PROG_TEST_RUN: libc::c_int = 10;
const OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const PROG_QUERY: libc::c_int = 16;
const LINK_CREATE: libc::c_int = 28;
const LINK_DETACH: libc::c_int = 34;

/// `BPF_MAP_TYPE_ARRAY`.
pub const MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub const MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// `BPF_PROG_TYPE_SOCKET_FILTER`.
pub const PROG_TYPE_SOCKET_FILTER: u32 = 1;
/// `BPF_PROG_TYPE_SCHED_CLS`.
pub const PROG_TYPE_SCHED_CLS: u32 = 3;
/// `BPF_TCX_INGRESS` (enum bpf_attach_type).
pub const TCX_INGRESS: u32 = 46;
/// `BPF_TCX_EGRESS`.
pub const TCX_EGRESS: u32 = 47;
/// `BPF_F_BEFORE`: with no relative object, first in the chain (kernel/bpf/mprog.c).
pub const F_BEFORE: u32 = 1 << 3;
/// `BPF_F_AFTER`: with no relative object, last in the chain.
pub const F_AFTER: u32 = 1 << 4;
/// `SO_ATTACH_BPF` (include/uapi/asm-generic/socket.h).
const SO_ATTACH_BPF: libc::c_int = 50;

/// The license the programs declare (GPL-compatible, so any helper may be used).
const LICENSE: &[u8] = b"Dual MIT/GPL\0";

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    /// `link_create.tcx.relative_fd` (the union is 8-aligned).
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}

#[repr(C)]
#[derive(Default)]
struct LinkDetachAttr {
    link_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_ifindex: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    count: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b;
    }
    out
}

/// `bpf(cmd, attr, sizeof(*attr))`.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` struct whose size we pass;
    // every pointer inside it was set by the caller to memory that outlives this call, with
    // the length the kernel is told.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *mut T).cast::<libc::c_void>(),
            size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new descriptor returned by bpf(2).
fn owned(r: libc::c_long) -> OwnedFd {
    // SAFETY: the bpf commands that create an object return a new descriptor that nothing
    // else owns.
    unsafe { OwnedFd::from_raw_fd(r as libc::c_int) }
}

/// `BPF_MAP_CREATE`.
pub fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: &str,
) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_name: name16(name),
        ..MapCreateAttr::default()
    };
    bpf(MAP_CREATE, &mut attr).map(owned)
}

/// `BPF_MAP_LOOKUP_ELEM`; `value` must hold the whole value (for per-CPU maps, one
/// 8-aligned value per possible CPU).
pub fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..MapElemAttr::default()
    };
    bpf(MAP_LOOKUP_ELEM, &mut attr).map(drop)
}

/// `BPF_PROG_LOAD`; with `log`, the verifier writes its log there (level 1).
pub fn prog_load(
    prog_type: u32,
    insns: &[Insn],
    name: &str,
    log: Option<&mut [u8]>,
) -> io::Result<OwnedFd> {
    let (log_buf, log_size, log_level) = match log {
        Some(l) => (l.as_mut_ptr() as u64, l.len() as u32, 1),
        None => (0, 0, 0),
    };
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        prog_name: name16(name),
        ..ProgLoadAttr::default()
    };
    bpf(PROG_LOAD, &mut attr).map(owned)
}

/// `BPF_LINK_CREATE` of a TCX link on `ifindex` of the calling thread's namespace.
pub fn tcx_link_create(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    attach_type: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type,
        flags,
        ..LinkCreateAttr::default()
    };
    bpf(LINK_CREATE, &mut attr).map(owned)
}

/// `BPF_LINK_DETACH`: the link stays open but no longer attached.
pub fn link_detach(link: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = LinkDetachAttr {
        link_fd: link.as_raw_fd() as u32,
    };
    bpf(LINK_DETACH, &mut attr).map(drop)
}

/// `BPF_OBJ_GET_INFO_BY_FD` into a zeroed buffer (fields the kernel does not know stay 0).
fn info(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<()> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: buf.len() as u32,
        info: buf.as_mut_ptr() as u64,
    };
    bpf(OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// What the kernel says about a link (`struct bpf_link_info`, TCX part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link's id (`bpftool link show id N`).
    pub id: u32,
    /// The attached program's id.
    pub prog_id: u32,
    /// The interface it is attached to; 0 once the interface is gone.
    pub ifindex: u32,
    /// `BPF_TCX_INGRESS` or `BPF_TCX_EGRESS`.
    pub attach_type: u32,
}

/// The link's id, program and (for TCX links) interface.
pub fn link_info(link: BorrowedFd<'_>) -> io::Result<LinkInfo> {
    // type, id, prog_id, then the 8-aligned union: tcx.ifindex, tcx.attach_type
    let mut b = [0u8; 64];
    info(link, &mut b)?;
    Ok(LinkInfo {
        id: u32_at(&b, 4),
        prog_id: u32_at(&b, 8),
        ifindex: u32_at(&b, 16),
        attach_type: u32_at(&b, 20),
    })
}

/// The id of a program or map (`bpf_prog_info.id`, `bpf_map_info.id`: both at offset 4).
pub fn object_id(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut b = [0u8; 256];
    info(fd, &mut b)?;
    Ok(u32_at(&b, 4))
}

/// What `BPF_PROG_QUERY` reports for a TCX hook.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Changes with every attach and detach.
    pub revision: u64,
    /// Program ids, in the order they run.
    pub prog_ids: Vec<u32>,
    /// Link ids (0 for a program attached without a link).
    pub link_ids: Vec<u32>,
}

/// The programs attached at a TCX hook of `ifindex` in the calling thread's namespace.
pub fn prog_query(ifindex: u32, attach_type: u32) -> io::Result<Query> {
    let mut progs = vec![0u32; 64];
    let mut links = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_ifindex: ifindex,
        attach_type,
        prog_ids: progs.as_mut_ptr() as u64,
        link_ids: links.as_mut_ptr() as u64,
        count: progs.len() as u32,
        ..QueryAttr::default()
    };
    bpf(PROG_QUERY, &mut attr)?;
    let n = (attr.count as usize).min(progs.len());
    progs.truncate(n);
    links.truncate(n);
    Ok(Query {
        revision: attr.revision,
        prog_ids: progs,
        link_ids: links,
    })
}

/// `BPF_PROG_TEST_RUN` `repeat` times on `data`: the program's return value and the
/// kernel's average time per run in ns.
pub fn prog_test_run(prog: BorrowedFd<'_>, data: &[u8], repeat: u32) -> io::Result<(u32, u32)> {
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: data.len() as u32,
        data_in: data.as_ptr() as u64,
        repeat,
        ..TestRunAttr::default()
    };
    bpf(PROG_TEST_RUN, &mut attr)?;
    Ok((attr.retval, attr.duration))
}

/// `SO_ATTACH_BPF`: `prog` (a socket filter program) becomes the socket's filter.
pub fn attach_socket_filter(sock: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let fd: libc::c_int = prog.as_raw_fd();
    // SAFETY: passes a live c_int and its size; the kernel reads exactly that.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_BPF,
            (&fd as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The number of possible CPUs: how many values a per-CPU map lookup returns
/// (kernel/bpf/arraymap.c `bpf_percpu_array_copy` walks `for_each_possible_cpu`).
pub fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    parse_cpu_list(text.trim())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("cpu list '{text}'")))
}

/// Counts the CPUs of a list like `0-3,5,7-8`.
fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut n = 0;
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let a = part.parse::<usize>().ok()?;
                (a, a)
            }
        };
        n += b.checked_sub(a)? + 1;
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_uapi() {
        assert_eq!(size_of::<MapElemAttr>(), 32);
        assert_eq!(size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(LinkCreateAttr, relative_fd), 16);
        assert_eq!(std::mem::offset_of!(LinkCreateAttr, expected_revision), 24);
        assert_eq!(std::mem::offset_of!(QueryAttr, count), 24);
        assert_eq!(std::mem::offset_of!(QueryAttr, link_ids), 40);
        assert_eq!(std::mem::offset_of!(QueryAttr, revision), 56);
        assert_eq!(std::mem::offset_of!(TestRunAttr, repeat), 32);
        assert_eq!(std::mem::offset_of!(MapCreateAttr, map_name), 28);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(name16("nsring_count_a_very_long_name")[15], 0);
    }
}
