//! The bundled D scripts, and safe substitution of their parameters.
//!
//! Each script in `d-scripts/` declares its parameters as `inline` constants with defaults,
//! so the file is valid D on its own and runs unchanged under dtrace(1). dtk rewrites the
//! value of each such constant with a literal it builds itself: integers come in typed, and
//! strings are turned into D string literals with every quote, backslash and control
//! character escaped. No parameter can therefore add a token to the program. The one
//! textual macro, `$target`, is replaced only by a process id or by `*`, and only outside
//! comments and string literals.

use std::fmt::Write as _;

use thiserror::Error;

use crate::target::Target;

/// A script shipped inside the binary.
#[derive(Debug)]
pub struct BundledScript {
    pub name: &'static str,
    pub summary: &'static str,
    pub source: &'static str,
}

/// The bundled scripts, in the order `dtk list` shows them.
pub const BUNDLED: &[BundledScript] = &[
    BundledScript {
        name: "pyflow",
        summary: "Python call flow: function entries and returns from CPython's USDT markers",
        source: include_str!("../d-scripts/pyflow.d"),
    },
    BundledScript {
        name: "pyflow-trampoline",
        summary:
            "Python call flow on CPython 3.12 to 3.14 (no markers), through the perf trampoline",
        source: include_str!("../d-scripts/pyflow-trampoline.d"),
    },
    BundledScript {
        name: "opens",
        summary: "files opened (open, openat, openat2, creat), with fd or errno and flags",
        source: include_str!("../d-scripts/opens.d"),
    },
    BundledScript {
        name: "syscalls",
        summary: "system call counts, errors and latency, per call and per process",
        source: include_str!("../d-scripts/syscalls.d"),
    },
];

/// Looks a bundled script up by name.
pub fn bundled(name: &str) -> Option<&'static BundledScript> {
    BUNDLED.iter().find(|s| s.name == name)
}

/// The value given to an `inline` parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Str(String),
    /// The pid of the process started by `-c` (D's `$target`), known only at run time.
    TargetPid,
}

impl Param {
    /// The FILTER_PID of a command's target: the pid, `$target` for a command dtk starts
    /// (known only at run time), or 0 for every process, and also when the back end follows
    /// the target's tree (and so filters on it itself).
    pub fn pid_filter(target: &Target, tree: Tree) -> Param {
        match target {
            _ if tree == Tree::ByBackend => Param::Int(0),
            Target::Pid(pid) => Param::Int((*pid).into()),
            Target::Command(_) => Param::TargetPid,
            Target::None => Param::Int(0),
        }
    }

    /// The FOLLOW of a toolkit script: 1 when the script follows the tree in D.
    pub fn follow(tree: Tree) -> Param {
        Param::Int((tree == Tree::InScript).into())
    }

    /// An optional string filter: "" when not given, as the scripts read it.
    pub fn text(value: &Option<String>) -> Param {
        Param::Str(value.clone().unwrap_or_default())
    }
}

/// How a toolkit command's run covers its target's process tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    /// The one process (no target, or --no-follow).
    One,
    /// The whole tree, kept by the back end (`Scope::follow`); the script names no pid.
    ByBackend,
    /// The whole tree, in D: `progenyof(FILTER_PID)`, for a back end that does not follow
    /// trees, and for `dtk show`, which prints the script as dtrace(1) would run it.
    InScript,
}

impl Tree {
    /// How `dtk show` prints a script for `target`: the tree in D when it is followed.
    pub fn shown(target: &Target, follow: bool) -> Tree {
        match target {
            Target::None => Tree::One,
            _ if follow => Tree::InScript,
            _ => Tree::One,
        }
    }
}

/// What `$target` in a probe description becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetMacro {
    /// `$target` stays as it is (the back end substitutes it, as dtrace -p does).
    Keep,
    /// One process.
    Pid(u32),
    /// Every process: `python$target` becomes `python*`.
    Any,
}

/// Errors in building a script's text.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScriptError {
    #[error("script {script} has no parameter {param}")]
    UnknownParam { script: String, param: String },
    #[error("parameter {param} of script {script} is a {declared}, not a {given}")]
    ParamType {
        script: String,
        param: String,
        declared: String,
        given: &'static str,
    },
    #[error("a D string cannot hold a NUL character (in the value for {param})")]
    NulInString { param: String },
}

/// A script ready to run: its name and its final text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub text: String,
}

