//! Helpers shared by the CLI's lab tests: a two-namespace lab and a background process
//! that is waited for until it says it is ready, and killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nsring_netns::NetNs;
use nsring_netns::lab::Lab;

pub mod complete;
pub mod containers;
pub mod frames;

pub const NSRING: &str = env!("CARGO_BIN_EXE_nsring");

/// Two namespaces `a` and `b` joined by `eth1` -- `eth1` (the lab turns IPv6 off, so the
/// only frames on the wire are the test's).
pub fn pair(tag: &str) -> (Lab, NetNs, NetNs) {
    let mut lab = Lab::new(tag);
    let a = lab.netns("a");
    let b = lab.netns("b");
    lab.veth("a", "eth1", "b", "eth1");
    (lab, a, b)
}

/// A running process with its stderr lines collected; killed and reaped on drop.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    /// The stderr line that said it was ready.
    pub ready: String,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (stdout as `stdout`) and waits until a stderr line contains `ready`.
pub fn start(mut cmd: Command, ready: &str, stdout: Stdio) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("{cmd:?} never said '{ready}'"));
        if line.contains(ready) {
            break line;
        }
    };
    Running {
        child,
        lines: rx,
        ready: line,
    }
}

/// The objects of `--json` output, one per line, each checked to start with the schema
/// version (`{"schema":1,...`).
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| {
            assert!(l.starts_with("{\"schema\":1"), "no schema first: {l}");
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .collect()
}
