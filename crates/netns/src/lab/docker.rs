//! A Docker lab: a `dockerd` of the lab's own (its own data root, exec root, pidfile, API
//! socket and the containerd it starts), real containers from the busybox image the lab
//! builds, on an internal network of the lab's own (198.18.X.0/24, no NAT, no default
//! route); on drop the containers, network and image are removed, the daemon is stopped and
//! all its state is deleted.
//!
//! The daemon never touches the host's networking: `--bridge=none` (no docker0),
//! `--iptables=false --ip6tables=false --ip-forward=false`. Its `--default-ulimit`s stay
//! within the machine's hard limits (4096:4096), as for Podman. Programs reach it through
//! `DOCKER_HOST` ([`DockerLab::env`]); its containerd (namespace `moby`) is at
//! [`DockerLab::containerd_socket`]. Docker keeps the containers' namespaces under its exec
//! root (`…/exec/netns/<id>`), not in `/run/netns`.
//!
//! A lab whose test process was killed leaves its daemon running: the next
//! [`DockerLab::new`] stops the daemons of labs whose creator is gone and removes their
//! state.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::podman::{busybox_rootfs, ip_forward, run_ok, set_ip_forward};
use super::{PREFIX, pid_alive, warn};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long the daemon may take to answer after it starts, and to stop.
const DAEMON_WAIT: Duration = Duration::from_secs(60);

/// A `dockerd` of the lab's own with its image, network and containers; all removed on drop.
#[derive(Debug)]
pub struct DockerLab {
    prefix: String,
    dir: PathBuf,
    daemon: Option<Child>,
    image: String,
    network: String,
    bridge: String,
    subnet: u8,
    containers: Vec<String>,
    ip_forward: Option<String>,
}

impl DockerLab {
    /// Starts the daemon, imports the image and creates the network. `tag` is kept in the
    /// names (cut to 12 characters, lower case: Docker's image names are).
    ///
    /// # Panics
    /// If docker.io, containerd, runc or busybox-static is missing, or a step fails.
    pub fn new(tag: &str) -> DockerLab {
        sweep_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag: String = tag
            .chars()
            .take(12)
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let pid = std::process::id();
        let prefix = format!("{PREFIX}{pid}-d{n}-{tag}");
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("lab: {}: {e}", dir.display()));
        let mut lab = DockerLab {
            image: format!("{prefix}:latest"),
            network: format!("{prefix}-net"),
            // At most 15 bytes: `nsrt` + PID in hex (<= 6) + `k` + counter in hex.
            bridge: format!("nsrt{pid:x}k{:x}", n & 0xfff),
            subnet: 0,
            prefix,
            dir,
            daemon: None,
            containers: Vec::new(),
            ip_forward: ip_forward(),
        };
        lab.start_daemon();
        let tar = busybox_rootfs(&lab.dir);
        run_ok(lab.docker().arg("import").arg(&tar).arg(&lab.image));
        let _ = std::fs::remove_file(&tar);
        let _ = std::fs::remove_dir_all(lab.dir.join("rootfs"));
        lab.create_network(n);
        lab
    }

    fn start_daemon(&mut self) {
        let d = &self.dir;
        for sub in ["data", "exec"] {
            std::fs::create_dir_all(d.join(sub))
                .unwrap_or_else(|e| panic!("lab: {}: {e}", d.join(sub).display()));
        }
        let log = std::fs::File::create(d.join("dockerd.log"))
            .unwrap_or_else(|e| panic!("lab: dockerd.log: {e}"));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("lab: dockerd.log: {e}"));
        let child = Command::new("dockerd")
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--default-ulimit",
                "nofile=4096:4096",
                "--default-ulimit",
                "nproc=4096:4096",
            ])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(self.url())
            // The daemon must not find a user's configuration or another daemon's state.
            .arg("--config-file")
            .arg(self.write_config())
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("lab: cannot start dockerd (install docker.io): {e}"));
        self.daemon = Some(child);
        let deadline = Instant::now() + DAEMON_WAIT;
        loop {
            if let Some(st) = self
                .daemon
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("lab: dockerd exited ({st}): {}", self.log_tail());
            }
            if self.socket().exists()
                && self
                    .docker()
                    .args(["version", "--format", "{{.Server.Version}}"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lab: dockerd did not answer within {} s: {}",
                DAEMON_WAIT.as_secs(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An empty `daemon.json`: no registry mirrors, hosts or storage options of the machine's.
    fn write_config(&self) -> PathBuf {
        let p = self.dir.join("daemon.json");
        std::fs::write(&p, "{}\n").unwrap_or_else(|e| panic!("lab: daemon.json: {e}"));
        p
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// A /24 of 198.18.0.0/15 that no other network of this daemon uses, on a bridge named
    /// `nsrt…` (so a bridge left behind is seen as the lab's).
    fn create_network(&mut self, n: u32) {
        let start = (std::process::id().wrapping_mul(11) + n * 17) % 200;
        for i in 0..200 {
            let x = 40 + ((start + i) % 200) as u8;
            // Skip subnets the host routes already (another lab's network, Podman's).
            if routed(x) {
                continue;
            }
            let out = self
                .docker()
                .args(["network", "create", "--internal", "--subnet"])
                .arg(format!("198.18.{x}.0/24"))
                .arg("-o")
                .arg(format!("com.docker.network.bridge.name={}", self.bridge))
                .arg(&self.network)
                .output()
                .unwrap_or_else(|e| panic!("lab: docker network create: {e}"));
            if out.status.success() {
                self.subnet = x;
                return;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("overlap") || err.contains("in use"),
                "lab: docker network create: {}",
                err.trim()
            );
        }
        panic!("lab: no free /24 in 198.18.40.0-198.18.239.0 for a Docker network");
    }

    /// `unix://` URL of the daemon's API socket.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The daemon's API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// The socket of the containerd the daemon started (its containers are in containerd
    /// namespace `moby`).
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.join("exec/containerd/containerd.sock")
    }

    /// Where the daemon keeps its containers' network namespaces.
    pub fn netns_dir(&self) -> PathBuf {
        self.dir.join("exec/netns")
    }

    /// `docker` talking to the lab's daemon.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.url());
        c
    }

    /// The variables a program that calls Docker should run with (`DOCKER_HOST`).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("DOCKER_HOST".into(), self.url())]
    }

    /// The full name of lab container `short`.
    pub fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// The lab network's name and its third address octet (`198.18.X.0/24`).
    pub fn network(&self) -> (&str, u8) {
        (&self.network, self.subnet)
    }

    /// Starts container `short` (`sleep` for an hour) on the lab network under the full name
    /// [`DockerLab::name`]; returns its full ID.
    pub fn run(&mut self, short: &str) -> String {
        let name = self.name(short);
        self.run_named(&name)
    }

    /// Starts a container named exactly `name` (`sleep` for an hour) on the lab network;
    /// returns its full ID. For a name another runtime's lab container has too.
    ///
    /// # Panics
    /// If `name` does not start with `nsrt-`: the lab only makes names it can tell apart.
    pub fn run_named(&mut self, name: &str) -> String {
        assert!(name.starts_with(PREFIX), "lab: container name {name:?}");
        self.containers.push(name.to_owned());
        run_ok(
            self.docker()
                .args(["run", "-d", "--network"])
                .arg(&self.network)
                .arg("--name")
                .arg(name)
                .arg(&self.image)
                .args(["sleep", "3600"]),
        )
        .trim()
        .to_owned()
    }

    /// Stops container `name` (full name) at once; it stays, stopped, until the lab goes.
    pub fn stop(&self, name: &str) {
        run_ok(self.docker().args(["stop", "-t", "0"]).arg(name));
    }

    /// The main PID of running container `name` (full name).
    pub fn pid(&self, name: &str) -> u32 {
        let out = run_ok(
            self.docker()
                .args(["inspect", "--format", "{{.State.Pid}}"])
                .arg(name),
        );
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("lab: pid of {name}: {out:?}: {e}"))
    }
}

