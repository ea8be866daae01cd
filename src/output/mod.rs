//! Writing output: the colour decision, the line writer that flushes per line in a pipe, JSON
//! lines, the full-screen terminal of live views (`live`), and recognising a closed pipe.
//! Presenters receive these decisions; they never ask the terminal themselves.

pub(crate) mod json;
pub(crate) mod live;
pub(crate) mod text;

use std::ffi::OsStr;
use std::io::{self, Write};

use serde::Serialize;

/// The user's `--color` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Whether to colour stdout. `never` and `always` win; otherwise colour needs a terminal, no
/// non-empty NO_COLOR (<https://no-color.org>), and a TERM other than `dumb`.
pub fn decide_color(
    choice: ColorChoice,
    stdout_is_tty: bool,
    no_color: Option<&OsStr>,
    term: Option<&OsStr>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            stdout_is_tty
                && no_color.is_none_or(|v| v.is_empty())
                && term != Some(OsStr::new("dumb"))
        }
    }
}

/// A line-oriented writer. In a pipe it flushes after every line, so that a reader sees each
/// event as it happens; on a terminal it buffers and flushes when asked, which presenters do
/// at every flush point of the back end (`EventSink::flush`: after each batch it delivers),
/// so that a burst of events costs one write and each event still shows within that batch.
pub struct LineWriter<W: Write> {
    inner: io::BufWriter<W>,
    flush_each_line: bool,
}

impl<W: Write> LineWriter<W> {
    pub fn new(inner: W, flush_each_line: bool) -> LineWriter<W> {
        LineWriter {
            inner: io::BufWriter::with_capacity(64 * 1024, inner),
            flush_each_line,
        }
    }

    /// Writes `text` and a newline.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        self.inner.write_all(text.as_bytes())?;
        self.inner.write_all(b"\n")?;
        self.end_line()
    }

    /// Writes `value` as one JSON object on one line.
    pub fn json<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.inner, value)?;
        self.inner.write_all(b"\n")?;
        self.end_line()
    }

    /// Writes text that may hold several lines (or end mid-line), as D's printf does.
    pub fn text(&mut self, text: &str) -> io::Result<()> {
        self.inner.write_all(text.as_bytes())?;
        if text.contains('\n') {
            self.end_line()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Flushes and returns the underlying writer (the presenters' unit tests read what they
    /// wrote).
    #[cfg(test)]
    pub fn into_inner(self) -> io::Result<W> {
        self.inner
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }

    fn end_line(&mut self) -> io::Result<()> {
        if self.flush_each_line {
            self.inner.flush()?;
        }
        Ok(())
    }
}

/// The writer for standard output.
pub fn stdout(flush_each_line: bool) -> LineWriter<io::Stdout> {
    LineWriter::new(io::stdout(), flush_each_line)
}

/// Whether an error is, somewhere in its chain, a closed pipe: the reader went away
/// (`dtk … | head`), which is not an error for dtk.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn colour_decision() {
        let dumb = Some(OsStr::new("dumb"));
        let xterm = Some(OsStr::new("xterm-256color"));
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(decide_color(ColorChoice::Auto, true, None, xterm));
        assert!(
            decide_color(ColorChoice::Auto, true, empty, xterm),
            "empty NO_COLOR"
        );
        assert!(!decide_color(ColorChoice::Auto, false, None, xterm), "pipe");
        assert!(
            !decide_color(ColorChoice::Auto, true, set, xterm),
            "NO_COLOR"
        );
        assert!(
            !decide_color(ColorChoice::Auto, true, None, dumb),
            "TERM=dumb"
        );
        assert!(decide_color(ColorChoice::Always, false, set, dumb));
        assert!(!decide_color(ColorChoice::Never, true, None, xterm));
    }

    /// A writer whose reader has gone away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn broken_pipe_is_found_through_the_error_chain() {
        let mut w = LineWriter::new(ClosedPipe, true);
        let err = w.line("x").context("printing an event").unwrap_err();
        assert!(is_broken_pipe(&err));
        let other = anyhow::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_broken_pipe(&other));
    }

    /// A writer that records what reached it, to see when flushes happen.
    #[derive(Default)]
    struct Recorder(Vec<u8>);

    impl Write for &mut Recorder {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pipe_mode_flushes_every_line_terminal_mode_buffers() {
        let mut seen = Recorder::default();
        {
            let mut w = LineWriter::new(&mut seen, true);
            w.line("one").unwrap();
            w.json(&serde_json::json!({"a": 1})).unwrap();
            // Dropping a BufWriter flushes, so look before the drop.
            assert_eq!(w.inner.get_ref().0, b"one\n{\"a\":1}\n");
        }
        let mut held = Recorder::default();
        let mut w = LineWriter::new(&mut held, false);
        w.line("one").unwrap();
        assert!(w.inner.get_ref().0.is_empty());
    }
}
