//! `cargo xtask deb`: a Debian package built with `dpkg-deb --build` from a staged tree of
//! the same items `cargo xtask install` puts in place (prefix /usr, man pages gzipped, the
//! binary stripped, the extcap link relative), its `Depends` computed by `dpkg-shlibdeps`
//! from the binary's libraries (libc6, libpcap0.8, ...).
//!
//! cargo-deb would do the same, but it is one more tool to build on every fresh machine
//! (CI starts with Rust only), and the staged tree is the install step's list anyway.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::install::{self, Extcap, Item};
use crate::sh::{Sh, fail};

/// Debian packages `cargo xtask deb` needs (dpkg-shlibdeps, dpkg-architecture; strip).
pub const DEB_PKGS: &[&str] = &["dpkg-dev", "binutils"];

pub const PACKAGE: &str = "nsring";

const DESCRIPTION: &str = "\
packet capture that is at home in network namespaces
 nsring counts, captures (pcapng) and sends packets on the interfaces of any network
 namespace from anywhere, with memory-mapped TPACKET_V3 rings and PF_RING-style
 statistics; manages namespaces like `ip netns`; shows every packet socket of a
 namespace; and is a Wireshark extcap provider for the interfaces of every namespace.";

/// The extcap folder of Debian's Wireshark packages.
pub fn package_extcap_dir() -> Result<PathBuf, String> {
    Ok(Path::new("/usr/lib")
        .join(install::multiarch()?)
        .join("wireshark/extcap"))
}

/// Builds `target/debian/nsring_VERSION_ARCH.deb` from `bin`; returns its path.
pub fn build(bin: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let version = env!("CARGO_PKG_VERSION");
    let arch = out(&Sh::new(), "dpkg", &["--print-architecture"])?;
    let stage = out_dir.join("stage");
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(stage.join("DEBIAN")).map_err(|e| format!("{}: {e}", stage.display()))?;
    let mut items = install::items(
        bin,
        Path::new("/usr"),
        &Extcap::At(package_extcap_dir()?),
        true,
    )?;
    items.push(Item::File {
        path: PathBuf::from("/usr/share/doc/nsring/copyright"),
        mode: 0o644,
        bytes: copyright().into_bytes(),
    });
    install::place(&items, Some(&stage))?;

    let depends = shlibs_depends(&stage, out_dir)?;
    let size_kib = tree_bytes(&stage.join("usr"))?.div_ceil(1024);
    let control = format!(
        "Package: {PACKAGE}\nVersion: {version}\nArchitecture: {arch}\n\
         Maintainer: nsring developers <nsring@example.invalid>\nInstalled-Size: {size_kib}\n\
         Depends: {depends}\nSuggests: tshark | wireshark, bash-completion\nSection: net\n\
         Priority: optional\nDescription: {DESCRIPTION}\n"
    );
    write(&stage.join("DEBIAN/control"), control.as_bytes(), 0o644)?;
    let mut sums = String::new();
    for item in items.iter().filter(|i| matches!(i, Item::File { .. })) {
        let rel = item.path().strip_prefix("/").unwrap_or(item.path());
        let path = stage.join(rel);
        let md5 = out(&Sh::new(), "md5sum", &[path.to_str().unwrap_or("")])?;
        let hash = md5.split_whitespace().next().unwrap_or("");
        sums.push_str(&format!("{hash}  {}\n", rel.display()));
    }
    write(&stage.join("DEBIAN/md5sums"), sums.as_bytes(), 0o644)?;

    let deb = out_dir.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    Sh::new().output(
        "dpkg-deb",
        &[
            "--root-owner-group",
            "-Zxz",
            "--build",
            stage.to_str().unwrap_or(""),
            deb.to_str().unwrap_or(""),
        ],
    )?;
    let _ = fs::remove_dir_all(&stage);
    Ok(deb)
}

/// `Depends` from the libraries the staged binary links: dpkg-shlibdeps wants a
/// `debian/control` in its working directory, so it gets a minimal one in a scratch dir.
fn shlibs_depends(stage: &Path, out_dir: &Path) -> Result<String, String> {
    let work = out_dir.join("shlibdeps");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(work.join("debian")).map_err(|e| format!("{}: {e}", work.display()))?;
    write(
        &work.join("debian/control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n").as_bytes(),
        0o644,
    )?;
    let bin = stage.join("usr/bin/nsring");
    let text = out(
        &Sh::new().dir(&work),
        "dpkg-shlibdeps",
        &["-O", "-e", bin.to_str().unwrap_or("")],
    )?;
    let _ = fs::remove_dir_all(&work);
    let depends = text
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .ok_or_else(|| format!("dpkg-shlibdeps said no shlibs:Depends: {text}"))?
        .to_owned();
    if !depends.contains("libpcap0.8") {
        return fail(format!(
            "the binary does not link libpcap? Depends: {depends}"
        ));
    }
    Ok(depends)
}

fn copyright() -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: nsring\n\nFiles: *\nCopyright: the nsring developers\n\
         License: {}\n",
        env!("CARGO_PKG_LICENSE")
    )
}

fn tree_bytes(dir: &Path) -> Result<u64, String> {
    let mut total = 0;
    for e in fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
    {
        let m = fs::symlink_metadata(e.path()).map_err(|e| e.to_string())?;
        total += if m.is_dir() {
            tree_bytes(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(total)
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A command's stdout, trimmed.
pub fn out(sh: &Sh, prog: &str, args: &[&str]) -> Result<String, String> {
    Ok(String::from_utf8_lossy(&sh.output(prog, args)?.stdout)
        .trim()
        .to_owned())
}

/// `cargo xtask deb [--out DIR]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut out_dir = crate::root().join("target/debian");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out_dir = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            other => {
                return fail(format!(
                    "unknown option '{other}': cargo xtask deb [--out DIR]"
                ));
            }
        }
    }
    crate::install(crate::DEMO_PKGS)?;
    crate::install(DEB_PKGS)?;
    Sh::new().dir(crate::root()).run(
        &crate::cargo(),
        &["build", "--release", "--quiet", "-p", "nsring-cli"],
    )?;
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let deb = build(&crate::root().join("target/release/nsring"), &out_dir)?;
    println!("{}", deb.display());
    Ok(())
}
