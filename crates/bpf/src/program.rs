//! Loaded objects: the counter maps and the translated programs.

use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};
use crate::insn::Insn;
use crate::sys;
use crate::translate::{self, Hook, MapFds, SockFilter, Spec, Value};

/// The per-CPU counters of one count: one element of [`Value`], summed over the CPUs on
/// read. Several programs (ingress and egress) may share it.
#[derive(Debug)]
pub struct Counters {
    fd: OwnedFd,
    cpus: usize,
    /// The sampling sequence (an array map of one u64), when sampling.
    sample: Option<OwnedFd>,
}

impl Counters {
    /// Creates the maps; `sampling` adds the shared sequence counter sampling needs.
    pub fn create(sampling: bool) -> Result<Counters> {
        let cpus = sys::possible_cpus().map_err(|e| Error::sys("read", "possible CPUs", e))?;
        let fd = sys::map_create(
            sys::MAP_TYPE_PERCPU_ARRAY,
            4,
            Value::SIZE,
            1,
            "nsring_count",
        )
        .map_err(|e| Error::sys("bpf(BPF_MAP_CREATE)", "per-CPU counters", e))?;
        let sample = if sampling {
            Some(
                sys::map_create(sys::MAP_TYPE_ARRAY, 4, 8, 1, "nsring_sample")
                    .map_err(|e| Error::sys("bpf(BPF_MAP_CREATE)", "sampling sequence", e))?,
            )
        } else {
            None
        };
        Ok(Counters { fd, cpus, sample })
    }

    /// The totals now: every CPU's value added up (one system call).
    pub fn read(&self) -> Result<Value> {
        let size = Value::SIZE as usize; // already a multiple of 8
        let mut buf = vec![0u8; size * self.cpus];
        sys::map_lookup(self.fd.as_fd(), &0u32.to_ne_bytes(), &mut buf)
            .map_err(|e| Error::sys("bpf(BPF_MAP_LOOKUP_ELEM)", "counters", e))?;
        Ok(buf
            .chunks_exact(size)
            .map(Value::from_bytes)
            .fold(Value::default(), |a, b| a + b))
    }

    /// The map's id (`bpftool map show id N`).
    pub fn id(&self) -> Option<u32> {
        sys::object_id(self.fd.as_fd()).ok()
    }

    fn fds(&self) -> MapFds {
        MapFds {
            counters: self.fd.as_raw_fd(),
            sample: self.sample.as_ref().map(|s| s.as_raw_fd()),
        }
    }
}

/// A loaded program: a filter translated for one hook, counting into [`Counters`].
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    hook: Hook,
    len: usize,
}

/// How much of the verifier's log an error shows (its last lines say what failed).
const LOG_TAIL: usize = 600;

impl Program {
    /// Translates `classic` (the filter `text` compiled by libpcap) for `hook` and loads it.
    pub fn load(
        text: &str,
        classic: &[SockFilter],
        hook: Hook,
        sample_every: Option<NonZeroU32>,
        counters: &Counters,
    ) -> Result<Program> {
        let spec = Spec { hook, sample_every };
        let insns = translate::translate(classic, spec, counters.fds()).map_err(|source| {
            Error::Translate {
                filter: text.to_owned(),
                source,
            }
        })?;
        let prog_type = match hook {
            Hook::Socket { .. } => sys::PROG_TYPE_SOCKET_FILTER,
            Hook::Ingress | Hook::Egress => sys::PROG_TYPE_SCHED_CLS,
        };
        let fd = load_insns(text, prog_type, &insns)?;
        Ok(Program {
            fd,
            hook,
            len: insns.len(),
        })
    }

    /// Where the program runs.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// The number of eBPF instructions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true for a loaded program.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The program's id (`bpftool prog show id N`).
    pub fn id(&self) -> Option<u32> {
        sys::object_id(self.fd.as_fd()).ok()
    }

    /// Makes this program (of [`Hook::Socket`]) the filter of a packet socket.
    pub fn attach_to_socket(&self, sock: BorrowedFd<'_>) -> Result<()> {
        sys::attach_socket_filter(sock, self.fd.as_fd())
            .map_err(|e| Error::sys("setsockopt(SO_ATTACH_BPF)", "", e))
    }

    /// Runs the program `repeat` times on `frame` (`BPF_PROG_TEST_RUN`, which counts the
    /// runs like packets): its return value and the average time of a run in ns.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<(u32, u32)> {
        sys::prog_test_run(self.fd.as_fd(), frame, repeat)
            .map_err(|e| Error::sys("bpf(BPF_PROG_TEST_RUN)", "", e))
    }
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Loads `insns`; if the verifier refuses them, loads again with its log to say why.
fn load_insns(text: &str, prog_type: u32, insns: &[Insn]) -> Result<OwnedFd> {
    let name = "nsring_count";
    match sys::prog_load(prog_type, insns, name, None) {
        Ok(fd) => Ok(fd),
        Err(e)
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EINVAL) =>
        {
            let mut log = vec![0u8; 1 << 20];
            let again = sys::prog_load(prog_type, insns, name, Some(&mut log));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text_log = String::from_utf8_lossy(&log[..end]);
            let text_log = text_log.trim();
            match again {
                Ok(fd) => Ok(fd),
                Err(_) if text_log.is_empty() => Err(Error::sys("bpf(BPF_PROG_LOAD)", "", e)),
                Err(source) => {
                    let tail: String = {
                        let start = text_log.len().saturating_sub(LOG_TAIL);
                        let start = (start..text_log.len())
                            .find(|&i| text_log.is_char_boundary(i))
                            .unwrap_or(0);
                        text_log[start..].replace('\n', " | ")
                    };
                    Err(Error::Verifier {
                        filter: text.to_owned(),
                        log: tail,
                        source,
                    })
                }
            }
        }
        Err(e) => Err(Error::sys("bpf(BPF_PROG_LOAD)", "", e)),
    }
}
