//! The install step and the Debian package, tested by `cargo xtask test` with the real
//! programs: `install` into a staging root and `uninstall` back to nothing; the .deb built,
//! inspected, installed for real with `dpkg -i`, used (`nsring --version`, `man
//! nsring-count`, bash completion, `tshark -D` and its extcap folder), removed and purged,
//! and the machine checked for leftovers.
//!
//! The real installation touches system paths (/usr/bin/nsring, Wireshark's extcap folder),
//! so it runs under an exclusive lock that every test run on the machine shares
//! ([`LOCK`]), and a guard purges the package whatever happens. If a run was killed while
//! the package was installed, the next one finds the marker it left and purges first.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::deb::{self, PACKAGE, out};
use crate::install::{self, Extcap};
use crate::sh::{Sh, fail};

/// Held exclusively while the package is installed on the machine.
pub const LOCK: &str = "/run/lock/nsring-package-test.lock";
/// Written while a test run has the package installed.
const MARKER: &str = "/run/lock/nsring-package-test.installed";

/// Runs both tests with `bin` (the freshly built test binary).
pub fn run(bin: &Path) -> Result<(), String> {
    install_round_trip(bin)?;
    deb_round_trip(bin)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `install` into a staging root twice (the second replaces the first), everything where
/// it belongs, then `uninstall`: the root is empty again.
fn install_round_trip(bin: &Path) -> Result<(), String> {
    let root = crate::root().join(format!("target/xtask-install-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let prefix = Path::new("/usr/local");
    let extcap_dir = install::system_extcap_dir()?;
    let extcap = Extcap::At(extcap_dir.clone());
    install::install_bin(bin, prefix, Some(&root), &extcap)?;
    let lines = install::install_bin(bin, prefix, Some(&root), &extcap)?;
    let st = |p: &str| root.join(p.trim_start_matches('/'));

    let nsring = st("/usr/local/bin/nsring");
    let mode = fs::metadata(&nsring)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o7777 != 0o755 {
        return fail(format!(
            "install: {} has mode {:o}",
            nsring.display(),
            mode & 0o7777
        ));
    }
    // PF_RING's names: links next to the binary that answer as PF_RING's tools
    for name in ["pfcount", "pfsend", "pfdump"] {
        let l = st(&format!("/usr/local/bin/{name}"));
        let t = fs::read_link(&l).map_err(|e| format!("install: no {name} link: {e}"))?;
        if t != Path::new("nsring") {
            return fail(format!("install: {name} points to {}", t.display()));
        }
        let help = Sh::new()
            .output(l.to_str().unwrap_or(name), &["-h"])?
            .stdout;
        if !String::from_utf8_lossy(&help).starts_with(&format!("{name} (nsring)")) {
            return fail(format!("install: {name} -h does not answer as {name}"));
        }
    }
    let link = extcap_dir.join("nsring");
    let target = fs::read_link(root.join(link.strip_prefix("/").unwrap_or(&link)))
        .map_err(|e| format!("install: no extcap link: {e}"))?;
    if target != Path::new("/usr/local/bin/nsring") {
        return fail(format!(
            "install: extcap link points to {}",
            target.display()
        ));
    }
    for p in [
        "/usr/local/share/man/man1/nsring.1",
        "/usr/local/share/man/man1/nsring-count.1",
        "/usr/local/share/bash-completion/completions/nsring",
        "/usr/local/share/zsh/site-functions/_nsring",
        "/usr/local/share/fish/vendor_completions.d/nsring.fish",
    ] {
        if !st(p).is_file() {
            return fail(format!("install: {p} is missing"));
        }
    }
    // the manifest lists exactly what is there
    let mut listed: Vec<PathBuf> = lines
        .iter()
        .filter(|l| !l.starts_with("dir "))
        .map(|l| st(l.split_once(' ').map_or("", |x| x.1)))
        .collect();
    let mut present = files_under(&root);
    listed.sort();
    present.sort();
    if listed != present {
        return fail(format!(
            "install: manifest {listed:?}\nbut on disk {present:?}"
        ));
    }
    let man = Sh::new().output(
        "man",
        &[
            "--warnings=w",
            "-l",
            st("/usr/local/share/man/man1/nsring-count.1")
                .to_str()
                .unwrap_or(""),
        ],
    )?;
    if !man.stderr.is_empty() || !String::from_utf8_lossy(&man.stdout).contains("snaplen") {
        return fail("install: the installed nsring-count(1) does not render cleanly");
    }

    install::uninstall_at(prefix, Some(&root))?;
    let left = files_under(&root);
    let dirs_left = fs::read_dir(&root).map(|d| d.count()).unwrap_or(0);
    let _ = fs::remove_dir_all(&root);
    if !left.is_empty() || dirs_left != 0 {
        return fail(format!(
            "uninstall left {left:?} ({dirs_left} entries in the root)"
        ));
    }
    eprintln!(
        "xtask: install and uninstall round trip: ok ({} entries)",
        lines.len()
    );
    Ok(())
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", PACKAGE])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
        .unwrap_or(false)
}

/// Runs dpkg, waiting (up to 10 minutes) while another program holds its lock.
fn dpkg(args: &[&str]) -> Result<String, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let out = Command::new("dpkg")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("cannot run dpkg: {e}"))?;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &err);
        }
        if err.contains("lock") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_secs(2));
            continue;
        }
        return fail(format!("dpkg {}: {}", args.join(" "), err.trim()));
    }
}

