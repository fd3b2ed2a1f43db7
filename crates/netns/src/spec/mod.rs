//! The one grammar for naming namespaces and interfaces, used by every nsring command.
//!
//! ```text
//! TARGET  := [NSPART "/"] IFPART          split at the LAST unescaped '/'
//! LIST    := TARGET ("," TARGET)*          (-i a,b is the same as -i a -i b)
//! NSPART  := "pid:" PID                    a process's namespace
//!          | "name:" LITERAL               an iproute2 named namespace, taken literally
//!          | RUNTIME ":" CONTAINER         RUNTIME is podman, docker or containerd
//!          | PATH                          holds a '/' ("./x" for a relative one): an nsfs file
//!          | NAME                          the named namespace if /run/netns/NAME exists,
//!                                          else exactly one running container of that name/ID
//!          | GLOB                          NAME or RUNTIME:CONTAINER with unescaped * ? [..]
//! IFPART  := "any" | IFNAME | GLOB
//! ```
//!
//! A backslash escapes the next character (`\* \? \[ \, \: \/ \\`) in any part. Parsing
//! never touches the system: [`NsSpec`], [`NsPart`] and [`Target`] are plain values, and
//! opening ([`crate::NetNs::open`]) is the second step that looks names up (a named
//! namespace wins over a container of the same name; `x:y` with an unknown prefix `x` is the
//! named namespace `x:y` if it exists, else an error naming the known prefixes).
//!
//! Every value prints (`Display`) in a spelling that parses back to the same value, except
//! that a [`NsSpec::Name`] without special characters prints as the bare name, which parses
//! as [`NsSpec::Plain`] (and opens the same namespace, since a named namespace wins).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub mod fuzzing;
mod glob;
mod parse;

pub use glob::{Glob, GlobError};
pub use nsring_containers::Runtime;

use crate::{Error, NETNS_RUN_DIR, Result};

/// The grammar as `--help` shows it, for every command that takes a namespace or interface.
pub const HELP: &str = "\
Namespaces and interfaces (one grammar for every command):
  An interface is IFACE or NS/IFACE (split at the last '/'); several are separated by ','
  (-i a,b is -i a -i b). IFACE is a name, 'any' (every interface) or a glob (veth*).
  NS is one of:
    NAME              the named namespace /run/netns/NAME (shared with `ip netns`), or, if
                      there is none, the one running container with that name or ID
                      (Podman, Docker or containerd); a named namespace wins
    name:NAME         the named namespace NAME, taken literally (names with ':', '*', ...)
    podman:CONTAINER  a Podman container by name or ID; also docker:CONTAINER and
                      containerd:ID (searched in every containerd namespace)
    pid:PID           the namespace of a process
    PATH              a namespace file: /proc/PID/ns/net, /run/docker/netns/ID, ./x
    GLOB              NAME or RUNTIME:CONTAINER with * ? [...], where many are taken
  A backslash makes the next character literal: \\* \\? \\[ \\, \\: \\/ \\\\.
  DOCKER_HOST, CONTAINER_HOST (Podman's API socket) and CONTAINERD_ADDRESS are honoured.";

/// A target that does not parse. The message names the input and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// How a user names one network namespace. Parsed without touching the system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NsSpec {
    /// The namespace of the calling thread.
    Current,
    /// The named namespace `/run/netns/NAME` (`name:NAME`, or a name found on the system).
    Name(String),
    /// A path to an nsfs file (`/proc/PID/ns/net`, `/run/netns/X`, a bind mount elsewhere).
    Path(PathBuf),
    /// The namespace of a process: `/proc/PID/ns/net`.
    Pid(u32),
    /// A container of one runtime, by name or ID (`podman:web1`, `containerd:3f2a`).
    Container {
        /// The runtime.
        runtime: Runtime,
        /// The container's name or ID.
        name: String,
    },
    /// A bare `NAME`: the named namespace if it exists, else exactly one running container
    /// of that name or ID in any runtime.
    Plain(String),
}

impl NsSpec {
    /// The file that holds this namespace, if the spelling says which without asking a
    /// container runtime: `None` for [`NsSpec::Current`] and [`NsSpec::Container`];
    /// `/run/netns/NAME` for [`NsSpec::Plain`] (which may turn out to be a container).
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            NsSpec::Current | NsSpec::Container { .. } => None,
            NsSpec::Name(name) | NsSpec::Plain(name) => Some(Path::new(NETNS_RUN_DIR).join(name)),
            NsSpec::Path(p) => Some(p.clone()),
            NsSpec::Pid(pid) => Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
        }
    }

    /// The iproute2 name, if this spec names a named namespace.
    pub fn name(&self) -> Option<&str> {
        match self {
            NsSpec::Name(n) => Some(n),
            _ => None,
        }
    }

    /// The container this spec names, if it names one by runtime.
    pub fn container(&self) -> Option<(Runtime, &str)> {
        match self {
            NsSpec::Container { runtime, name } => Some((*runtime, name)),
            _ => None,
        }
    }
}

/// Escapes every character that the grammar treats specially.
fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        glob::escape_into(&mut out, c);
    }
    out
}

