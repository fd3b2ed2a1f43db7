//! Running commands with clear errors.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub fn fail<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

/// A tiny command runner: a working directory and extra environment.
#[derive(Debug, Clone, Default)]
pub struct Sh {
    dir: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Sh {
    pub fn new() -> Sh {
        Sh::default()
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Sh {
        self.dir = Some(dir.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Sh {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn cmd(&self, prog: &str, args: &[&str]) -> Command {
        let mut c = Command::new(prog);
        c.args(args);
        if let Some(d) = &self.dir {
            c.current_dir(d);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs with inherited stdio; a non-zero exit is an error naming the command.
    pub fn run(&self, prog: &str, args: &[&str]) -> Result<(), String> {
        let status = self
            .cmd(prog, args)
            .status()
            .map_err(|e| format!("cannot run {prog}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            fail(format!("`{prog} {}` failed ({status})", args.join(" ")))
        }
    }

    /// Runs capturing stdout and stderr; a non-zero exit is an error with stderr.
    pub fn output(&self, prog: &str, args: &[&str]) -> Result<Output, String> {
        let out = self
            .cmd(prog, args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {prog}: {e}"))?;
        if out.status.success() {
            Ok(out)
        } else {
            fail(format!(
                "`{prog} {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}
