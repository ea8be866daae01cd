//! Whether a Python function is a generator or a coroutine, read from its source.
//!
//! CPython 3.15 fires function-entry when a generator (or coroutine) function is called and
//! the generator object is made (RETURN_GENERATOR), and no return for it. That entry looks
//! exactly like the generator's first resume. Where pyflow.d reaches the running frame, it
//! tells them apart by the code's flags and the frame's owner, and leaves creations out; this
//! module is for where it cannot (no target, a relocated interpreter started with -c): the
//! flow then needs to know, before the function's first call, which functions make
//! generators. The probes do not say; the source roughly does: a
//! `def` whose own body (not a nested def or class) holds `yield`, any `async def`, and every
//! generator expression.
//!
//! 3.15 also enters some code at no line (-1): class bodies, closures, and methods that use
//! `super()` (their code starts with instructions that have no line). Their first line is
//! found here too, from the `def` or `class` statements of that name in the file.

use std::collections::HashMap;
use std::path::PathBuf;

/// Source files read so far, by the path the process sees, as lines.
#[derive(Debug, Default)]
pub struct SourceCache {
    files: HashMap<(u32, String), Option<Vec<String>>>,
    /// def_lines' answers, by process, file and name.
    definitions: HashMap<(u32, String, String), Vec<i64>>,
}

impl SourceCache {
    /// Whether `function`, whose code starts at `line` of `file` in process `pid`, makes a
    /// generator or coroutine when called. An unreadable file says no.
    pub fn makes_generator(&mut self, pid: u32, file: &str, function: &str, line: i64) -> bool {
        if function == "<genexpr>" {
            return true;
        }
        if function.starts_with('<') || line < 1 {
            return false;
        }
        self.lines(pid, file)
            .is_some_and(|lines| def_makes_generator(lines, line as usize - 1))
    }

    /// The first lines (decorators included, as in `co_firstlineno`) of every `def` or `class`
    /// named `function` in `file`.
    pub fn def_lines(&mut self, pid: u32, file: &str, function: &str) -> Vec<i64> {
        let key = (pid, file.to_string(), function.to_string());
        if let Some(found) = self.definitions.get(&key) {
            return found.clone();
        }
        let found = self.find_definitions(pid, file, function);
        self.definitions.insert(key, found.clone());
        found
    }

    /// Forgets what was read for process `pid` (it replaced its program).
    pub fn forget(&mut self, pid: u32) {
        self.files.retain(|(p, _), _| *p != pid);
        self.definitions.retain(|(p, _, _), _| *p != pid);
    }

    fn find_definitions(&mut self, pid: u32, file: &str, function: &str) -> Vec<i64> {
        let Some(lines) = self.lines(pid, file) else {
            return Vec::new();
        };
        (0..lines.len())
            .filter(|&i| defines(code(&lines[i]), function))
            .map(|i| {
                let first = (0..i)
                    .rev()
                    .take_while(|&j| code(&lines[j]).starts_with('@'))
                    .last()
                    .unwrap_or(i);
                first as i64 + 1
            })
            .collect()
    }

    fn lines(&mut self, pid: u32, file: &str) -> Option<&[String]> {
        self.files
            .entry((pid, file.to_string()))
            .or_insert_with(|| read_source(pid, file))
            .as_deref()
    }
}

/// Whether a statement defines `name`: `def name(`, `async def name(`, `class name:` or `(`.
fn defines(statement: &str, name: &str) -> bool {
    let rest = statement
        .strip_prefix("async def ")
        .or_else(|| statement.strip_prefix("def "))
        .or_else(|| statement.strip_prefix("class "));
    rest.and_then(|r| r.trim_start().strip_prefix(name))
        .is_some_and(|r| r.trim_start().starts_with(['(', ':']))
}

/// The file's lines, read through the process's root and working directory while it lives
/// (its mount namespace and its relative paths), else from here.
fn read_source(pid: u32, file: &str) -> Option<Vec<String>> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let seen = match file.strip_prefix('/') {
        Some(abs) => proc.join("root").join(abs),
        None => proc.join("cwd").join(file),
    };
    let text = std::fs::read_to_string(seen)
        .or_else(|_| std::fs::read_to_string(file))
        .ok()?;
    Some(text.lines().map(str::to_string).collect())
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The code of a line without its comment (a `#` outside quotes is good enough here).
fn code(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

/// Whether the `def` at `start` (or the decorators above it) makes a generator.
fn def_makes_generator(lines: &[String], start: usize) -> bool {
    let Some(def_at) = (start..lines.len()).find(|&i| !code(&lines[i]).starts_with('@')) else {
        return false;
    };
    let header = code(&lines[def_at]);
    if header.starts_with("async def ") {
        return true;
    }
    if !header.starts_with("def ") {
        return false;
    }
    let def_indent = indent(&lines[def_at]);
    let mut body = vec![header.split_once(':').map_or("", |(_, rest)| rest)];
    let mut nested: Option<usize> = None;
    for line in &lines[def_at + 1..] {
        let text = code(line);
        if text.is_empty() {
            continue;
        }
        let here = indent(line);
        if here <= def_indent {
            break;
        }
        if nested.is_some_and(|n| here > n) {
            continue;
        }
        nested = None;
        if ["def ", "async def ", "class "]
            .iter()
            .any(|k| text.starts_with(k))
        {
            nested = Some(here);
            continue;
        }
        body.push(text);
    }
    body.iter().any(|text| has_word(text, "yield"))
}

fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn generators_and_coroutines_are_told_from_functions() {
        let src = lines(
            "def gen(n):\n    for i in range(n):\n        yield i\n\n\
             def outer():\n    def inner():\n        yield 1\n    return inner\n\n\
             @decorated\ndef walk(n):  # yield here is a comment\n    yield from walk(n)\n\n\
             async def fetch():\n    return 1\n\n\
             def yielding_name():\n    yielded = 1\n    return yielded\n\n\
             def one(): yield 1\n",
        );
        assert!(def_makes_generator(&src, 0));
        assert!(!def_makes_generator(&src, 4));
        assert!(def_makes_generator(&src, 5));
        assert!(def_makes_generator(&src, 9));
        assert!(def_makes_generator(&src, 13));
        assert!(!def_makes_generator(&src, 16));
        assert!(def_makes_generator(&src, 20));
    }

    #[test]
    fn definitions_are_found_by_name_with_their_decorators() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shapes.py");
        std::fs::write(
            &file,
            "class Shape:\n    def __init__(self):\n        pass\n\n\
             class Square(Shape):\n    @staticmethod\n    @other\n    def __init__(self):\n\
             \x20       super().__init__()\n    def __init_subclass__(cls): pass\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let mut cache = SourceCache::default();
        assert_eq!(cache.def_lines(1, f, "Shape"), [1]);
        assert_eq!(cache.def_lines(1, f, "Square"), [5]);
        assert_eq!(cache.def_lines(1, f, "__init__"), [2, 6]);
        assert!(cache.def_lines(1, f, "missing").is_empty());
    }

    #[test]
    fn generator_expressions_and_unreadable_files() {
        let mut cache = SourceCache::default();
        assert!(cache.makes_generator(1, "<stdin>", "<genexpr>", -1));
        assert!(!cache.makes_generator(1, "/nonexistent/x.py", "f", 3));
        assert!(!cache.makes_generator(1, "x.py", "<module>", 0));
    }
}
