//! What a bundled script prints, as its presenter reads it: the contract between the two.
//!
//! A presenter does not read a `printf()`'s arguments, or an aggregation's keys, by position
//! in code scattered over the presenter. It declares, once, beside itself, the records it reads
//! with [`record!`]: a struct whose fields are named and typed in the order the script gives
//! them. Decoding checks the count and the kind of every value and says which field did not
//! fit, so that a script and its presenter that disagree are a clear error at run time, never
//! raw text passed on as if nothing were wrong.
//!
//! Each presenter also lists its records in a [`ScriptContract`]: the printf lines (told apart
//! by the text before their first conversion) and the aggregations it reads keys of. The unit
//! test below compiles every bundled script with the Linux engine's front end, where the
//! format and the type of every argument are known, and fails when a script and its contract
//! disagree in the number, order or kinds of the values, or when one prints a line or fills an
//! aggregation the other does not know.

use std::fmt;

use crate::event::{ByteString, Value};
use crate::output::text;

/// The kind of a value a presenter reads: a D integer or a D string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Str,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Int => "an integer",
            Kind::Str => "a string",
        })
    }
}

/// One value a presenter reads, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
}

/// A Rust type a field is read into, and the kind of D value it takes.
pub trait Arg: Sized {
    const KIND: Kind;
    fn read(value: &Value) -> Option<Self>;
}

impl Arg for i64 {
    const KIND: Kind = Kind::Int;
    fn read(value: &Value) -> Option<i64> {
        value.as_i64()
    }
}

/// A D string: bytes as the traced program gave them.
impl Arg for ByteString {
    const KIND: Kind = Kind::Str;
    fn read(value: &Value) -> Option<ByteString> {
        value.as_text().cloned()
    }
}

/// A record that a script and its presenter disagree on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dtk and its script disagree on {what}: {detail}")]
pub struct Mismatch {
    /// What was read: "a printf line of opens.d", "the keys of syscalls.d's @calls".
    pub what: String,
    pub detail: String,
}

impl From<Mismatch> for std::io::Error {
    /// A presenter's error: the run stops with it.
    fn from(m: Mismatch) -> std::io::Error {
        std::io::Error::other(m)
    }
}

/// Values read as a record of named, typed fields (made by [`record!`]).
pub trait Record: Sized {
    /// The fields, in the order the script gives the values.
    const FIELDS: &'static [Field];
    /// Reads `values`, which must be exactly [`Self::FIELDS`], each of its kind; `what`
    /// names the record in the error.
    fn decode(what: &str, values: &[Value]) -> Result<Self, Mismatch>;
}

/// Checks that `values` fit `fields` in count; the kinds are checked as each is read.
pub fn check_count(what: &str, fields: &[Field], values: &[Value]) -> Result<(), Mismatch> {
    if values.len() == fields.len() {
        return Ok(());
    }
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    Err(Mismatch {
        what: what.to_string(),
        detail: format!(
            "{} values, where dtk reads {} ({})",
            values.len(),
            fields.len(),
            names.join(", ")
        ),
    })
}

/// Reads the value of field number `i` of `fields`.
pub fn read<T: Arg>(
    what: &str,
    fields: &[Field],
    values: &[Value],
    i: usize,
) -> Result<T, Mismatch> {
    T::read(&values[i]).ok_or_else(|| Mismatch {
        what: what.to_string(),
        detail: format!(
            "value {} ({}) is {}, where dtk reads {}",
            i + 1,
            fields[i].name,
            shown_kind(&values[i]),
            fields[i].kind
        ),
    })
}

fn shown_kind(v: &Value) -> &'static str {
    match v {
        Value::Int(_) | Value::UInt(_) => "an integer",
        Value::Str(_) => "a string",
        Value::Stack(_) => "a stack",
        Value::Bytes(_) => "raw bytes",
    }
}

/// Declares a record a presenter reads: a struct of named, typed fields, in the order the
/// script gives them, with its [`Record`] implementation.
macro_rules! record {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::commands::contract::Record for $name {
            const FIELDS: &'static [$crate::commands::contract::Field] = &[$(
                $crate::commands::contract::Field {
                    name: stringify!($field),
                    kind: <$ty as $crate::commands::contract::Arg>::KIND,
                },
            )*];

            fn decode(
                what: &str,
                values: &[$crate::event::Value],
            ) -> Result<$name, $crate::commands::contract::Mismatch> {
                use $crate::commands::contract::{check_count, read};
                let fields = Self::FIELDS;
                check_count(what, fields, values)?;
                let mut index = 0..fields.len();
                Ok($name {
                    $($field: read::<$ty>(what, fields, values, index.next().unwrap_or_default())?,)*
                })
            }
        }
    };
}

pub(crate) use record;

