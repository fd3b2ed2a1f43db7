//! The lexer and parser of the target grammar (see the module above for the grammar).
//!
//! Input is lexed once into characters marked escaped or not; every decision (separators,
//! prefixes, glob characters) looks only at unescaped characters, and the parts are
//! unescaped when they become names.

use std::path::PathBuf;

use super::glob::{Glob, is_meta};
use super::{IfPart, NsPart, NsSpec, ParseError, Runtime, Target};
use crate::{Error, Result};

/// A character and whether a backslash escaped it.
pub(super) type Lexed = Vec<(char, bool)>;

fn bad(msg: String) -> Error {
    Error::Spec(ParseError(msg))
}

/// Splits `input` into characters, taking each backslash as "the next one is literal".
pub(super) fn lex(input: &str) -> Result<Lexed> {
    let mut out = Vec::with_capacity(input.len());
    let mut it = input.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(n) => out.push((n, true)),
                None => {
                    return Err(bad(format!(
                        "'{input}' ends with a lone '\\' (write '\\\\' for a backslash)"
                    )));
                }
            }
        } else {
            out.push((c, false));
        }
    }
    Ok(out)
}

fn text(chars: &[(char, bool)]) -> String {
    chars.iter().map(|(c, _)| *c).collect()
}

fn has_meta(chars: &[(char, bool)]) -> bool {
    chars.iter().any(|&(c, esc)| !esc && is_meta(c))
}

fn starts_with(chars: &[(char, bool)], prefix: &str) -> bool {
    chars.len() >= prefix.chars().count()
        && prefix
            .chars()
            .zip(chars)
            .all(|(p, &(c, esc))| !esc && p == c)
}

fn position(chars: &[(char, bool)], sep: char) -> Option<usize> {
    chars.iter().position(|&(c, esc)| !esc && c == sep)
}

/// Splits at every unescaped `sep`.
pub(super) fn split(chars: &[(char, bool)], sep: char) -> Vec<&[(char, bool)]> {
    chars.split(|&(c, esc)| !esc && c == sep).collect()
}

/// A container name or ID as Docker, Podman and containerd allow them: letters, digits and
/// `_.-`, starting with a letter or digit.
pub(super) fn validate_container(input: &str, id: &str) -> Result<()> {
    let ok = id.len() <= 255
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "'{input}': '{id}' is not a container name or ID (letters, digits, '_', '.' and '-', \
             starting with a letter or digit)"
        )))
    }
}

fn glob(input: &str, chars: &[(char, bool)]) -> Result<Glob> {
    Glob::from_lexed(chars).map_err(|e| bad(format!("'{input}': {e}")))
}

/// NSPART (the whole of `input` is its spelling, for messages).
pub(super) fn ns_part(input: &str, chars: &[(char, bool)]) -> Result<NsPart> {
    if chars.is_empty() {
        return Err(bad(format!(
            "'{input}': the namespace is empty; write a name, pid:PID, a path or RUNTIME:CONTAINER"
        )));
    }
    if starts_with(chars, "pid:") {
        let rest = &chars[4..];
        return rest
            .iter()
            .all(|(c, esc)| !esc && c.is_ascii_digit())
            .then(|| text(rest).parse::<u32>().ok())
            .flatten()
            .filter(|p| *p > 0)
            .map(|p| NsPart::Spec(NsSpec::Pid(p)))
            .ok_or_else(|| {
                bad(format!(
                    "'{input}' is not pid:PID with a positive PID (e.g. pid:1234)"
                ))
            });
    }
    if starts_with(chars, "name:") {
        let name = text(&chars[5..]);
        crate::validate_name(&name)?;
        return Ok(NsPart::Spec(NsSpec::Name(name)));
    }
    // A '/' makes a path (names cannot hold one); "./x" for a relative one.
    if position(chars, '/').is_some() {
        return Ok(NsPart::Spec(NsSpec::Path(PathBuf::from(text(chars)))));
    }
    if let Some(colon) = position(chars, ':')
        && let Some(runtime) = Runtime::from_prefix(&text(&chars[..colon]))
    {
        let rest = &chars[colon + 1..];
        if rest.is_empty() {
            return Err(bad(format!(
                "'{input}': '{runtime}:' needs a container name or ID after it, e.g. {runtime}:web1"
            )));
        }
        if has_meta(rest) {
            return Ok(NsPart::Glob {
                runtime: Some(runtime),
                glob: glob(input, rest)?,
            });
        }
        let name = text(rest);
        validate_container(input, &name)?;
        return Ok(NsPart::Spec(NsSpec::Container { runtime, name }));
    }
    if has_meta(chars) {
        return Ok(NsPart::Glob {
            runtime: None,
            glob: glob(input, chars)?,
        });
    }
    let name = text(chars);
    crate::validate_name(&name)?;
    Ok(NsPart::Spec(NsSpec::Plain(name)))
}

/// IFPART.
fn if_part(input: &str, chars: &[(char, bool)]) -> Result<IfPart> {
    if chars.is_empty() {
        return Err(bad(format!(
            "'{input}': the interface after '/' is empty; write NS/IFACE, e.g. ns0/eth1"
        )));
    }
    if chars == [('a', false), ('n', false), ('y', false)] {
        return Ok(IfPart::Any);
    }
    if has_meta(chars) {
        return Ok(IfPart::Glob(glob(input, chars)?));
    }
    let name = text(chars);
    crate::link::validate_ifname(&name)?;
    Ok(IfPart::Name(name))
}

/// TARGET: `[NSPART "/"] IFPART`, split at the last unescaped '/'.
pub(super) fn target(input: &str, chars: &[(char, bool)]) -> Result<Target> {
    let slash = chars.iter().rposition(|&(c, esc)| !esc && c == '/');
    match slash {
        None => Ok(Target {
            ns: None,
            iface: if_part(input, chars)?,
        }),
        Some(0) => Err(bad(format!(
            "'{input}': the namespace before '/' is empty; write NS/IFACE, e.g. ns0/eth1"
        ))),
        Some(i) => Ok(Target {
            ns: Some(ns_part(input, &chars[..i])?),
            iface: if_part(input, &chars[i + 1..])?,
        }),
    }
}

/// LIST: targets separated by unescaped commas.
pub(super) fn list(input: &str) -> Result<Vec<Target>> {
    let chars = lex(input)?;
    split(&chars, ',')
        .into_iter()
        .map(|part| {
            if part.is_empty() {
                return Err(bad(format!(
                    "'{input}': an empty target between commas (write '\\,' for a literal comma)"
                )));
            }
            target(input, part)
        })
        .collect()
}