/// Purges the package on drop (also on a failed check or a panic).
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if installed()
            && let Err(e) = dpkg(&["-P", PACKAGE])
        {
            eprintln!("xtask: could not purge the test package: {e}");
        }
        let _ = fs::remove_file(MARKER);
    }
}

fn deb_round_trip(bin: &Path) -> Result<(), String> {
    let out_dir = crate::root().join("target/debian-test");
    fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let pkg = deb::build(bin, &out_dir)?;
    let pkg_s = pkg.to_str().unwrap_or("");

    // what is in it, before it goes anywhere
    let depends = out(&Sh::new(), "dpkg-deb", &["-f", pkg_s, "Depends"])?;
    if !depends.contains("libpcap0.8") || !depends.contains("libc6") {
        return fail(format!("deb: Depends is '{depends}', no libpcap0.8/libc6"));
    }
    let listing = out(&Sh::new(), "dpkg-deb", &["-c", pkg_s])?;
    let mut paths = Vec::new();
    for line in listing.lines() {
        let perms = line.split_whitespace().next().unwrap_or("");
        if perms.contains('s') || perms.contains('S') || perms.contains('t') {
            return fail(format!("deb: a setuid/setgid/sticky entry: {line}"));
        }
        if !line.contains("root/root") {
            return fail(format!("deb: not owned by root: {line}"));
        }
        let path = line.split(" ./").nth(1).unwrap_or("");
        let path = path.split(" -> ").next().unwrap_or(path);
        if !path.is_empty() && !path.ends_with('/') {
            paths.push(format!("/{path}"));
        }
    }
    let extcap_link = deb::package_extcap_dir()?.join("nsring");
    for want in [
        "/usr/bin/nsring",
        "/usr/share/man/man1/nsring-count.1.gz",
        "/usr/share/bash-completion/completions/nsring",
        extcap_link.to_str().unwrap_or(""),
    ] {
        if !paths.iter().any(|p| p == want) {
            return fail(format!("deb: {want} is not in the package:\n{listing}"));
        }
    }

    let lock = File::create(LOCK).map_err(|e| format!("{LOCK}: {e}"))?;
    lock.lock().map_err(|e| format!("{LOCK}: {e}"))?;
    if installed() {
        if Path::new(MARKER).exists() {
            eprintln!("xtask: a killed test run left the package installed; purging it");
            dpkg(&["-P", PACKAGE])?;
        } else {
            return fail(
                "a package named nsring is installed on this machine (not by a test): \
                         the package test installs and purges it; remove it first (dpkg -P nsring)",
            );
        }
    }
    for p in &paths {
        if fs::symlink_metadata(p).is_ok() {
            return fail(format!(
                "{p} exists outside any package: the package test would take it over; remove it"
            ));
        }
    }
    fs::write(MARKER, std::process::id().to_string()).map_err(|e| e.to_string())?;
    let guard = Installed;
    dpkg(&["-i", pkg_s])?;
    check_installed(&paths, &extcap_link)?;

    // remove, then purge: every file of the package is gone
    dpkg(&["-r", PACKAGE])?;
    dpkg(&["-P", PACKAGE])?;
    drop(guard);
    let left: Vec<&String> = paths
        .iter()
        .filter(|p| fs::symlink_metadata(p).is_ok())
        .collect();
    if !left.is_empty() || installed() {
        return fail(format!("dpkg -P left {left:?}"));
    }
    let _ = fs::remove_file(&pkg);
    eprintln!(
        "xtask: package {}: built, installed, used, purged: ok",
        pkg.display()
    );
    Ok(())
}