impl fmt::Display for NsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsSpec::Current => f.write_str("(current)"),
            NsSpec::Name(n) => {
                let e = escaped(n);
                if e == *n {
                    f.write_str(n)
                } else {
                    write!(f, "name:{e}")
                }
            }
            NsSpec::Plain(n) => f.write_str(&escaped(n)),
            NsSpec::Path(p) => {
                let p = p.to_string_lossy();
                let mut out = String::with_capacity(p.len());
                for c in p.chars() {
                    // ':' too: a path must not read back as `pid:` or `name:`.
                    if matches!(c, '\\' | ',' | ':') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                f.write_str(&out)
            }
            NsSpec::Pid(pid) => write!(f, "pid:{pid}"),
            NsSpec::Container { runtime, name } => write!(f, "{runtime}:{name}"),
        }
    }
}

impl FromStr for NsSpec {
    type Err = Error;

    /// One namespace (see the module's grammar); a glob is refused with a message.
    fn from_str(s: &str) -> Result<Self> {
        match s.parse::<NsPart>()? {
            NsPart::Spec(spec) => Ok(spec),
            NsPart::Glob { .. } => Err(Error::Spec(ParseError(format!(
                "'{s}' is a pattern, but this takes one namespace (write '\\*', '\\?' or '\\[' \
                 for literal characters)"
            )))),
        }
    }
}

/// NSPART: one namespace, or a pattern over namespace names and containers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NsPart {
    /// Exactly one namespace.
    Spec(NsSpec),
    /// A glob: over named namespaces and the names and IDs of running containers
    /// (`runtime: None`), or over one runtime's containers (`podman:web*`).
    Glob {
        /// The runtime whose containers the glob runs over; `None`: names and all runtimes.
        runtime: Option<Runtime>,
        /// The pattern.
        glob: Glob,
    },
}

impl FromStr for NsPart {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        parse::ns_part(s, &parse::lex(s)?)
    }
}

impl fmt::Display for NsPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsPart::Spec(s) => s.fmt(f),
            NsPart::Glob {
                runtime: Some(r),
                glob,
            } => write!(f, "{r}:{glob}"),
            NsPart::Glob {
                runtime: None,
                glob,
            } => glob.fmt(f),
        }
    }
}

/// IFPART: which interfaces of a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IfPart {
    /// `any`: every interface.
    Any,
    /// One interface by name.
    Name(String),
    /// Interfaces whose names match.
    Glob(Glob),
}

impl IfPart {
    /// True if interface `name` is one of these.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            IfPart::Any => true,
            IfPart::Name(n) => n == name,
            IfPart::Glob(g) => g.is_match(name),
        }
    }
}

impl fmt::Display for IfPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IfPart::Any => f.write_str("any"),
            IfPart::Name(n) if n == "any" => f.write_str("\\any"),
            IfPart::Name(n) => f.write_str(&escaped(n)),
            IfPart::Glob(g) => g.fmt(f),
        }
    }
}

/// TARGET: interfaces, optionally in a namespace (`None`: the one the command defaults to).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The namespace part (`None`: the one the command defaults to).
    pub ns: Option<NsPart>,
    /// The interface part.
    pub iface: IfPart,
}

impl Target {
    /// Parses one target (`eth1`, `ns0/eth1`, `podman:web1/eth0`, `nsrt-*/veth*`).
    pub fn parse(s: &str) -> Result<Target> {
        parse::target(s, &parse::lex(s)?)
    }

    /// Parses one target, with the namespace of `--netns` when the target names none; a
    /// target that names a namespace as well as `--netns` is an error.
    pub fn parse_with(s: &str, netns: Option<&NsPart>) -> Result<Target> {
        let mut t = Target::parse(s)?;
        match (&t.ns, netns) {
            (Some(_), Some(_)) => Err(Error::Spec(ParseError(format!(
                "'{s}' names a namespace and so does --netns: give the namespace once"
            )))),
            (None, Some(ns)) => {
                t.ns = Some(ns.clone());
                Ok(t)
            }
            _ => Ok(t),
        }
    }

    /// The one namespace and interface (`None`: any) of a target without patterns; no
    /// namespace means the current one.
    pub fn exact(&self) -> Result<(NsSpec, Option<String>)> {
        let ns = match &self.ns {
            None => NsSpec::Current,
            Some(NsPart::Spec(s)) => s.clone(),
            Some(NsPart::Glob { .. }) => return Err(self.pattern_refused()),
        };
        match &self.iface {
            IfPart::Any => Ok((ns, None)),
            IfPart::Name(n) => Ok((ns, Some(n.clone()))),
            IfPart::Glob(_) => Err(self.pattern_refused()),
        }
    }

    fn pattern_refused(&self) -> Error {
        Error::Spec(ParseError(format!(
            "'{self}' is a pattern, but this takes one interface in one namespace (write \
             '\\*', '\\?' or '\\[' for literal characters)"
        )))
    }

    /// True if the target has a glob in either part.
    pub fn is_pattern(&self) -> bool {
        matches!(self.ns, Some(NsPart::Glob { .. })) || matches!(self.iface, IfPart::Glob(_))
    }
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Target::parse(s)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ns {
            None | Some(NsPart::Spec(NsSpec::Current)) => self.iface.fmt(f),
            Some(ns) => write!(f, "{ns}/{}", self.iface),
        }
    }
}

/// Parses LIST: targets separated by unescaped commas (`a/eth0,b/eth0`).
pub fn parse_list(s: &str) -> Result<Vec<Target>> {
    parse::list(s)
}

#[cfg(test)]
mod tests;
