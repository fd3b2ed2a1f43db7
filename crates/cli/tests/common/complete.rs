//! What bash offers on a Tab, with the real bash and the bash-completion package: the
//! loader finds nsring's script where it looks for user completions, and the function it
//! registered runs as on a Tab, on the words bash would give it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::NSRING;

/// A directory for the user's completion scripts, removed on drop.
pub struct CompletionDir(PathBuf);

impl CompletionDir {
    /// Writes `nsring completions bash` where bash-completion's loader looks.
    pub fn new(tag: &str) -> CompletionDir {
        let p = std::env::temp_dir().join(format!("nsring-cmpl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("completions")).unwrap();
        let out = Command::new(NSRING)
            .args(["completions", "bash"])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(p.join("completions/nsring"), out.stdout).unwrap();
        CompletionDir(p)
    }

    /// What bash offers for the last of `words` (the word being completed, maybe empty), as
    /// typed on the command line; nsring runs with `env`.
    pub fn complete(&self, words: &[&str], env: &[(String, String)]) -> BTreeSet<String> {
        let line = words.join(" ");
        let bin_dir = Path::new(NSRING).parent().unwrap();
        // bash splits words at the characters of COMP_WORDBREAKS; of those, only ':' can be
        // in an nsring word (`podman:web1`): `a:b` comes as `a`, `:`, `b`.
        let mut comp_words: Vec<String> = Vec::new();
        for w in words {
            let mut parts = w.split(':').peekable();
            let mut any = false;
            while let Some(p) = parts.next() {
                if !p.is_empty() || !any {
                    comp_words.push(p.to_owned());
                }
                any = true;
                if parts.peek().is_some() {
                    comp_words.push(":".into());
                }
            }
        }
        // `a:` ends in the word `:` (the cursor is after it), not in an empty word
        if words.last().is_some_and(|w| w.ends_with(':'))
            && comp_words.last().is_some_and(|w| w.is_empty())
        {
            comp_words.pop();
        }
        let script = r#"
            source /usr/share/bash-completion/bash_completion || exit 3
            __load_completion nsring || { echo "no completion loaded" >&2; exit 4; }
            spec=$(complete -p nsring) || exit 5
            fn=$(sed -E 's/.* -F ([^ ]+) .*/\1/' <<<"$spec")
            COMP_WORDS=("$@")
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            COMP_LINE=$NSRT_LINE
            COMP_POINT=${#COMP_LINE}
            COMP_TYPE=9
            cur=${COMP_WORDS[COMP_CWORD]}
            prev=${COMP_WORDS[COMP_CWORD-1]}
            "$fn" nsring "$cur" "$prev"
            printf '%s\n' "${COMPREPLY[@]}"
        "#;
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", script, "bash"])
            .args(&comp_words)
            .env("NSRT_LINE", &line)
            .env("BASH_COMPLETION_USER_DIR", &self.0)
            .env(
                "PATH",
                format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bash: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for CompletionDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The set of `items`.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