/// One printf line of a script: the text before its first conversion (empty for a line that
/// starts with one), and the arguments.
#[derive(Clone, Copy, Debug)]
pub struct Line {
    pub prefix: &'static str,
    /// Read by the unit test, which holds them against the scripts.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fields: &'static [Field],
}

impl Line {
    pub const fn of<R: Record>(prefix: &'static str) -> Line {
        Line {
            prefix,
            fields: R::FIELDS,
        }
    }
}

/// One aggregation whose keys a presenter reads (held against the scripts by the unit test).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub struct Keys {
    /// The name without `@`.
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Keys {
    pub const fn of<R: Record>(name: &'static str) -> Keys {
        Keys {
            name,
            fields: R::FIELDS,
        }
    }
}

/// Everything a presenter reads of the bundled scripts it presents.
#[derive(Clone, Copy, Debug)]
pub struct ScriptContract {
    /// The bundled scripts (by name) that print these lines.
    pub scripts: &'static [&'static str],
    /// Every printf line of the scripts. A line is told by its prefix: the longest prefix
    /// its text starts with, so that a line with an empty prefix is any other line.
    pub lines: &'static [Line],
    /// The aggregations whose keys the presenter reads; others it reads only by name.
    #[cfg_attr(not(test), allow(dead_code))]
    pub keys: &'static [Keys],
}

impl ScriptContract {
    /// The line a printf's text is, by the longest prefix it starts with.
    pub fn line(&self, text: &[u8]) -> Option<&Line> {
        self.lines
            .iter()
            .filter(|l| text.starts_with(l.prefix.as_bytes()))
            .max_by_key(|l| l.prefix.len())
    }

