//! Error reporting at the edge: one line, the right exit code, advice for missing privileges.

use std::fmt;
use std::process::ExitCode;

/// A usage error: the user asked for something that cannot be done as written (exit code 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Builds a usage error (exit 2) as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

/// True if any error in the chain is a usage error, or a library error that means the user
/// named something wrong (an invalid namespace name, say).
fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<Usage>()
            || e.downcast_ref::<nsring_multi::Error>()
                .is_some_and(nsring_multi::Error::is_usage)
            || e.downcast_ref::<nsring_capture::Error>()
                .is_some_and(capture_usage)
            || e.downcast_ref::<nsring_netns::Error>()
                .is_some_and(nsring_netns::Error::is_usage)
            || match e.downcast_ref::<nsring_bpf::Error>() {
                Some(nsring_bpf::Error::Capture(c)) => capture_usage(c),
                Some(nsring_bpf::Error::Netns(n)) => n.is_usage(),
                _ => false,
            }
    })
}

fn capture_usage(e: &nsring_capture::Error) -> bool {
    matches!(
        e,
        nsring_capture::Error::NoInterface { .. }
            | nsring_capture::Error::InvalidInterfaceName { .. }
            | nsring_capture::Error::Filter { .. }
            | nsring_capture::Error::Config(_)
    )
}

/// The capability a permission error most likely lacks, from the failing call.
fn capability_advice(err: &anyhow::Error) -> Option<&'static str> {
    let eperm = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
            .is_some_and(|c| c == libc::EPERM || c == libc::EACCES)
    });
    let text = format!("{err:#}");
    if !eperm || text.contains("CAP_") {
        return None;
    }
    Some(if text.contains("socket") || text.contains("capture") {
        "run as root or grant CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode)"
    } else if text.contains("setns")
        || text.contains("mount")
        || text.contains("namespace")
        || text.contains("unshare")
    {
        "run as root or grant CAP_SYS_ADMIN (entering and creating namespaces needs it)"
    } else {
        "run as root or grant CAP_NET_ADMIN"
    })
}

/// Prints `nsring: error: ...` on one line and returns the exit code (2 usage, 1 runtime).
pub fn report(err: &anyhow::Error) -> ExitCode {
    report_as("nsring", err)
}

/// [`report`] for a program called by another name (`pfcount: error: ...`).
pub fn report_as(program: &str, err: &anyhow::Error) -> ExitCode {
    eprintln!("{program}: error: {}", line(err));
    ExitCode::from(if is_usage(err) { 2 } else { 1 })
}

/// The error's one line, with advice where there is some.
fn line(err: &anyhow::Error) -> String {
    let mut line = format!("{err:#}").replace('\n', " ");
    if let Some(advice) = capability_advice(err) {
        line.push_str(" — ");
        line.push_str(advice);
    }
    if err.chain().any(|e| {
        matches!(
            e.downcast_ref::<nsring_capture::Error>(),
            Some(nsring_capture::Error::RingTooLarge { .. })
        )
    }) {
        line.push_str(" (--blocks N sets how many, --block-kib K their size)");
    }
    line
}

/// Help and version go to stdout as clap renders them; a usage error becomes one line,
/// `nsring: error: ...`, with exit code 2.
pub fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(e.exit_code() as u8)
        }
        _ => {
            let text = e.render().to_string();
            // The first paragraph, on one line ("... not provided:" lists the arguments below).
            let para: Vec<&str> = text
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let joined = para.join(" ");
            let msg = match joined.trim_start_matches("error:").trim() {
                "" => "invalid arguments",
                m => m,
            };
            let hint = if text.contains("Usage:") || text.contains("--help") {
                " (see --help)"
            } else {
                ""
            };
            eprintln!("nsring: error: {msg}{hint}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// A ring the kernel cannot allocate: one line that says which options make it
    /// smaller, exit 1. (The kernel's ENOMEM cannot be provoked safely on a shared
    /// machine: a ring it can allocate is allocated.)
    #[test]
    fn a_ring_too_large_names_the_options() {
        let e = anyhow::Error::new(nsring_capture::Error::RingTooLarge {
            block_size: 4 << 20,
            blocks: 512,
            source: std::io::Error::from_raw_os_error(libc::ENOMEM),
        });
        let text = super::line(&e);
        assert!(
            text.contains("could not allocate a 2048 MiB capture ring"),
            "{text}"
        );
        assert!(text.contains("--blocks N"), "{text}");
        assert!(text.contains("--block-kib K"), "{text}");
        assert!(!super::is_usage(&e));
    }
}
