//! `cargo xtask demo | test | bench`: the project's entry points on a fresh Debian 12 machine.
//!
//! Each command first installs the Debian packages it needs that are missing (as root, through
//! apt-get), then builds and runs. Std only, apart from serde_json for the benchmark's JSON.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod bench_exporter;
mod deb;
mod fuzz;
mod install;
mod many;
mod package_test;
mod sh;

use sh::{Sh, fail};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  demo [ARGS...]     install what is missing, build release, run `nsring demo ARGS...`
  test [ARGS...]     install what tests need, check fmt and clippy, run every test
                     (ARGS go to `cargo test`, e.g. `cargo xtask test -- --nocapture`)
  bench [OPTIONS]    benchmark nsring against tcpdump on a veth lab (see `cargo xtask bench --help`)
  bench-exporter [--namespaces N] [--scrapes R]
                     time one `nsring exporter` scrape with N namespaces [default: 100]
  fuzz [OPTIONS]     fuzz every parser of outside bytes with AFL++, counted executions
                     (see `cargo xtask fuzz --help`)
  install [--prefix P] [--destdir D] [--user | --no-extcap]
                     build and install nsring, its man pages, shell completions and the
                     Wireshark extcap link (see `cargo xtask install --help`)
  uninstall [--prefix P] [--destdir D]
                     remove exactly what install put in place (its manifest)
  deb [--out DIR]    build the Debian package target/debian/nsring_VERSION_ARCH.deb
  test-package       only the install/uninstall and package part of `test` (installs the
                     package on this machine, then purges it)
  deps [demo|test|bench]
                     only install the Debian packages a command needs
";

/// Debian packages each command needs (binary → package).
pub const DEMO_PKGS: &[&str] = &["libpcap-dev", "pkg-config", "iproute2"];
const TEST_PKGS: &[&str] = &[
    "libpcap-dev",
    "pkg-config",
    "iproute2",
    "tcpdump",
    "tshark",
    "util-linux",
    "procps",
    "iputils-ping",
    "g++",
    "bash-completion",
    "man-db",
    "groff-base",
    "make",
    "dpkg-dev",
    "binutils",
    // Container tests: real Podman containers from a busybox-static image the lab builds,
    // and a Docker daemon of the lab's own (with the containerd it starts; ctr).
    "podman",
    "runc",
    "busybox-static",
    "uidmap",
    "containerd",
    "docker.io",
    "tar",
    // nsring mount: fusermount3 and /etc/fuse.conf (fuser mounts without libfuse, so
    // libfuse3-dev is not needed to build)
    "fuse3",
    // the exporter's test scrapes with a real Prometheus (installed without recommends, so
    // no node exporter comes along; its service is never started, see `install`)
    "prometheus",
];
pub const BENCH_PKGS: &[&str] = &[
    "libpcap-dev",
    "pkg-config",
    "iproute2",
    "tcpdump",
    "netsniff-ng",
    "util-linux",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd {
        "demo" => demo(rest),
        "test" => test(rest),
        "bench" => bench::run(rest),
        "bench-exporter" => bench_exporter::run(rest),
        "fuzz" => fuzz::run(rest),
        "install" => install::install(rest),
        "uninstall" => install::uninstall(rest),
        "deb" => deb::run(rest),
        "test-package" => test_package(),
        "deps" => match rest.first().map(String::as_str) {
            Some("demo") => install(DEMO_PKGS),
            Some("bench") => install(BENCH_PKGS),
            Some("test") | None => install(TEST_PKGS),
            Some(other) => Err(format!(
                "unknown package set '{other}': use demo, test or bench"
            )),
        },
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("xtask: unknown command '{other}'\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

pub fn require_root(what: &str) -> Result<(), String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        })
        .unwrap_or_default();
    if uid == "0" {
        Ok(())
    } else {
        Err(format!(
            "`cargo xtask {what}` needs root (it creates network namespaces and installs packages): run it as root"
        ))
    }
}

