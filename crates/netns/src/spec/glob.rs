//! Shell-style glob patterns for namespace, container and interface names: `*` (any run of
//! characters), `?` (one character), `[abc]`, `[a-z]`, `[!a-z]` (`[^a-z]` too), and
//! backslash escapes (`\*` is a literal star).
//!
//! Names are single path components, so unlike file-name globs `*` crosses everything and a
//! leading `.` is not special. The matcher works on `char`s and backtracks only to the last
//! `*` (linear in practice, at worst O(pattern × name)), so hostile patterns cannot make it
//! run away.
//!
//! Why not a crate: `glob::Pattern` escapes with `[*]`, not backslashes, and `globset` compiles
//! to regexes (a large dependency for names of at most 255 bytes); the grammar hands this
//! module pre-lexed characters, each marked escaped or not, so the pattern never has to be
//! re-escaped for another syntax.

use std::fmt;

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tok {
    /// A character that matches itself.
    Lit(char),
    /// `?`: any one character.
    One,
    /// `*`: any run of characters, the empty one too.
    Star,
    /// `[...]`: one character in (or, negated, not in) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    toks: Vec<Tok>,
}

/// Why a pattern is not a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    /// A `[` without its `]`.
    UnclosedClass,
    /// `[]` or `[!]`: a class that matches nothing or everything by accident.
    EmptyClass,
    /// A range whose end is below its start (`[z-a]`).
    ReversedRange(char, char),
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::UnclosedClass => {
                f.write_str("'[' has no closing ']' (write \\[ for a literal '[')")
            }
            GlobError::EmptyClass => {
                f.write_str("'[]' is empty (write \\[\\] for literal brackets)")
            }
            GlobError::ReversedRange(a, b) => write!(f, "range '{a}-{b}' is reversed"),
        }
    }
}

/// True for a character that makes a pattern a glob when it is not escaped.
pub fn is_meta(c: char) -> bool {
    matches!(c, '*' | '?' | '[')
}

impl Glob {
    /// Compiles a pattern from characters, each marked `true` when it was escaped (and so
    /// stands for itself).
    pub fn from_lexed(chars: &[(char, bool)]) -> Result<Glob, GlobError> {
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let (c, esc) = chars[i];
            i += 1;
            toks.push(match (c, esc) {
                ('*', false) => {
                    if toks.last() == Some(&Tok::Star) {
                        continue; // `**` is `*`
                    }
                    Tok::Star
                }
                ('?', false) => Tok::One,
                ('[', false) => {
                    let (tok, next) = class(chars, i)?;
                    i = next;
                    tok
                }
                (c, _) => Tok::Lit(c),
            });
        }
        Ok(Glob { toks })
    }

    /// Compiles a pattern written with backslash escapes (`nsrt-*`, `web\*1`). A trailing
    /// lone backslash stands for itself.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let mut lexed = Vec::new();
        let mut it = pattern.chars();
        while let Some(c) = it.next() {
            match c {
                '\\' => lexed.push(it.next().map_or(('\\', true), |n| (n, true))),
                c => lexed.push((c, false)),
            }
        }
        Glob::from_lexed(&lexed)
    }

    /// A pattern that matches exactly `name`.
    pub fn literal(name: &str) -> Glob {
        Glob {
            toks: name.chars().map(Tok::Lit).collect(),
        }
    }

    /// True if the pattern has no wildcard: it matches one name only.
    pub fn is_literal(&self) -> bool {
        self.toks.iter().all(|t| matches!(t, Tok::Lit(_)))
    }

    /// The name a literal pattern matches.
    pub fn as_literal(&self) -> Option<String> {
        self.toks
            .iter()
            .map(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// True if `name` matches the whole pattern.
    pub fn is_match(&self, name: &str) -> bool {
        let s: Vec<char> = name.chars().collect();
        let p = &self.toks;
        let (mut pi, mut si) = (0, 0);
        // Where to resume after the last `*`: (pattern index after it, name index it took).
        let mut resume: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some(Tok::Star) => {
                    pi += 1;
                    resume = Some((pi, si));
                    continue;
                }
                Some(t) if one_matches(t, s[si]) => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
            // Mismatch: let the last star take one more character, or fail.
            match resume {
                Some((rp, rs)) => {
                    pi = rp;
                    si = rs + 1;
                    resume = Some((rp, rs + 1));
                }
                None => return false,
            }
        }
        p[pi..].iter().all(|t| *t == Tok::Star)
    }
}

fn one_matches(t: &Tok, c: char) -> bool {
    match t {
        Tok::Lit(l) => *l == c,
        Tok::One => true,
        Tok::Star => false,
        Tok::Class { negated, ranges } => {
            ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated
        }
    }
}

