//! `cargo xtask install | uninstall`: the binary, the manual pages, the shell completions
//! and the Wireshark extcap link, put in place and written down in a manifest, so that
//! `uninstall` removes exactly what `install` made (and the directories it created, when
//! they are empty again). The Debian package (`deb.rs`) is built from the same list.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::sh::{Sh, fail};

pub const INSTALL_USAGE: &str = "\
usage: cargo xtask install [--prefix P] [--destdir D] [--user | --no-extcap]
       cargo xtask uninstall [--prefix P] [--destdir D]

install builds nsring (release) and puts in place:
  P/bin/nsring                                   the binary (mode 0755, no setuid)
  P/bin/pfcount, pfsend, pfdump -> nsring        PF_RING's command names
  P/share/man/man1/nsring*.1                     nsring(1) and a page per command
  P/share/bash-completion/completions/nsring     bash completion
  P/share/zsh/{vendor-completions,site-functions}/_nsring   zsh completion
  P/share/fish/vendor_completions.d/nsring.fish  fish completion
  EXTCAP/nsring -> P/bin/nsring                  Wireshark's extcap folder: the system one
                                                 (tshark -G folders) as root, else (or with
                                                 --user) ~/.local/lib/wireshark/extcap
and records them in P/share/nsring/install-manifest; uninstall removes exactly those.

  --prefix P    installation prefix (default /usr/local)
  --destdir D   stage everything under D (for packaging); uninstall takes the same D
  --user        link the extcap in the per-user folder (read by Wireshark 4.2 and later)
  --no-extcap   no extcap link
";

/// One thing to put in place; `path` is where it is installed (without any destdir).
#[derive(Debug)]
pub enum Item {
    File {
        path: PathBuf,
        mode: u32,
        bytes: Vec<u8>,
    },
    Link {
        path: PathBuf,
        target: PathBuf,
    },
}

impl Item {
    pub fn path(&self) -> &Path {
        match self {
            Item::File { path, .. } | Item::Link { path, .. } => path,
        }
    }
}

/// Where the extcap link goes.
#[derive(Debug, Clone)]
pub enum Extcap {
    At(PathBuf),
    None,
}

/// Wireshark's system extcap folder: what tshark says, else pkg-config's `extcapdir`, else
/// Debian's layout.
pub fn system_extcap_dir() -> Result<PathBuf, String> {
    if let Ok(out) = Sh::new().output("tshark", &["-G", "folders"]) {
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            if let Some(dir) = line.strip_prefix("Extcap path:") {
                return Ok(PathBuf::from(dir.trim()));
            }
        }
    }
    if let Ok(out) = Sh::new().output("pkg-config", &["--variable=extcapdir", "wireshark"]) {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !dir.is_empty() {
            return Ok(PathBuf::from(dir));
        }
    }
    Ok(Path::new("/usr/lib")
        .join(multiarch()?)
        .join("wireshark/extcap"))
}

/// The per-user extcap folder (Wireshark 4.2 and later read it).
pub fn user_extcap_dir() -> Result<PathBuf, String> {
    let home =
        std::env::var_os("HOME").ok_or("HOME is not set: cannot find the per-user folder")?;
    Ok(PathBuf::from(home).join(".local/lib/wireshark/extcap"))
}

/// Debian's multiarch triplet of this machine (`x86_64-linux-gnu`).
pub fn multiarch() -> Result<String, String> {
    let out = Sh::new()
        .output("dpkg-architecture", &["-qDEB_HOST_MULTIARCH"])
        .or_else(|_| Sh::new().output("gcc", &["-print-multiarch"]))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The path from directory `from` to `to` (both absolute), for relative symlinks.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let a: Vec<Component<'_>> = from.components().collect();
    let b: Vec<Component<'_>> = to.components().collect();
    let same = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in same..a.len() {
        out.push("..");
    }
    for c in &b[same..] {
        out.push(c);
    }
    out
}