/// Installs the Debian packages of `pkgs` that are not installed yet.
pub fn install(pkgs: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| {
            Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| !String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    require_root("deps")?;
    eprintln!("xtask: installing {}", missing.join(" "));
    let sh = Sh::new().env("DEBIAN_FRONTEND", "noninteractive");
    sh.run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    // A package's service (prometheus's) must not start and listen: while installing, a
    // policy-rc.d says no to every start, as container images have one say (kept if there).
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(
            policy,
            "#!/bin/sh\n# cargo xtask: no service starts while packages install\nexit 101\n",
        )
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))
        })
        .map_err(|e| format!("cannot write {}: {e}", policy.display()))?;
    }
    let r = sh.run("apt-get", &args);
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    r
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn demo(args: &[String]) -> Result<(), String> {
    require_root("demo")?;
    install(DEMO_PKGS)?;
    let sh = Sh::new().dir(root());
    sh.run(
        &cargo(),
        &["build", "--release", "--quiet", "-p", "nsring-cli"],
    )?;
    let bin = root().join("target/release/nsring");
    let mut argv: Vec<&str> = vec!["demo"];
    argv.extend(args.iter().map(String::as_str));
    sh.run(bin.to_str().unwrap_or("nsring"), &argv)
}

fn test(args: &[String]) -> Result<(), String> {
    require_root("test")?;
    install(TEST_PKGS)?;
    let sh = Sh::new().dir(root());
    let cargo = cargo();
    // rustfmt and clippy come with rustup's default profile; a minimal toolchain lacks them.
    let has = |tool: &str| sh.output(&cargo, &[tool, "--version"]).is_ok();
    if has("fmt") {
        sh.run(&cargo, &["fmt", "--all", "--", "--check"])
            .map_err(|e| format!("{e} (run `cargo fmt --all`)"))?;
    } else {
        eprintln!("xtask: rustfmt is not installed; skipping the format check");
    }
    if has("clippy") {
        sh.run(
            &cargo,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--quiet",
                "--",
                "-D",
                "warnings",
            ],
        )?;
    } else {
        eprintln!("xtask: clippy is not installed; skipping the lint check");
    }
    // The library's documentation builds without a warning (broken links, missing docs).
    sh.clone()
        .env("RUSTDOCFLAGS", "-D warnings")
        .run(&cargo, &["doc", "--no-deps", "--workspace", "--quiet"])
        .map_err(|e| format!("{e} (the API documentation has warnings)"))?;
    let before = leftovers();
    let mut argv = vec!["test", "--workspace", "--all-targets"];
    argv.extend(args.iter().map(String::as_str));
    let tested = sh.run(&cargo, &argv);
    // Doc tests are not covered by --all-targets.
    let doc = sh.run(&cargo, &["test", "--workspace", "--doc", "--quiet"]);
    // The AFL++ targets are outside the workspace (`cargo afl build` links them against
    // AFL++'s runtime; `cargo xtask fuzz` runs them); checking them keeps them compiling.
    // Their harnesses and the inputs kept in fuzz/regressions run as the crates' tests.
    let fuzz = sh.run(
        &cargo,
        &["check", "--quiet", "--manifest-path", "fuzz/Cargo.toml"],
    );
    let after = leftovers();
    // Lab names carry their creator's PID (see `creator_pid`): one whose creator still runs
    // belongs to another run on this machine (ours have all exited by now).
    let new: Vec<&String> = after
        .iter()
        .filter(|n| !before.contains(n) && !creator_alive(n))
        .collect();
    tested?;
    doc?;
    fuzz?;
    // the binary the tests just built goes through install and the Debian package
    package_test::run(&root().join("target/debug/nsring"))?;
    if !new.is_empty() {
        return fail(format!(
            "tests left lab resources behind (a guard did not clean up): {}",
            new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
        ));
    }
    eprintln!("xtask: all tests passed, no lab left behind");
    Ok(())
}

