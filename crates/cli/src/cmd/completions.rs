//! `nsring completions SHELL`: the shell's completion script, from the same clap definitions
//! the commands parse with (clap_complete's dynamic engine, see `crate::complete`).

use std::io::Write;
use std::process::ExitCode;

use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use crate::complete::ENV_VAR;
use crate::out::Out;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  nsring completions bash > /usr/share/bash-completion/completions/nsring
  nsring completions zsh > /usr/share/zsh/vendor-completions/_nsring
  nsring completions fish > /usr/share/fish/vendor_completions.d/nsring.fish
  source <(nsring completions bash)          for the current shell only

The script asks nsring itself what to offer on each Tab (it runs `NSRING_COMPLETE=SHELL
nsring -- WORDS`), so subcommands and flags are always those of the installed nsring, and
live values are offered too: namespace names after --netns, NS/IFACE pairs after -i.
`cargo xtask install` and the Debian package put the scripts in place.")]
pub struct Args {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells nsring writes completion scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Writes `shell`'s script, which calls `nsring` (found on PATH) on every Tab.
pub fn script(shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
    };
    completer.write_registration(ENV_VAR, "nsring", "nsring", "nsring", out)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut out = Out::new();
    script(args.shell, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