impl BundledScript {
    /// The script's text with the given parameters and target substituted.
    pub fn instantiate(
        &self,
        params: &[(&str, Param)],
        target: TargetMacro,
    ) -> Result<Script, ScriptError> {
        let mut text = self.source.to_string();
        for (name, value) in params {
            text = self.set_inline(&text, name, value)?;
        }
        if let Some(replacement) = match target {
            TargetMacro::Keep => None,
            TargetMacro::Pid(pid) => Some(pid.to_string()),
            TargetMacro::Any => Some("*".to_string()),
        } {
            text = replace_macro(&text, "$target", &replacement);
        }
        Ok(Script {
            name: self.name.to_string(),
            text,
        })
    }

    /// Rewrites the value of `inline TYPE NAME = VALUE;`, checking that the value's kind
    /// matches the declared type.
    fn set_inline(&self, text: &str, name: &str, value: &Param) -> Result<String, ScriptError> {
        let mut out = String::with_capacity(text.len() + 16);
        let mut found = false;
        for line in text.split_inclusive('\n') {
            match parse_inline_decl(line) {
                Some((ty, decl_name)) if decl_name == name => {
                    found = true;
                    let literal = match (ty == "string", value) {
                        (true, Param::Str(s)) => d_string_literal(s)
                            .ok_or_else(|| ScriptError::NulInString { param: name.into() })?,
                        (false, Param::Int(i)) => i.to_string(),
                        (false, Param::TargetPid) => "$target".to_string(),
                        (_, given) => {
                            return Err(ScriptError::ParamType {
                                script: self.name.into(),
                                param: name.into(),
                                declared: ty.into(),
                                given: match given {
                                    Param::Int(_) | Param::TargetPid => "integer",
                                    Param::Str(_) => "string",
                                },
                            })
                        }
                    };
                    let eol = if line.ends_with('\n') { "\n" } else { "" };
                    let _ = write!(out, "inline {ty} {name} = {literal};{eol}");
                }
                _ => out.push_str(line),
            }
        }
        if !found {
            return Err(ScriptError::UnknownParam {
                script: self.name.into(),
                param: name.into(),
            });
        }
        Ok(out)
    }
}

/// Splits `inline TYPE NAME = VALUE;` into (TYPE, NAME). TYPE may be several words
/// (`unsigned int`).
fn parse_inline_decl(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix("inline ")?;
    let (lhs, _) = rest.split_once('=')?;
    let lhs = lhs.trim_end();
    let name_start = lhs.rfind(|c: char| c.is_whitespace())?;
    Some((lhs[..name_start].trim(), &lhs[name_start + 1..]))
}

