//! Shell completion of live values: namespace names and running containers (`podman:NAME`,
//! `docker:NAME`) for `--netns`, `NS/IFACE` pairs for `-i`.
//!
//! The shell scripts (`nsring completions bash|zsh|fish`) are clap_complete's dynamic ones:
//! on Tab they run `NSRING_COMPLETE=<shell> nsring -- <words>`, and clap_complete answers from
//! the same clap definitions the commands parse with, calling the completers here for the
//! values that only the running system knows. Nothing here fails loudly: what cannot be
//! listed (a namespace this user may not enter) is left out.

use std::ffi::OsStr;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use nsring_netns::{NETNS_RUN_DIR, NetNs, NsSpec, Runtime};

/// The environment variable that turns a run of nsring into a completion request.
pub const ENV_VAR: &str = "NSRING_COMPLETE";

/// The completer of every `--netns` argument.
pub fn netns() -> ArgValueCompleter {
    ArgValueCompleter::new(complete_netns)
}

/// The completer of every `-i/--interface` argument.
pub fn interface() -> ArgValueCompleter {
    ArgValueCompleter::new(complete_interface)
}

fn complete_netns(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let mut out: Vec<String> = named_namespaces().into_iter().map(|n| escape(&n)).collect();
    out.extend(containers(&current).into_iter().map(|(target, _)| target));
    out.into_iter()
        .filter(|n| n.starts_with(current.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// The running containers as targets (`podman:NAME`, `docker:NAME`, `containerd:ID`) with
/// their main process, from the runtimes `word` could be naming: Podman and Docker when it
/// is empty or starts like their prefix, containerd only once it starts with `c` (its
/// containers are mostly Docker's or Kubernetes', and `ctr` is slow to ask). A runtime that
/// is absent or does not answer offers nothing.
fn containers(word: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for runtime in Runtime::ALL {
        let prefix = format!("{runtime}:");
        let wanted = if runtime == Runtime::Containerd {
            !word.is_empty() && (prefix.starts_with(word) || word.starts_with(&prefix))
        } else {
            prefix.starts_with(word) || word.starts_with(&prefix)
        };
        if !wanted {
            continue;
        }
        for c in nsring_containers::running_in(runtime).unwrap_or_default() {
            let Some(pid) = c.pid else { continue };
            let id = c.name.clone().unwrap_or_else(|| c.id.clone());
            out.push((format!("{prefix}{id}"), pid));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `-i` takes a list (`a,b`): the item after the last unescaped comma is completed, the
/// ones before it are kept. Without a `/`: the current namespace's interfaces, and
/// `NS/IFACE` for every named namespace that matches; after `NS/`: that namespace's
/// interfaces.
fn complete_interface(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let (done, item) = match last_unescaped(&current, ',') {
        Some(i) => current.split_at(i + 1),
        None => ("", current.as_ref()),
    };
    let mut out: Vec<String> = Vec::new();
    match last_unescaped(item, '/') {
        Some(slash) => {
            let ns = &item[..slash];
            // the target grammar reads the escapes
            if let Ok(spec) = ns.parse::<NsSpec>() {
                for ifname in interfaces(&spec).unwrap_or_default() {
                    out.push(format!("{ns}/{}", escape(&ifname)));
                }
            }
        }
        None => {
            out.extend(interfaces(&NsSpec::Current).unwrap_or_default());
            for name in named_namespaces() {
                let ns = escape(&name);
                if !ns.starts_with(item) && !item.starts_with(&ns) {
                    continue;
                }
                match interfaces(&NsSpec::Name(name)) {
                    Some(ifs) => out.extend(ifs.iter().map(|i| format!("{ns}/{}", escape(i)))),
                    // not allowed to look inside: offer the namespace, the user types the rest
                    None => out.push(format!("{ns}/")),
                }
            }
            for (target, pid) in containers(item) {
                if !target.starts_with(item) && !item.starts_with(&target) {
                    continue;
                }
                // the main process is in the container's namespace: no second runtime query
                match interfaces(&NsSpec::Pid(pid)) {
                    Some(ifs) => out.extend(ifs.iter().map(|i| format!("{target}/{}", escape(i)))),
                    None => out.push(format!("{target}/")),
                }
            }
        }
    }
    out.sort();
    out.into_iter()
        .filter(|c| c.starts_with(item))
        .map(|c| CompletionCandidate::new(format!("{done}{c}")))
        .collect()
}

/// The names in /run/netns, sorted.
fn named_namespaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The interface names of a namespace, `None` if it cannot be looked into.
fn interfaces(spec: &NsSpec) -> Option<Vec<String>> {
    let ns = NetNs::open(spec).ok()?;
    let links = nsring_netns::link::list(&ns).ok()?;
    Some(links.into_iter().map(|l| l.name).collect())
}

/// The characters the target grammar gives a meaning (docs/DESIGN.md): a literal one in a
/// name is written with a backslash before it.
const SPECIAL: &[char] = &['\\', '*', '?', '[', ',', ':', '/'];

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The byte index of the last `sep` that no backslash escapes.
fn last_unescaped(s: &str, sep: char) -> Option<usize> {
    let mut found = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => found = Some(i),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_and_separators_are_found_unescaped() {
        for s in ["ns0", "a:b", "we,ird\\name", "x*?[y"] {
            match escape(s).parse::<NsSpec>() {
                Ok(NsSpec::Plain(n) | NsSpec::Name(n)) => assert_eq!(n, s),
                other => panic!("{s}: {other:?}"),
            }
        }
        assert_eq!(escape("a:b/c"), "a\\:b\\/c");
        assert_eq!(last_unescaped("a\\,b,c", ','), Some(4));
        assert_eq!(last_unescaped("a\\,b", ','), None);
        assert_eq!(last_unescaped("ns\\/x/eth", '/'), Some(5));
    }
}
