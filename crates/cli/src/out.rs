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

/// Prints a value as one line of JSON.
pub fn json_line(out: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}