    /// The prefix of the line a printf's text is: what a presenter tells its lines by.
    pub fn prefix_of(&self, text: &[u8]) -> Result<&'static str, Mismatch> {
        self.line(text)
            .map(|l| l.prefix)
            .ok_or_else(|| self.unknown_line(text))
    }

    /// Decodes a printf's arguments as the record `R`.
    pub fn decode<R: Record>(&self, args: &[Value]) -> Result<R, Mismatch> {
        R::decode(&format!("a printf line of {}", self.named()), args)
    }

    /// Decodes an aggregation's keys as the record `R`.
    pub fn decode_keys<R: Record>(&self, name: &str, keys: &[Value]) -> Result<R, Mismatch> {
        R::decode(&format!("the keys of {}'s @{name}", self.named()), keys)
    }

    /// A printf line of the scripts that does not hold what dtk reads from it.
    pub fn mismatch(&self, detail: String) -> Mismatch {
        Mismatch {
            what: format!("a printf line of {}", self.named()),
            detail,
        }
    }

    /// An error for a printf line that is none of the contract's.
    pub fn unknown_line(&self, text: &[u8]) -> Mismatch {
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        self.mismatch(format!("dtk knows no line like \"{}\"", text::escape(text)))
    }

    /// A process or thread id read from a printf line of the scripts.
    pub fn id(&self, name: &str, v: i64) -> Result<u32, Mismatch> {
        u32::try_from(v)
            .map_err(|_| self.mismatch(format!("{name} {v} is not a process or thread id")))
    }

    fn named(&self) -> String {
        let names: Vec<String> = self.scripts.iter().map(|s| format!("{s}.d")).collect();
        names.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::linux::d::ast::{
        Aggregate, DType, Expr, ExprKind, Function, Item, Program, Stmt,
    };
    use crate::backend::linux::d::format::{parse, Piece};
    use crate::backend::linux::d::{compile, MacroArgs};
    use crate::script::bundled;

    /// The contracts of every bundled script's presenter.
    fn contracts() -> Vec<ScriptContract> {
        vec![
            crate::commands::opens::CONTRACT,
            crate::commands::pyflow::CONTRACT,
            crate::commands::syscalls::CONTRACT,
        ]
    }

    /// A printf as the script writes it: the format's prefix, and the arguments' kinds.
    #[derive(Debug)]
    struct Written {
        prefix: String,
        format: String,
        kinds: Vec<Option<Kind>>,
    }

    /// An aggregation statement of the script: the aggregation, and its keys' kinds.
    #[derive(Debug)]
    struct Filled {
        name: String,
        kinds: Vec<Option<Kind>>,
    }

    fn kind(ty: &DType) -> Option<Kind> {
        match ty {
            DType::Int { .. } => Some(Kind::Int),
            DType::String => Some(Kind::Str),
            _ => None,
        }
    }

    fn walk<'p>(stmts: &'p [Stmt], printfs: &mut Vec<&'p [Expr]>, aggs: &mut Vec<&'p Aggregate>) {
        for s in stmts {
            match s {
                Stmt::Expr(Expr {
                    kind:
                        ExprKind::Call {
                            func: Function::Printf,
                            args,
                        },
                    ..
                }) => printfs.push(args),
                Stmt::Aggregate(a) => aggs.push(a),
                Stmt::If {
                    then, otherwise, ..
                } => {
                    walk(then, printfs, aggs);
                    walk(otherwise.as_deref().unwrap_or(&[]), printfs, aggs);
                }
                Stmt::Expr(_) => {}
            }
        }
    }

    /// The script's printf lines and its aggregations' key kinds, by name.
    fn written(program: &Program) -> (Vec<Written>, Vec<Filled>) {
        let (mut printfs, mut aggs) = (Vec::new(), Vec::new());
        for item in &program.items {
            if let Item::Clause(c) = item {
                walk(c.body.as_deref().unwrap_or(&[]), &mut printfs, &mut aggs);
            }
        }
        let lines = printfs
            .into_iter()
            .map(|args| {
                let ExprKind::Str(format) = &args[0].kind else {
                    panic!("a printf whose format is not a string literal");
                };
                let prefix = match parse(format).first() {
                    Some(Piece::Text(t)) => t.clone(),
                    _ => String::new(),
                };
                Written {
                    prefix,
                    format: format.clone(),
                    kinds: args[1..].iter().map(|a| kind(&a.ty)).collect(),
                }
            })
            .collect();
        let keys = aggs
            .into_iter()
            .map(|a| Filled {
                name: a.name.clone(),
                kinds: a.keys.iter().map(|k| kind(&k.ty)).collect(),
            })
            .collect();
        (lines, keys)
    }

    fn kinds(fields: &[Field]) -> Vec<Option<Kind>> {
        fields.iter().map(|f| Some(f.kind)).collect()
    }

    /// Every printf of a bundled script is a line its presenter knows, with the arguments in
    /// the count, order and kinds it reads; every line it knows is printed; and every
    /// aggregation whose keys it reads is filled with keys of those kinds, everywhere.
    #[test]
    fn bundled_scripts_and_their_presenters_agree() {
        let mut checked = Vec::new();
        for contract in contracts() {
            for &name in contract.scripts {
                let script = bundled(name).unwrap_or_else(|| panic!("{name}.d is not bundled"));
                let macros = MacroArgs {
                    target: Some(1),
                    ..MacroArgs::default()
                };
                let compiled = compile(&format!("{name}.d"), script.source, &macros)
                    .unwrap_or_else(|e| panic!("{name}.d does not compile: {e:?}"));
                let (lines, keys) = written(&compiled.program);
                for w in &lines {
                    let line = contract.line(w.prefix.as_bytes()).unwrap_or_else(|| {
                        panic!(
                            "{name}.d prints {:?}, which its presenter does not know",
                            w.format
                        )
                    });
                    assert_eq!(
                        w.kinds,
                        kinds(line.fields),
                        "{name}.d's printf {:?} does not give what its presenter reads: {:?}",
                        w.format,
                        line.fields
                    );
                }
                for line in contract.lines {
                    assert!(
                        lines.iter().any(|w| std::ptr::eq(
                            contract.line(w.prefix.as_bytes()).unwrap(),
                            line
                        )),
                        "{name}.d prints no line that its presenter reads as {line:?}"
                    );
                }
                for k in contract.keys {
                    let filled: Vec<_> = keys.iter().filter(|f| f.name == k.name).collect();
                    assert!(!filled.is_empty(), "{name}.d fills no @{}", k.name);
                    for f in filled {
                        assert_eq!(
                            f.kinds,
                            kinds(k.fields),
                            "{name}.d's @{} keys are not what its presenter reads: {:?}",
                            k.name,
                            k.fields
                        );
                    }
                }
                checked.push(name);
            }
        }
        checked.sort_unstable();
        let mut all: Vec<&str> = crate::script::BUNDLED.iter().map(|s| s.name).collect();
        all.sort_unstable();
        assert_eq!(checked, all, "every bundled script has a contract");
    }

    record! {
        struct Pair {
            n: i64,
            s: ByteString,
        }
    }

    #[test]
    fn a_record_reads_its_fields_by_name_and_tells_what_does_not_fit() {
        let ok = Pair::decode("t", &[Value::Int(3), Value::Str("x".into())]).unwrap();
        assert_eq!((ok.n, ok.s.as_bytes()), (3, &b"x"[..]));
        let short = Pair::decode("t.d's line", &[Value::Int(3)]).unwrap_err();
        assert_eq!(
            short.to_string(),
            "dtk and its script disagree on t.d's line: 1 values, where dtk reads 2 (n, s)"
        );
        let swapped = Pair::decode("t", &[Value::Str("x".into()), Value::Int(3)]).unwrap_err();
        assert_eq!(
            swapped.detail,
            "value 1 (n) is a string, where dtk reads an integer"
        );
    }
}