fn check_installed(paths: &[String], extcap_link: &Path) -> Result<(), String> {
    let sh = Sh::new();
    let version = out(&sh, "/usr/bin/nsring", &["--version"])?;
    if version != format!("nsring {}", env!("CARGO_PKG_VERSION")) {
        return fail(format!("installed nsring --version says '{version}'"));
    }
    let mode = fs::metadata("/usr/bin/nsring")
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o7000 != 0 {
        return fail(format!("/usr/bin/nsring has mode {:o}", mode & 0o7777));
    }
    let help = out(&sh, "/usr/bin/pfcount", &["-h"])?;
    if !help.starts_with("pfcount (nsring)") {
        return fail("the package's /usr/bin/pfcount does not answer as pfcount");
    }
    for p in paths {
        if fs::symlink_metadata(p).is_err() {
            return fail(format!("{p} is not installed"));
        }
    }
    // man finds the page by name, renders it without a warning
    let man = Command::new("man")
        .args(["--warnings=w", "nsring-count"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&man.stdout);
    if !man.status.success() || !man.stderr.is_empty() || !text.contains("--snaplen") {
        return fail(format!(
            "man nsring-count: {} {}",
            man.status,
            String::from_utf8_lossy(&man.stderr)
        ));
    }
    // bash-completion's loader finds the installed script
    sh.output(
        "bash",
        &["--norc", "-c", "source /usr/share/bash-completion/bash_completion && __load_completion nsring && complete -p nsring"],
    )?;
    // Wireshark's extcap folder has the link, and it leads to the binary
    let folders = out(&sh, "tshark", &["-G", "folders"])?;
    let dir = extcap_link.parent().unwrap_or(Path::new("/"));
    if !folders.lines().any(|l| {
        l.starts_with("Extcap path:") && l.trim_end().ends_with(dir.to_str().unwrap_or(""))
    }) {
        return fail(format!(
            "tshark's extcap folder is not {}:\n{folders}",
            dir.display()
        ));
    }
    let resolved =
        fs::canonicalize(extcap_link).map_err(|e| format!("{}: {e}", extcap_link.display()))?;
    if resolved != Path::new("/usr/bin/nsring") {
        return fail(format!(
            "{} leads to {}",
            extcap_link.display(),
            resolved.display()
        ));
    }
    // nsring lists the interfaces of namespaces other than its own: make one to be listed
    let ns = LabNs::new()?;
    let interfaces = out(&sh, "tshark", &["-D"])?;
    // Once nsring speaks the extcap protocol, tshark lists its interfaces.
    let speaks = Command::new("/usr/bin/nsring")
        .arg("--extcap-interfaces")
        .output()
        .is_ok_and(|o| o.status.success());
    let want = format!("{}/lo (nsring: {}/lo)", ns.0, ns.0);
    if speaks && !interfaces.contains(&want) {
        return fail(format!(
            "tshark -D does not list nsring's interface {}/lo:\n{interfaces}",
            ns.0
        ));
    }
    drop(ns);
    eprintln!(
        "xtask: installed package: --version, man, completion, extcap link ok; tshark -D {}",
        if speaks {
            "lists nsring's interfaces"
        } else {
            "runs (nsring is no extcap provider yet)"
        }
    );
    Ok(())
}

/// A namespace of the lab's naming (`nsrt-<pid>-pkg`, only `lo` in it) for `tshark -D` to
/// list through nsring; deleted on drop.
struct LabNs(String);

impl LabNs {
    fn new() -> Result<LabNs, String> {
        let name = format!("nsrt-{}-pkg", std::process::id());
        Sh::new().output("ip", &["netns", "add", &name])?;
        Ok(LabNs(name))
    }
}

impl Drop for LabNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
