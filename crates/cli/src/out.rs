//! Standard output: line-buffered on a terminal, block-buffered otherwise; a closed pipe
//! (`nsring ... | head`) ends the program quietly.
#![allow(dead_code)]

use std::io::{self, IsTerminal, LineWriter, Write};

/// A stdout writer chosen for where stdout goes.
pub enum Out {
    Line(LineWriter<io::Stdout>),
    Block(io::BufWriter<io::Stdout>),
}

impl Out {
    pub fn new() -> Out {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            Out::Line(LineWriter::new(stdout))
        } else {
            Out::Block(io::BufWriter::with_capacity(64 * 1024, stdout))
        }
    }
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        quiet_pipe(match self {
            Out::Line(w) => w.write(buf),
            Out::Block(w) => w.write(buf),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        quiet_pipe(match self {
            Out::Line(w) => w.flush(),
            Out::Block(w) => w.flush(),
        })
    }
}

/// A broken pipe means the reader is gone: exit 0 without a message, like `cat`.
fn quiet_pipe<T>(r: io::Result<T>) -> io::Result<T> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => r,
    }
}

/// The layout version of every `--json` line, written first in each line as `"schema": N`.
/// Adding a field keeps the number; renaming or removing a field, or changing what one
/// means, raises it (docs/DESIGN.md, "Versioned contracts").
pub const JSON_SCHEMA: u32 = 1;

/// Prints a JSON object as one line, `{"schema":N,` followed by the object's own fields in
/// their order. Every `--json` line goes through here.
pub fn json_line(out: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    let body = serde_json::to_vec(value)?;
    let Some(fields) = body.strip_prefix(b"{") else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a --json line must be a JSON object",
        ));
    };
    write!(out, "{{\"schema\":{JSON_SCHEMA}")?;
    if fields != b"}" {
        out.write_all(b",")?;
    }
    out.write_all(fields)?;
    out.write_all(b"\n")
}

/// Prints each item as a `json_line` of its own (JSON lines, never one array).
pub fn json_lines<T: serde::Serialize>(
    out: &mut impl Write,
    items: impl IntoIterator<Item = T>,
) -> io::Result<()> {
    items.into_iter().try_for_each(|item| json_line(out, &item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_starts_with_the_schema_and_keeps_field_order() {
        #[derive(serde::Serialize)]
        struct S {
            z: u8,
            a: &'static str,
        }
        #[derive(serde::Serialize)]
        struct Empty {}
        let mut buf = Vec::new();
        json_line(&mut buf, &S { z: 1, a: "x" }).unwrap();
        json_line(&mut buf, &Empty {}).unwrap();
        json_lines(&mut buf, [S { z: 2, a: "y" }]).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "{\"schema\":1,\"z\":1,\"a\":\"x\"}\n{\"schema\":1}\n{\"schema\":1,\"z\":2,\"a\":\"y\"}\n"
        );
        assert!(json_line(&mut Vec::new(), &[1, 2]).is_err());
    }
}
