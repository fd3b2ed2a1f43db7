//! A Podman lab: real containers from a busybox image the lab builds itself, on an internal
//! network of the lab's own (198.18.X.0/24, no NAT, no default route), all removed on drop.
//!
//! What these machines need, found the hard way: `--runtime runc` (crun refuses the hybrid
//! cgroup layout), a `containers.conf` of the lab's own (`CONTAINERS_CONF`) whose
//! `default_ulimits` stay within the machine's hard limits (4096:4096), and an image
//! imported from a busybox-static root filesystem (`podman import`), so no registry is
//! needed. Creating a bridge turns `net.ipv4.ip_forward` on: the lab records it first and
//! restores it on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{PREFIX, warn};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The `containers.conf` every lab command runs with.
const CONTAINERS_CONF: &str = "\
[containers]
default_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]
[engine]
runtime = \"runc\"
";

/// A busybox-static root filesystem as a tarball in `dir`: `/bin/busybox` and the applets
/// the tests use as links to it. Returns the tarball's path.
///
/// # Panics
/// If busybox is not installed (`busybox-static`) or `tar` fails.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("lab: {}: {e}", bin.display()));
    for d in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap_or_else(|e| panic!("lab: rootfs {d}: {e}"));
    }
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .unwrap_or_else(|e| panic!("lab: /bin/busybox (install busybox-static): {e}"));
    for applet in ["sh", "sleep", "ip", "ping", "cat", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet))
            .unwrap_or_else(|e| panic!("lab: rootfs link {applet}: {e}"));
    }
    let tar = dir.join("busybox.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    tar
}

