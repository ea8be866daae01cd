//! A stable text form of a checked program, one node per line with line:column positions and
//! each expression's type. The golden tests (tests/d/*.out) compare against it.

use std::fmt::Write;

use super::ast::{
    Aggregate, Builtin, DType, Decl, Expr, ExprKind, Function, IncDecOp, Item, Program, Stmt,
    UnaryOp, VarScope, VariableKind,
};
use super::span::{locate, Span};
use crate::backend::linux::deep;

/// Renders `program` (parsed from `source`) as indented text.
pub fn dump(program: &Program, source: &str) -> String {
    let mut d = Dumper {
        out: String::new(),
        source,
    };
    for item in &program.items {
        d.item(item);
    }
    for v in &program.variables {
        let kind = match v.kind {
            VariableKind::Scalar(VarScope::Global) => "global",
            VariableKind::Scalar(VarScope::Thread) => "self",
            VariableKind::Scalar(VarScope::Clause) => "this",
            VariableKind::Aggregation => "aggregation",
        };
        let keys: Vec<String> = v.keys.iter().map(short).collect();
        let func = v.func.map_or(String::new(), |f| {
            format!(" {}()", Function::Aggregating(f).name())
        });
        let at = d.at(v.span);
        let _ = writeln!(
            d.out,
            "variable {kind} {} {}[{}]{func} {at}",
            v.name,
            short(&v.ty),
            keys.join(", ")
        );
    }
    d.out
}

struct Dumper<'a> {
    out: String,
    source: &'a str,
}

/// Compact type names: `i32`, `u64`, `str`, `*i8`, `struct psinfo_t`.
fn short(ty: &DType) -> String {
    match ty {
        DType::Unknown => "?".into(),
        DType::Void => "void".into(),
        DType::Int { bits, signed } => format!("{}{bits}", if *signed { 'i' } else { 'u' }),
        DType::String => "str".into(),
        DType::Pointer(to) => format!("*{}", short(to)),
        DType::Record { union, name } => {
            format!("{}:{name}", if *union { "union" } else { "struct" })
        }
        DType::Array(elem, n) => format!("[{n}]{}", short(elem)),
        DType::Stack => "stack".into(),
        DType::Aggregation => "agg".into(),
    }
}

fn var_name(scope: VarScope, name: &str) -> String {
    match scope {
        VarScope::Global => name.to_string(),
        VarScope::Thread => format!("self->{name}"),
        VarScope::Clause => format!("this->{name}"),
    }
}

