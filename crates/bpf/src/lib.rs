//! In-kernel counting for nsring: `nsring count` without copying a single packet.
//!
//! This crate owns:
//! - the translation of a classic BPF program (a tcpdump filter as libpcap compiles it
//!   for a live Linux interface, see `nsring_capture::filter::compile_for`) into eBPF with
//!   counter updates ([`translate`], [`insn`]), for a traffic-control hook or a packet
//!   socket (the latter returns a snaplen for sampled packets: the return path a sampling
//!   capture needs);
//! - loading it and its per-CPU counter map with bpf(2) ([`sys`], [`program`]);
//! - attaching it at an interface's ingress and egress with TCX ([`tcx`]), or with a
//!   clsact qdisc and cls_bpf filters where TCX is missing ([`tc`], whose leftovers a
//!   later run sweeps);
//! - [`KernelCounter`], which puts it together in any namespace, with the interface
//!   held promiscuous, a registry record with mirrored counters, and a watch on the
//!   interface.
//!
//! It must not alter, delay or drop traffic: every program returns `TCX_NEXT` /
//! `TC_ACT_UNSPEC`, so other programs on the hook run after it and their verdicts stand.
//! It prints nothing and runs no external program. Its unsafe code is in [`sys`] only.
//!
//! ```no_run
//! use nsring_bpf::{CounterConfig, KernelCounter};
//! let ns = nsring_netns::NetNs::open_str("ns0")?;
//! let mut cfg = CounterConfig::new("eth1");
//! cfg.filter = Some("udp port 53".into());
//! let mut counter = KernelCounter::open(&ns, &cfg)?;
//! counter.wait(std::time::Duration::from_secs(1))?;
//! let v = counter.read()?;
//! println!("{} packets, {} bytes", v.packets, v.bytes);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod counter;
mod error;
pub mod insn;
pub mod program;
pub mod sys;
pub mod tc;
pub mod tcx;
pub mod translate;
pub mod watch;

pub use counter::{AttachMode, Attachment, CounterConfig, KernelCounter, Waker};
pub use error::{Error, Result};
pub use program::{Counters, Program};
pub use translate::{Hook, TranslateError, Value};
