//! Diagnostics: an error or warning at a span, rendered as `file:line:col: error: message`
//! followed by the source line and a caret line under the span. The front end reports every
//! problem through these, never by panicking.

use std::fmt;

use super::span::{locate, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in a D script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    /// DTrace's name for the error (`D_SYNTAX`, `D_PROTO_LEN`, …; libdtrace's dt_errtags.h),
    /// shown under `-x errtags` as dtrace(1) shows it.
    pub tag: Option<&'static str>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: String::new(),
            severity: Severity::Error,
            span,
            message: message.into(),
            tag: None,
        }
    }

    /// The diagnostic with DTrace's tag for it.
    pub fn tagged(mut self, tag: &'static str) -> Diagnostic {
        self.tag = Some(tag);
        self
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// 1-based line and column of the start of the span.
    pub fn line_column(&self, source: &str) -> (usize, usize) {
        let loc = locate(source, self.span.start);
        (loc.line, loc.column)
    }

    /// Renders the diagnostic: the `file:line:col: severity: message` header, the source line
    /// indented by four spaces, and a caret line under the span (`^^^` when it is wider than
    /// one character; a span running past the line is cut at the line's end).
    pub fn render(&self, source: &str) -> String {
        self.render_with(source, false)
    }

    /// As [`Diagnostic::render`]; with `errtags`, the message starts with the tag in brackets
    /// (`[D_SYNTAX]`), as dtrace(1) prints it under `-x errtags`.
    pub fn render_with(&self, source: &str, errtags: bool) -> String {
        let loc = locate(source, self.span.start);
        let line = source[loc.line_start..loc.line_end].trim_end_matches('\r');
        let end = self.span.end.clamp(self.span.start, loc.line_end);
        let width = source
            .get(self.span.start.min(loc.line_end)..end)
            .map_or(0, |s| s.chars().count())
            .max(1);
        // Tabs in the prefix are kept as tabs so the caret lines up however the terminal
        // expands them.
        let pad: String = line
            .chars()
            .take(loc.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "{}:{}:{}: {}: {}\n    {}\n    {}{}\n",
            self.file,
            loc.line,
            loc.column,
            self.severity,
            match self.tag.filter(|_| errtags) {
                Some(tag) => format!("[{tag}] {}", self.message),
                None => self.message.clone(),
            },
            line,
            pad,
            "^".repeat(width)
        )
    }
}

/// The errors (and any warnings) that stopped a script from compiling. `Display` renders all
/// of them against the source they came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render_all())]
pub struct Diagnostics {
    /// The script the spans point into.
    pub source_text: String,
    pub diagnostics: Vec<Diagnostic>,
    /// `-x errtags`: render each error's tag.
    pub errtags: bool,
}

impl Diagnostics {
    fn render_all(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.render_with(&self.source_text, self.errtags));
        }
        out
    }

    /// The diagnostics that are errors (the rest are warnings).
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_a_caret_at_the_span() {
        let src = "BEGIN\n{\n    self->t = timestamp\n}\n";
        let at = src.find("timestamp").unwrap() + "timestamp".len();
        let mut d = Diagnostic::error(Span::new(at, at), "expected `;`, found `}`");
        d.file = "script.d".into();
        assert_eq!(
            d.render(src),
            "script.d:3:24: error: expected `;`, found `}`\n        self->t = timestamp\n                           ^\n"
        );
    }

    #[test]
    fn render_underlines_a_wide_span() {
        let src = "x = foo;";
        let mut d = Diagnostic::warning(Span::new(4, 7), "m");
        d.file = "f.d".into();
        assert_eq!(
            d.render(src),
            "f.d:1:5: warning: m\n    x = foo;\n        ^^^\n"
        );
    }
}
