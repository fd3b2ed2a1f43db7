//! `nsring man`: manual pages generated from the same clap definitions as `--help`
//! (clap_mangen): nsring(1), and nsring-COMMAND(1) for every command and subcommand.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::out::Out;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  nsring man count | man -l -                 read nsring-count(1) without installing it
  nsring man --dir /usr/local/share/man/man1  write every page

Pages are generated from the same definitions as --help, so they always describe the
commands of this nsring. `cargo xtask install` and the Debian package install them.")]
pub struct Args {
    /// Write nsring.1 and nsring-COMMAND.1 for every command into DIR (created if missing)
    /// and print their paths, instead of printing one page.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
    /// The command whose page to print, e.g. `count` or `netns add` [default: nsring(1)].
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Vec<String>,
}

/// One manual page: its name (`nsring-netns-add`) and roff text.
#[derive(Debug)]
pub struct Page {
    pub name: String,
    pub roff: Vec<u8>,
}

/// Every page of `cmd` (the whole nsring command tree): the command first, then its
/// subcommands depth first. Hidden commands have none.
pub fn pages(cmd: clap::Command) -> std::io::Result<Vec<Page>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, None, &mut out)?;
    Ok(out)
}

fn collect(cmd: &clap::Command, parent: Option<&str>, out: &mut Vec<Page>) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    let man = clap_mangen::Man::new(cmd.clone())
        .manual("nsring manual")
        .source(format!("nsring {}", env!("CARGO_PKG_VERSION")));
    let mut text = Vec::new();
    man.render(&mut text)?;
    let mut roff = ascii_roff(&String::from_utf8_lossy(&text)).into_bytes();
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let mut see_also: Vec<String> = parent.map(str::to_owned).into_iter().collect();
    see_also.extend(
        subs.iter()
            .map(|s| s.get_display_name().unwrap_or(s.get_name()).to_owned()),
    );
    if !see_also.is_empty() {
        writeln!(roff, ".SH \"SEE ALSO\"")?;
        let refs: Vec<String> = see_also.iter().map(|n| format!("\\fB{n}\\fR(1)")).collect();
        writeln!(roff, "{}", refs.join(",\n"))?;
    }
    out.push(Page {
        name: name.clone(),
        roff,
    });
    for sub in subs {
        collect(sub, Some(&name), out)?;
    }
    Ok(())
}

/// Roff input is ASCII: every other character (the help texts' dashes, arrows, ellipses)
/// becomes groff's `\[uXXXX]`, so the page renders the same with or without a preprocessor.
fn ascii_roff(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out
}

/// Writes every page into `dir` as NAME.1; returns their paths.
pub fn write_all(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut paths = Vec::new();
    for page in pages(cmd)? {
        let path = dir.join(format!("{}.1", page.name));
        std::fs::write(&path, &page.roff)
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

pub fn run(args: Args, cmd: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = Out::new();
    if let Some(dir) = &args.dir {
        for path in write_all(cmd, dir)? {
            writeln!(out, "{}", path.display())?;
        }
    } else {
        let want = std::iter::once("nsring")
            .chain(args.command.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("-");
        let all = pages(cmd)?;
        let Some(page) = all.iter().find(|p| p.name == want) else {
            let names: Vec<&str> = all.iter().map(|p| &p.name["nsring".len()..]).collect();
            return Err(crate::usage(format!(
                "no manual page for '{}': the commands are {}",
                args.command.join(" "),
                names
                    .iter()
                    .filter_map(|n| n.strip_prefix('-'))
                    .map(|n| n.replace('-', " "))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        out.write_all(&page.roff)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