/// `s` as a D string literal, or None when it holds a NUL (D strings end at NUL, so such a
/// value cannot be passed faithfully).
///
/// Printable ASCII other than `"` and `\` is kept; those two and the common control
/// characters get their short escapes; every other byte below 0x20, and DEL, becomes a
/// three-digit octal escape, which every D compiler reads. Bytes of multi-byte UTF-8
/// characters are kept as they are: D strings are byte strings.
pub fn d_string_literal(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\0' => return None,
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

/// Replaces the macro `name` (such as `$target`) with `replacement` wherever it stands as a
/// whole token outside comments and string or character literals.
fn replace_macro(text: &str, name: &str, replacement: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |e| i + 2 + e + 2);
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |e| i + e);
            }
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'$' if text[i..].starts_with(name)
                && !text[i + name.len()..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') =>
            {
                out.push_str(&text[copied..i]);
                out.push_str(replacement);
                i += name.len();
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opens() -> &'static BundledScript {
        bundled("opens").unwrap()
    }

    #[test]
    fn every_bundled_script_has_a_header_naming_providers_and_parameters() {
        for s in BUNDLED {
            assert!(
                s.source.starts_with("#!/usr/sbin/dtrace -s\n/*"),
                "{}",
                s.name
            );
            assert!(s.source.contains(" * Providers: "), "{}", s.name);
            assert!(s.source.contains(" * Parameters: "), "{}", s.name);
        }
    }

    #[test]
    fn string_literal_escapes_quotes_backslashes_and_controls() {
        assert_eq!(d_string_literal("a\"b").unwrap(), r#""a\"b""#);
        assert_eq!(d_string_literal(r"a\b").unwrap(), r#""a\\b""#);
        assert_eq!(d_string_literal("a\nb\tc\rd").unwrap(), r#""a\nb\tc\rd""#);
        assert_eq!(
            d_string_literal("\x01\x1b\x7f").unwrap(),
            r#""\001\033\177""#
        );
        assert_eq!(d_string_literal("é").unwrap(), "\"é\"");
        assert_eq!(d_string_literal("a\0b"), None);
    }

    /// Hostile values must end up inside one string literal, whatever they contain.
    #[test]
    fn hostile_string_parameter_cannot_change_the_program() {
        let hostile = [
            "\"; } syscall:::entry { trace(1); /* ",
            "x\" || 1 == 1 || \"",
            "\\\"); exit(0); //",
            "a\n}\nBEGIN { exit(0); }\n",
            "*/ BEGIN { exit(0); } /*",
            "$target $1 $$1",
        ];
        for value in hostile {
            let s = opens()
                .instantiate(
                    &[("FILTER_NAME", Param::Str(value.into()))],
                    TargetMacro::Keep,
                )
                .unwrap();
            let decl = s
                .text
                .lines()
                .find(|l| l.starts_with("inline string FILTER_NAME"))
                .unwrap();
            let literal = decl
                .strip_prefix("inline string FILTER_NAME = ")
                .and_then(|r| r.strip_suffix(';'))
                .unwrap();
            assert_eq!(unescape(literal), value, "round trip of {value:?}");
            // Everything else is untouched.
            let rest: Vec<_> = s.text.lines().filter(|l| *l != decl).collect();
            let orig: Vec<_> = opens()
                .source
                .lines()
                .filter(|l| !l.starts_with("inline string FILTER_NAME"))
                .collect();
            assert_eq!(rest, orig);
        }
    }

    /// A minimal D string-literal reader: the inverse of d_string_literal, and a check that
    /// the literal ends exactly at its last character.
    fn unescape(lit: &str) -> String {
        let inner = lit
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .unwrap();
        let mut out = String::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => panic!("unescaped quote inside literal {lit}"),
                '\n' => panic!("raw newline inside literal {lit}"),
                '\\' => match chars.next().unwrap() {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    d @ '0'..='7' => {
                        let mut v = d.to_digit(8).unwrap();
                        for _ in 0..2 {
                            v = v * 8 + chars.next().unwrap().to_digit(8).unwrap();
                        }
                        out.push(char::from_u32(v).unwrap());
                    }
                    other => panic!("unknown escape \\{other}"),
                },
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn integer_parameters_are_typed() {
        let s = opens()
            .instantiate(&[("FILTER_PID", Param::Int(4242))], TargetMacro::Keep)
            .unwrap();
        assert!(s.text.contains("inline int FILTER_PID = 4242;\n"));
        let err = opens()
            .instantiate(
                &[("FILTER_PID", Param::Str("1; }".into()))],
                TargetMacro::Keep,
            )
            .unwrap_err();
        assert!(matches!(err, ScriptError::ParamType { .. }));
        let err = opens()
            .instantiate(&[("FILTER_NAME", Param::Int(1))], TargetMacro::Keep)
            .unwrap_err();
        assert!(matches!(err, ScriptError::ParamType { .. }));
    }

    #[test]
    fn unknown_parameter_is_an_error() {
        let err = opens()
            .instantiate(&[("NOPE", Param::Int(1))], TargetMacro::Keep)
            .unwrap_err();
        assert_eq!(err.to_string(), "script opens has no parameter NOPE");
    }

    #[test]
    fn target_macro_is_replaced_outside_comments_and_strings_only() {
        let text = "/* $target */ python$target:::x { printf(\"$target\"); } // $target\n\
                    pid$targets:::y";
        assert_eq!(
            replace_macro(text, "$target", "42"),
            "/* $target */ python42:::x { printf(\"$target\"); } // $target\npid$targets:::y"
        );
        let s = bundled("pyflow")
            .unwrap()
            .instantiate(&[], TargetMacro::Any)
            .unwrap();
        assert!(s.text.contains("\npython*:::function-entry\n"));
        assert!(s.text.contains(" * Parameters: $target,"), "comment kept");
    }

    #[test]
    fn inline_declaration_parsing() {
        assert_eq!(
            parse_inline_decl("inline unsigned int X = 3;"),
            Some(("unsigned int", "X"))
        );
        assert_eq!(
            parse_inline_decl("  inline string S=\"\";"),
            Some(("string", "S"))
        );
        assert_eq!(parse_inline_decl("self->x = 1;"), None);
    }
}