impl Dumper<'_> {
    fn at(&self, span: Span) -> String {
        let loc = locate(self.source, span.start);
        format!("@{}:{}", loc.line, loc.column)
    }

    fn line(&mut self, depth: usize, text: &str) {
        let _ = writeln!(self.out, "{}{text}", "  ".repeat(depth));
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Pragma(p) => {
                let value = p.value.as_ref().map_or(String::new(), |v| format!("={v}"));
                let text = format!("pragma {}{value} {}", p.name, self.at(p.span));
                self.line(0, &text);
            }
            Item::Decl(d) => self.decl(d),
            Item::Clause(c) => {
                let probes: Vec<String> = c
                    .probes
                    .iter()
                    .map(|p| format!("{}:{}:{}:{}", p.provider, p.module, p.function, p.name))
                    .collect();
                let text = format!("clause {} {}", probes.join(" , "), self.at(c.span));
                self.line(0, &text);
                if let Some(pred) = &c.predicate {
                    let text = format!("predicate {}", self.expr(pred));
                    self.line(1, &text);
                }
                match &c.body {
                    Some(body) => self.stmts(1, body),
                    None => self.line(1, "default-action"),
                }
            }
        }
    }

    fn decl(&mut self, d: &Decl) {
        let keys: Vec<String> = d.keys.iter().map(short).collect();
        let keys = if keys.is_empty() {
            String::new()
        } else {
            format!("[{}]", keys.join(", "))
        };
        let value = d
            .inline
            .as_ref()
            .map_or(String::new(), |v| format!(" = {}", self.expr(v)));
        let kind = if d.inline.is_some() {
            "inline"
        } else {
            match d.scope {
                VarScope::Global => "global",
                VarScope::Thread => "self",
                VarScope::Clause => "this",
            }
        };
        let text = format!(
            "decl {kind} {} {}{keys}{value} {}",
            short(&d.ty),
            d.name,
            self.at(d.span)
        );
        self.line(0, &text);
    }

    fn stmts(&mut self, depth: usize, stmts: &[Stmt]) {
        for stmt in stmts {
            match stmt {
                Stmt::Expr(e) => {
                    let text = format!("{} {}", self.expr(e), self.at(e.span));
                    self.line(depth, &text);
                }
                Stmt::Aggregate(a) => {
                    let text = self.aggregate(a);
                    self.line(depth, &text);
                }
                Stmt::If {
                    cond,
                    then,
                    otherwise,
                    span,
                } => {
                    let text = format!("if {} {}", self.expr(cond), self.at(*span));
                    self.line(depth, &text);
                    self.stmts(depth + 1, then);
                    if let Some(o) = otherwise {
                        self.line(depth, "else");
                        self.stmts(depth + 1, o);
                    }
                }
            }
        }
    }

    fn aggregate(&self, a: &Aggregate) -> String {
        let keys: Vec<String> = a.keys.iter().map(|k| self.expr(k)).collect();
        let args: Vec<String> = a.args.iter().map(|k| self.expr(k)).collect();
        format!(
            "@{}[{}] = {}({}) {}",
            a.name,
            keys.join(", "),
            Function::Aggregating(a.func).name(),
            args.join(", "),
            self.at(a.span)
        )
    }

    fn expr(&self, e: &Expr) -> String {
        deep::recurse(|| {
            let ty = short(&e.ty);
            let list = |head: &str, parts: &[&Expr]| {
                let parts: Vec<String> = parts.iter().map(|p| self.expr(p)).collect();
                format!("({head} {}):{ty}", parts.join(" "))
            };
            match &e.kind {
                ExprKind::Int(v) if matches!(e.ty, DType::Int { signed: true, .. }) => {
                    format!("{}:{ty}", *v as i64)
                }
                ExprKind::Int(v) => format!("{v}:{ty}"),
                ExprKind::Str(s) => format!("{s:?}"),
                ExprKind::Ident(n) => format!("{n}:{ty}"),
                ExprKind::Var { name, scope } => format!("{}:{ty}", var_name(*scope, name)),
                ExprKind::Builtin(Builtin::Arg(n)) => format!("arg{n}:{ty}"),
                ExprKind::Builtin(b) => format!("{}:{ty}", format!("{b:?}").to_lowercase()),
                ExprKind::Aggregation(n) => format!("@{n}"),
                ExprKind::Unary { op, operand } => {
                    let head = match op {
                        UnaryOp::Neg => "neg",
                        UnaryOp::Plus => "plus",
                        UnaryOp::Not => "!",
                        UnaryOp::BitNot => "~",
                        UnaryOp::Deref => "deref",
                        UnaryOp::AddrOf => "addr",
                    };
                    list(head, &[operand])
                }
                ExprKind::Binary { op, lhs, rhs } => list(op.symbol(), &[lhs, rhs]),
                ExprKind::Ternary {
                    cond,
                    then,
                    otherwise,
                } => list("?:", &[cond, then, otherwise]),
                ExprKind::Assign { op, target, value } => {
                    let head = format!("{}=", op.map_or("", |o| o.symbol()));
                    list(&head, &[target, value])
                }
                ExprKind::IncDec { op, target } => {
                    let head = match op {
                        IncDecOp::PreInc => "pre++",
                        IncDecOp::PreDec => "pre--",
                        IncDecOp::PostInc => "post++",
                        IncDecOp::PostDec => "post--",
                    };
                    list(head, &[target])
                }
                ExprKind::Cast { to, expr } => list(&format!("cast {}", short(to)), &[expr]),
                ExprKind::SizeofType(t) => format!("(sizeof {}):{ty}", short(t)),
                ExprKind::SizeofExpr(x) => list("sizeof", &[x]),
                ExprKind::Stringof(x) => list("stringof", &[x]),
                ExprKind::Member {
                    base,
                    member,
                    arrow,
                } => list(
                    &format!("{}{member}", if *arrow { "->" } else { "." }),
                    &[base],
                ),
                ExprKind::Index { base, indices } => {
                    let mut parts: Vec<&Expr> = vec![base];
                    parts.extend(indices.iter());
                    list("index", &parts)
                }
                ExprKind::Call { func, args } => {
                    let parts: Vec<&Expr> = args.iter().collect();
                    if parts.is_empty() {
                        format!("({}):{ty}", func.name())
                    } else {
                        list(func.name(), &parts)
                    }
                }
            }
        })
    }
}