/// Everything to install for `bin` under `prefix`. For a package, man pages are gzipped
/// (`gzip -9n`, reproducible), the binary is stripped and the extcap link is relative.
pub fn items(
    bin: &Path,
    prefix: &Path,
    extcap: &Extcap,
    package: bool,
) -> Result<Vec<Item>, String> {
    let scratch = crate::root().join("target/xtask-scratch");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let bin_s = bin.to_str().ok_or("binary path is not UTF-8")?;
    let installed_bin = prefix.join("bin/nsring");
    let mut items = Vec::new();

    let bytes = if package {
        let stripped = scratch.join("nsring");
        let out = stripped.to_str().ok_or("scratch path is not UTF-8")?;
        Sh::new().run("strip", &["--strip-unneeded", "-o", out, bin_s])?;
        read(&stripped)?
    } else {
        read(bin)?
    };
    items.push(Item::File {
        path: installed_bin.clone(),
        mode: 0o755,
        bytes,
    });
    // PF_RING's command names: the binary answers to them with PF_RING's flags
    for name in ["pfcount", "pfsend", "pfdump"] {
        items.push(Item::Link {
            path: prefix.join("bin").join(name),
            target: PathBuf::from("nsring"),
        });
    }

    let man_dir = scratch.join("man");
    Sh::new().output(bin_s, &["man", "--dir", man_dir.to_str().unwrap_or(".")])?;
    let mut pages: Vec<PathBuf> = fs::read_dir(&man_dir)
        .map_err(|e| format!("{}: {e}", man_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    pages.sort();
    for page in pages {
        let name = page
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let (name, bytes) = if package {
            let page_s = page.to_str().ok_or("page path is not UTF-8")?;
            let gz = Sh::new().output("gzip", &["-9nc", page_s])?.stdout;
            (format!("{name}.gz"), gz)
        } else {
            (name, read(&page)?)
        };
        items.push(Item::File {
            path: prefix.join("share/man/man1").join(name),
            mode: 0o644,
            bytes,
        });
    }

    // zsh reads vendor-completions under /usr (Debian), site-functions elsewhere
    let zsh_dir = if prefix == Path::new("/usr") {
        "share/zsh/vendor-completions/_nsring"
    } else {
        "share/zsh/site-functions/_nsring"
    };
    for (shell, path) in [
        ("bash", "share/bash-completion/completions/nsring"),
        ("zsh", zsh_dir),
        ("fish", "share/fish/vendor_completions.d/nsring.fish"),
    ] {
        let script = Sh::new().output(bin_s, &["completions", shell])?.stdout;
        items.push(Item::File {
            path: prefix.join(path),
            mode: 0o644,
            bytes: script,
        });
    }

    if let Extcap::At(dir) = extcap {
        let target = if package {
            relative(dir, &installed_bin)
        } else {
            installed_bin.clone()
        };
        items.push(Item::Link {
            path: dir.join("nsring"),
            target,
        });
    }
    let _ = fs::remove_dir_all(&scratch);
    Ok(items)
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// `path` under `destdir` (or `path` itself without one).
pub fn staged(destdir: Option<&Path>, path: &Path) -> PathBuf {
    match destdir {
        Some(d) => d.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// Puts `items` in place under `destdir`; returns the directories it created (outermost
/// first) and the manifest lines of the items (`file PATH`, `link PATH`, as installed).
pub fn place(
    items: &[Item],
    destdir: Option<&Path>,
) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    let mut created_dirs = Vec::new();
    let mut entries = Vec::new();
    for item in items {
        let dest = staged(destdir, item.path());
        let parent = item.path().parent().ok_or("an item has no directory")?;
        create_dirs(destdir, parent, &mut created_dirs)?;
        match item {
            Item::File { mode, bytes, .. } => {
                // a new file renamed over the old one: a running nsring keeps its binary
                let tmp = dest.with_extension("xtask-new");
                let mut f =
                    fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
                f.write_all(bytes)
                    .map_err(|e| format!("{}: {e}", tmp.display()))?;
                f.set_permissions(fs::Permissions::from_mode(*mode))
                    .map_err(|e| format!("{}: {e}", tmp.display()))?;
                fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                entries.push(format!("file {}", item.path().display()));
            }
            Item::Link { target, .. } => {
                if fs::symlink_metadata(&dest).is_ok() {
                    fs::remove_file(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                }
                symlink(target, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                entries.push(format!("link {}", item.path().display()));
            }
        }
    }
    Ok((created_dirs, entries))
}

/// Creates `dir` (an installed path) and its missing parents under `destdir` (0755),
/// recording the ones it created, outermost first.
fn create_dirs(
    destdir: Option<&Path>,
    dir: &Path,
    created: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d {
        if staged(destdir, p).exists() {
            break;
        }
        missing.push(p.to_path_buf());
        d = p.parent();
    }
    for p in missing.into_iter().rev() {
        let s = staged(destdir, &p);
        fs::create_dir(&s).map_err(|e| format!("cannot create {}: {e}", s.display()))?;
        fs::set_permissions(&s, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", s.display()))?;
        created.push(p);
    }
    Ok(())
}

pub fn manifest_path(prefix: &Path) -> PathBuf {
    prefix.join("share/nsring/install-manifest")
}

/// Installs `bin` under `prefix` (staged under `destdir`) and writes the manifest; an
/// earlier installation with a manifest there is removed first.
pub fn install_bin(
    bin: &Path,
    prefix: &Path,
    destdir: Option<&Path>,
    extcap: &Extcap,
) -> Result<Vec<String>, String> {
    if staged(destdir, &manifest_path(prefix)).exists() {
        uninstall_at(prefix, destdir)?;
    }
    let items = items(bin, prefix, extcap, false)?;
    let (mut created, entries) = place(&items, destdir)?;
    let mpath = manifest_path(prefix);
    create_dirs(destdir, mpath.parent().unwrap_or(prefix), &mut created)?;
    // directories in the order they were made (uninstall removes them in reverse)
    let mut lines: Vec<String> = created
        .iter()
        .map(|d| format!("dir {}", d.display()))
        .collect();
    lines.extend(entries);
    lines.push(format!("file {}", mpath.display()));
    let text = lines.join("\n") + "\n";
    let dest = staged(destdir, &mpath);
    fs::write(&dest, text).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(lines)
}

/// Removes what the manifest under `prefix` lists: files and links, then the directories
/// install created if they are empty. Returns the paths removed.
pub fn uninstall_at(prefix: &Path, destdir: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let mpath = staged(destdir, &manifest_path(prefix));
    let text = match fs::read_to_string(&mpath) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(format!(
                "no installation under {} ({} does not exist)",
                prefix.display(),
                mpath.display()
            ));
        }
        Err(e) => return fail(format!("{}: {e}", mpath.display())),
    };
    let mut removed = Vec::new();
    let mut dirs = Vec::new();
    for line in text.lines() {
        let Some((kind, path)) = line.split_once(' ') else {
            continue;
        };
        let dest = staged(destdir, Path::new(path));
        match kind {
            "dir" => dirs.push(dest),
            "file" | "link" => match fs::symlink_metadata(&dest) {
                Ok(m) if (kind == "link") == m.file_type().is_symlink() => {
                    fs::remove_file(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                    removed.push(dest);
                }
                Ok(_) => eprintln!(
                    "xtask: {} changed kind since install; left alone",
                    dest.display()
                ),
                Err(_) => {} // already gone
            },
            _ => return fail(format!("{}: unknown line '{line}'", mpath.display())),
        }
    }
    // innermost first; a directory someone else put files into stays
    for d in dirs.iter().rev() {
        if fs::remove_dir(d).is_ok() {
            removed.push(d.clone());
        }
    }
    Ok(removed)
}

struct Opts {
    prefix: PathBuf,
    destdir: Option<PathBuf>,
    user: bool,
    no_extcap: bool,
}

fn parse(args: &[String], install: bool) -> Result<Opts, String> {
    let mut o = Opts {
        prefix: PathBuf::from("/usr/local"),
        destdir: None,
        user: false,
        no_extcap: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{INSTALL_USAGE}"))
        };
        match a.as_str() {
            "--prefix" => o.prefix = PathBuf::from(val("--prefix")?),
            "--destdir" => o.destdir = Some(PathBuf::from(val("--destdir")?)),
            "--user" if install => o.user = true,
            "--no-extcap" if install => o.no_extcap = true,
            "-h" | "--help" => {
                print!("{INSTALL_USAGE}");
                std::process::exit(0);
            }
            other => return fail(format!("unknown option '{other}'\n{INSTALL_USAGE}")),
        }
    }
    if !o.prefix.is_absolute() {
        return fail(format!(
            "--prefix {}: give an absolute path",
            o.prefix.display()
        ));
    }
    Ok(o)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn install(args: &[String]) -> Result<(), String> {
    let o = parse(args, true)?;
    let extcap = if o.no_extcap {
        Extcap::None
    } else if o.user || !is_root() {
        Extcap::At(user_extcap_dir()?)
    } else {
        Extcap::At(system_extcap_dir()?)
    };
    crate::install(crate::DEMO_PKGS)?;
    Sh::new().dir(crate::root()).run(
        &crate::cargo(),
        &["build", "--release", "--quiet", "-p", "nsring-cli"],
    )?;
    let bin = crate::root().join("target/release/nsring");
    let lines = install_bin(&bin, &o.prefix, o.destdir.as_deref(), &extcap)?;
    for l in lines.iter().filter(|l| !l.starts_with("dir ")) {
        println!(
            "installed {}",
            l.split_once(' ').map_or(l.as_str(), |x| x.1)
        );
    }
    if o.user {
        let tshark = Command::new("tshark").arg("--version").output();
        let old = tshark
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("TShark (Wireshark) 4.0"));
        if old {
            eprintln!(
                "xtask: note: Wireshark 4.0 does not read the per-user extcap folder (4.2 does)"
            );
        }
    }
    Ok(())
}

pub fn uninstall(args: &[String]) -> Result<(), String> {
    let o = parse(args, false)?;
    for p in uninstall_at(&o.prefix, o.destdir.as_deref())? {
        println!("removed {}", p.display());
    }
    Ok(())
}