/// Runs a command; panics with its stderr if it fails. Returns stdout.
pub(crate) fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("lab: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "lab: {cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `net.ipv4.ip_forward` now.
pub(crate) fn ip_forward() -> Option<String> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .ok()
        .map(|s| s.trim().to_owned())
}

pub(crate) fn set_ip_forward(v: &str) {
    if ip_forward().as_deref() != Some(v)
        && let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", v)
    {
        warn(format_args!(
            "could not restore net.ipv4.ip_forward to {v}: {e}"
        ));
    }
}

/// A set of Podman containers, their image and network; removed on drop.
#[derive(Debug)]
pub struct PodmanLab {
    prefix: String,
    dir: PathBuf,
    conf: PathBuf,
    image: String,
    network: String,
    subnet: u8,
    containers: Vec<String>,
    ip_forward: Option<String>,
    service: Option<std::process::Child>,
}

impl PodmanLab {
    /// Builds the image and the network. `tag` is kept in the names (cut to 12 characters).
    ///
    /// # Panics
    /// If Podman, runc or busybox-static is missing, or a step fails.
    pub fn new(tag: &str) -> PodmanLab {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag: String = tag
            .chars()
            .take(12)
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let prefix = format!("{PREFIX}{}-{n}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("lab: {}: {e}", dir.display()));
        let conf = dir.join("containers.conf");
        std::fs::write(&conf, CONTAINERS_CONF).unwrap_or_else(|e| panic!("lab: conf: {e}"));
        let mut lab = PodmanLab {
            image: format!("localhost/{prefix}:latest"),
            network: format!("{prefix}-net"),
            subnet: 0,
            prefix,
            dir,
            conf,
            containers: Vec::new(),
            ip_forward: ip_forward(),
            service: None,
        };
        let tar = busybox_rootfs(&lab.dir);
        run_ok(lab.podman().arg("import").arg(&tar).arg(&lab.image));
        // A /24 of 198.18.0.0/15 no other network uses: Podman refuses overlapping subnets.
        let start = (std::process::id().wrapping_mul(7) + n * 13) % 200;
        for i in 0..200 {
            let x = 40 + ((start + i) % 200) as u8;
            let out = lab
                .podman()
                .args(["network", "create", "--internal", "--subnet"])
                .arg(format!("198.18.{x}.0/24"))
                .arg(&lab.network)
                .output()
                .unwrap_or_else(|e| panic!("lab: podman network create: {e}"));
            if out.status.success() {
                lab.subnet = x;
                return lab;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("already used") || err.contains("overlap"),
                "lab: podman network create: {}",
                err.trim()
            );
        }
        panic!("lab: no free /24 in 198.18.40.0-198.18.239.0 for a Podman network");
    }

    /// `podman` with the lab's `containers.conf`.
    pub fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf);
        c
    }

    /// The variables a program that calls Podman should run with.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "CONTAINERS_CONF".into(),
            self.conf.to_string_lossy().into_owned(),
        )]
    }

    /// The full name of lab container `short`.
    pub fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// The lab network's name and its third address octet (`198.18.X.0/24`).
    pub fn network(&self) -> (&str, u8) {
        (&self.network, self.subnet)
    }

    /// Starts container `short` (`sleep` for an hour) on the lab network; returns its full
    /// ID.
    pub fn run(&mut self, short: &str) -> String {
        let name = self.name(short);
        self.containers.push(name.clone());
        run_ok(
            self.podman()
                .args(["run", "-d", "--runtime", "runc", "--network"])
                .arg(&self.network)
                .arg("--name")
                .arg(&name)
                .arg(&self.image)
                .args(["sleep", "3600"]),
        )
        .trim()
        .to_owned()
    }

    /// Stops container `short` at once (it stays, stopped, until the lab goes).
    pub fn stop(&self, short: &str) {
        run_ok(
            self.podman()
                .args(["stop", "-t", "0"])
                .arg(self.name(short)),
        );
    }

    /// Starts Podman's API service (`podman system service --time=0`) on a socket of the
    /// lab's own, once, and returns its `unix://` URL when it answers: the Docker Engine API
    /// as Podman serves it (a second server of that API), and Podman's own. Stopped on drop.
    ///
    /// # Panics
    /// If it does not answer `/_ping` within 30 s.
    pub fn service(&mut self) -> String {
        let sock = self.dir.join("podman.sock");
        let url = format!("unix://{}", sock.display());
        if self.service.is_none() {
            let log = std::fs::File::create(self.dir.join("service.log"))
                .unwrap_or_else(|e| panic!("lab: service.log: {e}"));
            let child = self
                .podman()
                .args(["system", "service", "--time=0"])
                .arg(&url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("lab: podman system service: {e}"));
            self.service = Some(child);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !pings(&sock) {
                if let Some(st) = self
                    .service
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    let log = std::fs::read_to_string(self.dir.join("service.log"));
                    panic!("lab: podman system service exited ({st}): {log:?}");
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "lab: podman system service did not answer within 30 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        url
    }

    /// The main PID of running container `short`.
    pub fn pid(&self, short: &str) -> u32 {
        let out = run_ok(
            self.podman()
                .args(["inspect", "--format", "{{.State.Pid}}"])
                .arg(self.name(short)),
        );
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("lab: pid of {short}: {out:?}: {e}"))
    }
}

/// True if an API server answers `GET /_ping` with `OK` on `sock`.
fn pings(sock: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let mut answer = String::new();
    s.write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        .is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.")
        && answer.contains(" 200 ")
        && answer.ends_with("OK")
}

impl Drop for PodmanLab {
    fn drop(&mut self) {
        if let Some(mut svc) = self.service.take() {
            // SIGTERM: the service removes its socket and exits; SIGKILL if it hangs.
            if let Ok(pid) = i32::try_from(svc.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while svc.try_wait().ok().flatten().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = svc.kill();
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let quiet = |cmd: &mut Command| {
            if let Ok(out) = cmd.output()
                && !out.status.success()
            {
                warn(format_args!(
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        };
        if !self.containers.is_empty() {
            quiet(
                self.podman()
                    .args(["rm", "-f", "-t", "0"])
                    .args(&self.containers),
            );
        }
        if self.subnet != 0 {
            quiet(
                self.podman()
                    .args(["network", "rm", "-f"])
                    .arg(&self.network),
            );
        }
        quiet(self.podman().args(["rmi", "-f"]).arg(&self.image));
        if let Some(v) = &self.ip_forward {
            set_ip_forward(v);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
