//! PF_RING's own command names: `pfcount`, `pfsend` and `pfdump` are links to `nsring`
//! (argv[0] decides), take PF_RING's flags and print PF_RING's output, so scripts written
//! for PF_RING run unchanged. nsring's own commands keep nsring's flag vocabulary; these
//! names keep PF_RING's (`pfsend -n` is a count, `pfcount -l` a snaplen).
//!
//! Flags that only tune PF_RING's kernel module or threads (`-g`, `-w`, `-p`, `-a`, ...) are
//! accepted and have no effect; flags for features nsring does not have (`pfcount -x`,
//! `pfsend -d`) are usage errors that say so.

use std::ffi::OsString;
use std::process::ExitCode;

mod pfcount;
mod pfdump;
mod pfsend;

/// Runs a PF_RING command if the program was called by one of their names.
pub fn dispatch(args: &[OsString]) -> Option<ExitCode> {
    let name = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())?;
    let rest = &args[1..];
    let result = match name {
        "pfcount" => pfcount::run(name, rest),
        "pfsend" => pfsend::run(name, rest),
        "pfdump" => pfdump::run(name, rest),
        _ => return None,
    };
    Some(match result {
        Ok(code) => code,
        Err(e) => crate::error::report_as(name, &e),
    })
}

/// Parses PF_RING-style arguments with clap (getopt's rules: `-ieth1`, `-i eth1`, `-aJ`),
/// a parse error being a usage error that names the program.
fn parse<T: clap::Parser>(name: &str, rest: &[OsString]) -> anyhow::Result<T> {
    let argv = std::iter::once(OsString::from(name)).chain(rest.iter().cloned());
    T::try_parse_from(argv).map_err(|e| {
        let text = e.render().to_string();
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid arguments")
            .trim()
            .trim_start_matches("error:")
            .trim()
            .to_owned();
        crate::usage(format!("{first} (see {name} -h)"))
    })
}

/// A usage error for a PF_RING flag nsring has nothing for.
fn unsupported(name: &str, flag: char, what: &str, instead: &str) -> anyhow::Error {
    crate::usage(format!(
        "{name} -{flag} ({what}) is not supported by nsring{instead}"
    ))
}

/// A number given to a PF_RING flag.
fn number<T: std::str::FromStr>(name: &str, flag: char, v: &str) -> anyhow::Result<T> {
    v.trim()
        .parse()
        .map_err(|_| crate::usage(format!("{name} -{flag}: '{v}' is not a valid number")))
}

/// PF_RING's direction numbers (`-e`): 0 both, 1 received, 2 sent.
fn direction(name: &str, v: &str) -> anyhow::Result<&'static str> {
    match v.trim() {
        "0" => Ok("both"),
        "1" => Ok("in"),
        "2" => Ok("out"),
        _ => Err(crate::usage(format!(
            "{name} -e {v}: use 0 (RX+TX), 1 (RX only) or 2 (TX only)"
        ))),
    }
}

/// The device, required: PF_RING's tools fall back to eth0, nsring does not guess.
fn device(name: &str, d: Option<String>) -> anyhow::Result<String> {
    d.ok_or_else(|| {
        crate::usage(format!(
            "{name}: give the device with -i (IFACE or NS/IFACE); nsring does not assume eth0"
        ))
    })
}

/// The path of this program, to run nsring's own commands as a child.
fn self_exe() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into())
}
