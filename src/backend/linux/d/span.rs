//! Byte spans into the D source, and the mapping from a byte offset to a line and column.
//! Every token, AST node and diagnostic carries a `Span`, so errors can point at the source.

/// A half-open byte range `start..end` into the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span that covers both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// A zero-width span at the end of `self`: where a missing token should have been.
    pub fn after(self) -> Span {
        Span::new(self.end, self.end)
    }
}

/// Where a byte offset falls in the source: 1-based line and column (in characters), and the
/// byte range of that line without its newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub line_start: usize,
    pub line_end: usize,
}

/// Locates `offset` in `source`. Offsets past the end (or inside a UTF-8 sequence) are clamped
/// to the nearest valid position, so a stale span never makes rendering fail.
pub fn locate(source: &str, offset: usize) -> Location {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[offset..]
        .find('\n')
        .map_or(source.len(), |i| offset + i);
    let line = source[..line_start].matches('\n').count() + 1;
    let column = source[line_start..offset].chars().count() + 1;
    Location {
        line,
        column,
        line_start,
        line_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_line_and_column() {
        let src = "ab\ncde\n";
        let loc = locate(src, 4);
        assert_eq!((loc.line, loc.column), (2, 2));
        assert_eq!(&src[loc.line_start..loc.line_end], "cde");
    }

    #[test]
    fn locate_clamps_past_the_end() {
        let loc = locate("x", 99);
        assert_eq!((loc.line, loc.column), (1, 2));
    }
}
