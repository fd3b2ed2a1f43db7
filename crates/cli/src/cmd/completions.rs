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
    if shell != Shell::Bash {
        return completer.write_registration(ENV_VAR, "nsring", "nsring", "nsring", out);
    }
    let mut buf = Vec::new();
    completer.write_registration(ENV_VAR, "nsring", "nsring", "nsring", &mut buf)?;
    let text = String::from_utf8(buf).map_err(std::io::Error::other)?;
    out.write_all(bash_colons(&text).as_bytes())
}

/// bash splits the word being completed at ':' (it is in `COMP_WORDBREAKS`), so
/// `podman:we` reaches the completer as `podman`, `:`, `we`. Where bash-completion is loaded
/// (its `_get_comp_words_by_ref` joins them again, `__ltrim_colon_completions` trims what
/// bash will not replace), the script asks nsring about the whole word. The two places are
/// found in clap_complete's script (its version is pinned); if it changes, the test
/// `bash_script_joins_colon_words` says so.
fn bash_colons(script: &str) -> String {
    const WORDS: &str = "        words[COMP_CWORD]=\"$2\"\n    fi\n";
    const JOIN: &str = concat!(
        "    local _nsring_cur=\n",
        "    if [[ $COMP_WORDBREAKS == *:* ]] && declare -F _get_comp_words_by_ref >/dev/null; then\n",
        "        local cur cword\n",
        "        IFS=$' \\t\\n' _get_comp_words_by_ref -n : cur words cword\n",
        "        _nsring_cur=$cur\n",
        "        _CLAP_COMPLETE_INDEX=$cword\n",
        "    fi\n",
    );
    // the end of the function: after clap's own handling of the answer
    const END: &str = "    fi\n}\n";
    const TRIM: &str = concat!(
        "    if [[ -n $_nsring_cur && -n ${COMPREPLY+x} ]] && declare -F __ltrim_colon_completions >/dev/null; then\n",
        "        __ltrim_colon_completions \"$_nsring_cur\"\n",
        "    fi\n",
    );
    let Some(w) = script.find(WORDS).map(|w| w + WORDS.len()) else {
        return script.to_owned();
    };
    let Some(e) = script[w..].find(END).map(|e| w + e + "    fi\n".len()) else {
        return script.to_owned();
    };
    let mut s = String::with_capacity(script.len() + JOIN.len() + TRIM.len());
    s.push_str(&script[..w]);
    s.push_str(JOIN);
    s.push_str(&script[w..e]);
    s.push_str(TRIM);
    s.push_str(&script[e..]);
    s
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut out = Out::new();
    script(args.shell, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_script_joins_colon_words() {
        let mut out = Vec::new();
        script(Shell::Bash, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("_get_comp_words_by_ref -n : cur words cword"),
            "{s}"
        );
        assert!(
            s.contains("__ltrim_colon_completions \"$_nsring_cur\""),
            "{s}"
        );
        // the join comes after clap's own `words` and before nsring is asked
        let join = s.find("_get_comp_words_by_ref").unwrap();
        assert!(s.find("local words=").unwrap() < join);
        assert!(join < s.find("NSRING_COMPLETE=").unwrap());
        let trim = s.find("__ltrim_colon_completions").unwrap();
        assert!(s.find("compopt -o nospace\n").unwrap() < trim);
        assert!(trim < s.find("complete -o nospace").unwrap());
    }
}