/// True if the host has a route into 198.18.X.0/24 (a bridge of another lab or runtime).
fn routed(x: u8) -> bool {
    let want = format!("{:02X}{:02X}12C6", 0, x); // 198.18.x.0 in /proc/net/route's order
    std::fs::read_to_string("/proc/net/route").is_ok_and(|t| {
        t.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
    })
}

impl Drop for DockerLab {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            if let Ok(out) = self.docker().args(args).output()
                && !out.status.success()
            {
                warn(format_args!(
                    "docker {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        };
        if self.daemon.is_some() {
            if !self.containers.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(self.containers.iter().map(String::as_str));
                docker(&args);
            }
            if self.subnet != 0 {
                docker(&["network", "rm", &self.network]);
            }
            docker(&["rmi", "-f", &self.image]);
        }
        if let Some(mut child) = self.daemon.take() {
            stop_daemon(child.id(), &self.dir);
            let _ = child.wait();
        }
        if let Some(v) = &self.ip_forward {
            set_ip_forward(v);
        }
        remove_state(&self.dir);
    }
}

/// Stops the daemon `pid` (SIGTERM; SIGKILL if it is still there after [`DAEMON_WAIT`]) and
/// the containerd it started.
fn stop_daemon(pid: u32, dir: &Path) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let containerd = std::fs::read_to_string(dir.join("exec/containerd/containerd.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let Ok(p) = i32::try_from(pid) else { return };
    let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
    let deadline = Instant::now() + DAEMON_WAIT;
    while is_running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_running(pid) {
        warn(format_args!(
            "dockerd {pid} did not stop in time; killing it"
        ));
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    // dockerd stops its containerd on the way out; make sure.
    if let Some(c) = containerd.filter(|c| is_running(*c) && cmdline_has(*c, dir))
        && let Ok(c) = i32::try_from(c)
    {
        let _ = kill(Pid::from_raw(c), Signal::SIGTERM);
    }
}

/// Running and not a zombie (a child not yet reaped counts as stopped).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().to_owned()))
        .is_some_and(|r| !r.starts_with('Z'))
}

fn cmdline_has(pid: u32, dir: &Path) -> bool {
    let dir = dir.to_string_lossy();
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(dir.as_ref()))
}

/// Unmounts what the daemon left mounted under `dir` (deepest first), then deletes `dir`.
fn remove_state(dir: &Path) {
    let dir_s = dir.to_string_lossy().into_owned();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&dir_s))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in &mounts {
        if let Err(e) = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH) {
            warn(format_args!("could not unmount {m}: {e}"));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        warn(format_args!("could not remove {}: {e}", dir.display()));
    }
}

/// Stops the daemons of Docker labs whose creator is gone (it was killed before its guard
/// ran) and removes their containers, networks and state.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Some(creator) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = e.path();
        if pid_alive(creator) || !dir.join("exec").is_dir() {
            continue;
        }
        let daemon = std::fs::read_to_string(dir.join("docker.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|p| is_running(*p) && cmdline_has(*p, &dir));
        if let Some(pid) = daemon {
            let url = format!("unix://{}", dir.join("docker.sock").display());
            let docker = |args: &[&str]| {
                Command::new("docker")
                    .env("DOCKER_HOST", &url)
                    .args(args)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            };
            let ids = docker(&["ps", "-aq"]);
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                docker(&args);
            }
            docker(&["network", "prune", "-f"]);
            stop_daemon(pid, &dir);
        }
        remove_state(&dir);
    }
}