/// Parses a class whose `[` was just before `start`; returns it and the index after its `]`.
fn class(chars: &[(char, bool)], start: usize) -> Result<(Tok, usize), GlobError> {
    let mut i = start;
    let negated = matches!(chars.get(i), Some(('!' | '^', false)));
    if negated {
        i += 1;
    }
    let first = i;
    let mut ranges = Vec::new();
    loop {
        let Some(&(c, esc)) = chars.get(i) else {
            return Err(GlobError::UnclosedClass);
        };
        // An unescaped `]` closes the class, except as its first member (`[]a]`).
        if c == ']' && !esc && i > first {
            i += 1;
            break;
        }
        i += 1;
        let is_range = matches!(chars.get(i), Some(('-', false)))
            && chars.get(i + 1).is_some_and(|&(n, e)| n != ']' || e);
        if is_range {
            let end = chars[i + 1].0;
            if end < c {
                return Err(GlobError::ReversedRange(c, end));
            }
            ranges.push((c, end));
            i += 2;
        } else {
            ranges.push((c, c));
        }
    }
    if ranges.is_empty() {
        return Err(GlobError::EmptyClass);
    }
    Ok((Tok::Class { negated, ranges }, i))
}

/// Writes `c` so that it reads back as a literal: glob characters and the grammar's
/// separators get a backslash.
pub(crate) fn escape_into(out: &mut String, c: char) {
    if matches!(c, '\\' | '*' | '?' | '[' | ']' | ',' | '/' | ':') {
        out.push('\\');
    }
    out.push(c);
}

impl fmt::Display for Glob {
    /// The pattern with backslash escapes: it compiles back to the same pattern.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for t in &self.toks {
            match t {
                Tok::Lit(c) => escape_into(&mut out, *c),
                Tok::One => out.push('?'),
                Tok::Star => out.push('*'),
                Tok::Class { negated, ranges } => {
                    out.push('[');
                    if *negated {
                        out.push('!');
                    }
                    // Inside a class every punctuation character is escaped: `!`/`^` first,
                    // `-` and `]` mean something there.
                    let member = |out: &mut String, c: char| {
                        if !c.is_alphanumeric() {
                            out.push('\\');
                        }
                        out.push(c);
                    };
                    for (a, b) in ranges {
                        member(&mut out, *a);
                        if a != b {
                            out.push('-');
                            member(&mut out, *b);
                        }
                    }
                    out.push(']');
                }
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().is_match(s)
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("nsrt-*", "nsrt-1-a"));
        assert!(!m("nsrt-*", "nsrt"));
        assert!(m("*-a", "nsrt-1-a"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("veth?", "veth0"));
        assert!(!m("veth?", "veth10"));
        assert!(m("**x", "abx"));
        assert!(m("*a*a*a*a*b", &format!("{}b", "a".repeat(40))));
        assert!(!m("*a*a*a*a*b", &"a".repeat(2000)));
        assert!(m("ä*ö", "äbcö"));
    }

    #[test]
    fn classes() {
        assert!(m("eth[0-9]", "eth7"));
        assert!(!m("eth[0-9]", "etha"));
        assert!(m("eth[!0-9]", "etha"));
        assert!(m("eth[^0-9]", "etha"));
        assert!(!m("eth[!0-9]", "eth1"));
        assert!(m("[]a]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[abc]x", "bx"));
        assert_eq!(Glob::new("[a"), Err(GlobError::UnclosedClass));
        assert_eq!(Glob::new("[!"), Err(GlobError::UnclosedClass));
        assert_eq!(Glob::new("[z-a]"), Err(GlobError::ReversedRange('z', 'a')));
    }

    #[test]
    fn escapes() {
        assert!(m("web\\*", "web*"));
        assert!(!m("web\\*", "web1"));
        assert!(m("a\\?", "a?"));
        assert!(m("\\[x]", "[x]"));
        assert!(m("[\\]]", "]"));
        assert!(m("trail\\", "trail\\"));
        assert!(Glob::new("web\\*").unwrap().is_literal());
        assert_eq!(
            Glob::new("we\\*b").unwrap().as_literal().as_deref(),
            Some("we*b")
        );
        assert_eq!(Glob::new("we*").unwrap().as_literal(), None);
    }

    #[test]
    fn display_compiles_back() {
        for p in [
            "nsrt-*",
            "a\\*b",
            "[!a-z]?",
            "[a\\-z]",
            "[\\!x]",
            "[\\^]",
            "x\\,y\\/z\\:w",
            "[\\]-\\^]",
            "[a-]",
        ] {
            let g = Glob::new(p).unwrap();
            assert_eq!(Glob::new(&g.to_string()).unwrap(), g, "{p} -> {g}");
        }
        assert_eq!(Glob::literal("a*b").to_string(), "a\\*b");
    }
}