/// Whether the process that made a lab resource (`netns:NAME`, `link:NAME`,
/// `mount:/tmp/nsrt-<pid>-...`, ...) still runs: then it belongs to another run on this
/// machine (a test, `cargo xtask bench`, `soak`, `nsring demo`), not to this one.
fn creator_alive(resource: &str) -> bool {
    let name = resource.split_once(':').map_or(resource, |(_, n)| n);
    // a path: its last component that is a lab name
    let name = name
        .rsplit('/')
        .find(|c| c.starts_with("nsrt"))
        .unwrap_or(name);
    creator_pid(name).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// The PID every lab name in the repository carries. Two schemes:
/// - `nsrt-<letters><pid>[-...]`, the PID in decimal: namespaces, containers, networks and
///   state directories (the test lab `nsrt-<pid>-...`, Docker labs `nsrt-<pid>-d<n>-...`,
///   `nsring demo`'s `nsrt-demo<pid>-...`, the bench's `nsrt-b<pid>-...`, the many-namespace
///   bench's `nsrt-m<pid>-...`, the soak's `nsrt-c<pid>-...`, the examples' `nsrt-ex<pid>`);
/// - `nsrt<pid in hex><letter g-z>...`: initial-namespace interfaces, 15 bytes at most (the
///   lab's veths `...h<n>`, Docker lab bridges `...k<n>`, the demo's `...i1`, the examples'
///   `...xa`).
fn creator_pid(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_prefix("nsrt-") {
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
        let end = rest.find('-').unwrap_or(rest.len());
        let pid = &rest[..end];
        return (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            .then(|| pid.parse().ok())
            .flatten();
    }
    let rest = name.strip_prefix("nsrt")?;
    let end = rest.find(|c: char| !c.is_ascii_hexdigit())?;
    let tag = rest[end..].chars().next()?;
    if end == 0 || !('g'..='z').contains(&tag) {
        return None;
    }
    u32::from_str_radix(&rest[..end], 16).ok()
}

fn test_package() -> Result<(), String> {
    require_root("test-package")?;
    install(TEST_PKGS)?;
    Sh::new()
        .dir(root())
        .run(&cargo(), &["build", "--quiet", "-p", "nsring-cli"])?;
    package_test::run(&root().join("target/debug/nsring"))
}

/// Lab resources that exist now: namespaces, interfaces of the initial namespace, nsring
/// FUSE mounts on lab directories, lab container daemons (Docker labs' `dockerd` and its
/// `containerd`, named by their state directory), and Podman containers and networks.
fn leftovers() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in table.lines() {
            let point = line.split(' ').nth(4).unwrap_or("");
            let source = line.split(" - ").nth(1).and_then(|r| r.split(' ').nth(1));
            if source == Some("nsring") && point.contains("nsrt") {
                out.push(format!("mount:{point}"));
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("nsrt") {
                out.push(format!("netns:{name}"));
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("nsrt") {
                out.push(format!("link:{name}"));
            }
        }
    }
    out.extend(lab_daemons());
    for (what, args) in [
        ("container", &["ps", "-a", "--format", "{{.Names}}"][..]),
        (
            "podman-network",
            &["network", "ls", "--format", "{{.Name}}"],
        ),
    ] {
        if let Ok(o) = Command::new("podman").args(args).output() {
            for name in String::from_utf8_lossy(&o.stdout).lines() {
                if name.starts_with("nsrt") {
                    out.push(format!("{what}:{name}"));
                }
            }
        }
    }
    out.sort();
    out
}

/// `daemon:<state dir>` for every `dockerd`/`containerd` running with state under a lab
/// directory (`.../nsrt-<pid>-d<n>-...`).
fn lab_daemons() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
        if !matches!(comm.trim(), "dockerd" | "containerd") {
            continue;
        }
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let lab_dir = String::from_utf8_lossy(&cmdline)
            .split(['\0', '/', '='])
            .find(|part| part.starts_with("nsrt-"))
            .map(str::to_owned);
        if let Some(dir) = lab_dir {
            let entry = format!("daemon:{dir}");
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::creator_pid;

    #[test]
    fn every_lab_naming_scheme_gives_its_creator() {
        for (name, pid) in [
            ("nsrt-1234-0-tag-a", Some(1234)),
            ("nsrt-1234-d3-cli-web1", Some(1234)),
            ("nsrt-demo4321-ns0", Some(4321)),
            ("nsrt-b23112-rx", Some(23112)),
            ("nsrt-m77-s-12", Some(77)),
            ("nsrt-c88-5", Some(88)),
            ("nsrt-ex99", Some(99)),
            ("nsrt-77-mnt0-ls", Some(77)),
            ("nsrt4d2h1f", Some(0x4d2)),
            ("nsrt4d2k0", Some(0x4d2)),
            ("nsrt10e1i1", Some(0x10e1)),
            ("nsrt63xa", Some(0x63)),
            // no PID to read: always a leftover once this run is over
            ("nsrt-ex-99", None),
            ("nsrt-point-5", None),
            ("nsrt-", None),
            ("nsrt4d2", None),
            ("nsrt4d2a", None),
            ("nsrtxh1", None),
        ] {
            assert_eq!(creator_pid(name), pid, "{name}");
        }
    }
}
