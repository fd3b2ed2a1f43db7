//! Running a runtime's own client (`podman`, `ctr`) with a deadline: a client that hangs on
//! a wedged daemon is killed, and the caller gets [`Error::Timeout`].

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Runtime};

/// How long a runtime's client may take for one command.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    /// It exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// True if `program` is an executable file somewhere in `PATH`.
pub fn in_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Runs `program args` (stdin closed) and collects its output, killing it after `timeout`.
pub fn run(
    runtime: Runtime,
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<Output, Error> {
    let what = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Command {
            runtime,
            command: what.clone(),
            source,
        })?;
    // Readers on their own threads, so a chatty child never blocks on a full pipe.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout {
                    runtime,
                    endpoint: what,
                    secs: timeout.as_secs(),
                });
            }
            Err(source) => {
                return Err(Error::Command {
                    runtime,
                    command: what,
                    source,
                });
            }
        }
    };
    Ok(Output {
        success: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// The last non-empty line of a client's stderr, without its `Error: ` (for messages).
pub fn last_line(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| {
            l.trim_start_matches("Error: ")
                .trim_start_matches("ctr: ")
                .to_owned()
        })
        .unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_times_out() {
        let out = run(
            Runtime::Podman,
            "sh",
            &["-c", "echo hi; echo oops >&2; exit 3"],
            CLI_TIMEOUT,
        )
        .unwrap();
        assert!(!out.success);
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("hi\n", "oops\n")
        );
        let start = Instant::now();
        let r = run(
            Runtime::Podman,
            "sleep",
            &["30"],
            Duration::from_millis(200),
        );
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(matches!(
            run(Runtime::Podman, "/nonexistent/nsring-x", &[], CLI_TIMEOUT),
            Err(Error::Command { .. })
        ));
        assert!(in_path("sh"));
        assert!(!in_path("nsring-no-such-program"));
        assert_eq!(
            last_line("warn\nError: no such container x\n\n"),
            "no such container x"
        );
    }
}
