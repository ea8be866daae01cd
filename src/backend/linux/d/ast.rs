//! The D abstract syntax tree. The parser builds it with every expression's type `Unknown`;
//! the checker resolves names, substitutes inlines, folds constants and fills in each
//! expression's `DType`, so the code generator can lower it without re-deriving anything.

use std::fmt;

use super::span::Span;
use super::typetable::TypeTable;
use crate::backend::linux::deep;
pub use crate::event::AggFunc;

/// A whole D program, in source order, with the variables the checker found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub items: Vec<Item>,
    /// Every global, thread-local (`self->`), clause-local (`this->`) variable and
    /// aggregation, with its type; filled by the checker.
    pub variables: Vec<Variable>,
    /// The structs, unions, enums and typedefs the program declares.
    pub types: TypeTable,
}

impl Program {
    /// The probe clauses, in source order (the indices the plan and the executor use).
    pub fn clauses(&self) -> Vec<&Clause> {
        self.items
            .iter()
            .filter_map(|item| match item {
                Item::Clause(c) => Some(c),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Pragma(Pragma),
    Decl(Decl),
    Clause(Clause),
}

/// `#pragma D option name[=value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pragma {
    pub name: String,
    pub value: Option<String>,
    pub span: Span,
}

/// A declaration: `int x;`, `uint64_t ts[int];`, `self int d;`, `this string s;` or
/// `inline int N = 3;`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decl {
    pub scope: VarScope,
    pub ty: DType,
    pub name: String,
    /// Key types of an associative array declaration (`ts[int, string]`); empty otherwise.
    pub keys: Vec<DType>,
    /// The value of an `inline` declaration.
    pub inline: Option<Expr>,
    pub span: Span,
}

/// A probe clause: descriptions, optional predicate, and the body (`None` when the clause
/// has no body, which means D's default action).
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub probes: Vec<ProbeDesc>,
    pub predicate: Option<Expr>,
    pub body: Option<Vec<Stmt>>,
    pub span: Span,
}

/// `provider:module:function:name`, after macro expansion. Globs (`*`, `?`, `[...]`) are kept
/// as text; a short form such as `BEGIN` fills the parts from the right (`:::BEGIN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDesc {
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Expr(Expr),
    /// `@name[keys] = func(args)`.
    Aggregate(Aggregate),
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Option<Vec<Stmt>>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The name without `@`; empty for the anonymous `@`.
    pub name: String,
    pub keys: Vec<Expr>,
    pub func: AggFunc,
    pub args: Vec<Expr>,
    pub span: Span,
}

/// Clone, PartialEq, Debug and Drop recurse through the tree, each level on
/// `deep::recurse`, since a long left-associative chain is a tree as deep as it is long.
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    pub ty: DType,
}

impl Clone for Expr {
    fn clone(&self) -> Expr {
        deep::recurse(|| Expr {
            kind: self.kind.clone(),
            span: self.span,
            ty: self.ty.clone(),
        })
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        deep::recurse(|| self.span == other.span && self.ty == other.ty && self.kind == other.kind)
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        deep::recurse(|| {
            f.debug_struct("Expr")
                .field("kind", &self.kind)
                .field("span", &self.span)
                .field("ty", &self.ty)
                .finish()
        })
    }
}

impl Drop for Expr {
    fn drop(&mut self) {
        let leaf = matches!(
            self.kind,
            ExprKind::Int(_)
                | ExprKind::Str(_)
                | ExprKind::Ident(_)
                | ExprKind::Var { .. }
                | ExprKind::Builtin(_)
                | ExprKind::Aggregation(_)
                | ExprKind::SizeofType(_)
        );
        if !leaf {
            let kind = std::mem::replace(&mut self.kind, ExprKind::Int(0));
            deep::recurse(move || drop(kind));
        }
    }
}

impl Expr {
    /// Calls `f` on each direct subexpression.
    pub fn for_each_child<'e>(&'e self, f: &mut impl FnMut(&'e Expr)) {
        deep::recurse(|| self.children(f));
    }

    /// Whether evaluating `self` can change state or fault in a call: an assignment, `++`,
    /// `--` or a function call anywhere in it (`sizeof`'s operand is not evaluated).
    pub fn has_side_effects(&self) -> bool {
        match &self.kind {
            ExprKind::Assign { .. } | ExprKind::IncDec { .. } | ExprKind::Call { .. } => true,
            ExprKind::SizeofExpr(_) => false,
            _ => {
                let mut any = false;
                self.for_each_child(&mut |c| any = any || c.has_side_effects());
                any
            }
        }
    }

    fn children<'e>(&'e self, f: &mut impl FnMut(&'e Expr)) {
        match &self.kind {
            ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Ident(_)
            | ExprKind::Var { .. }
            | ExprKind::Builtin(_)
            | ExprKind::Aggregation(_)
            | ExprKind::SizeofType(_) => {}
            ExprKind::Unary { operand: x, .. }
            | ExprKind::IncDec { target: x, .. }
            | ExprKind::Cast { expr: x, .. }
            | ExprKind::SizeofExpr(x)
            | ExprKind::Stringof(x)
            | ExprKind::Member { base: x, .. } => f(x),
            ExprKind::Binary { lhs, rhs, .. } => {
                f(lhs);
                f(rhs);
            }
            ExprKind::Assign { target, value, .. } => {
                f(target);
                f(value);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                f(cond);
                f(then);
                f(otherwise);
            }
            ExprKind::Index { base, indices } => {
                f(base);
                indices.iter().for_each(&mut *f);
            }
            ExprKind::Call { args, .. } => args.iter().for_each(f),
        }
    }

    /// Calls `f` on each direct subexpression, mutably.
    pub fn for_each_child_mut(&mut self, f: &mut impl FnMut(&mut Expr)) {
        deep::recurse(|| match &mut self.kind {
            ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Ident(_)
            | ExprKind::Var { .. }
            | ExprKind::Builtin(_)
            | ExprKind::Aggregation(_)
            | ExprKind::SizeofType(_) => {}
            ExprKind::Unary { operand: x, .. }
            | ExprKind::IncDec { target: x, .. }
            | ExprKind::Cast { expr: x, .. }
            | ExprKind::SizeofExpr(x)
            | ExprKind::Stringof(x)
            | ExprKind::Member { base: x, .. } => f(x),
            ExprKind::Binary { lhs: a, rhs: b, .. }
            | ExprKind::Assign {
                target: a,
                value: b,
                ..
            } => {
                f(a);
                f(b);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                f(cond);
                f(then);
                f(otherwise);
            }
            ExprKind::Index { base, indices } => {
                f(base);
                indices.iter_mut().for_each(&mut *f);
            }
            ExprKind::Call { args, .. } => args.iter_mut().for_each(f),
        })
    }

    /// Takes the kind out, to rebuild the expression from its parts (Expr has a Drop, so
    /// its fields cannot be moved out by a pattern); `Int(0)` is left in its place.
    pub fn take_kind(&mut self) -> ExprKind {
        std::mem::replace(&mut self.kind, ExprKind::Int(0))
    }

    pub fn new(kind: ExprKind, span: Span) -> Expr {
        Expr {
            kind,
            span,
            ty: DType::Unknown,
        }
    }

    /// The value of an integer constant, if this is one.
    pub fn as_int(&self) -> Option<u64> {
        match self.kind {
            ExprKind::Int(v) => Some(v),
            _ => None,
        }
    }
}

/// The string of `builtin == "text"`, `"text" != builtin` and the like (an equality test of
/// a string builtin with a constant, which the engine may decide in the kernel).
pub fn string_test<'e>(
    builtin: Builtin,
    op: BinaryOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
) -> Option<&'e str> {
    if !matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
        return None;
    }
    match (&lhs.kind, &rhs.kind) {
        (ExprKind::Builtin(b), ExprKind::Str(s)) | (ExprKind::Str(s), ExprKind::Builtin(b))
            if *b == builtin =>
        {
            Some(s)
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// An integer constant; its width and signedness are in the expression's type. The value
    /// is stored sign-extended to 64 bits for signed types.
    Int(u64),
    Str(String),
    /// A name as written; the checker replaces it with a `Var`, a `Builtin` or an inline's
    /// value.
    Ident(String),
    Var {
        name: String,
        scope: VarScope,
    },
    Builtin(Builtin),
    /// `@name` outside an aggregation statement (as in `printa(@a)`).
    Aggregation(String),
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `target = value`, or `target op= value` when `op` is set.
    Assign {
        op: Option<BinaryOp>,
        target: Box<Expr>,
        value: Box<Expr>,
    },
    IncDec {
        op: IncDecOp,
        target: Box<Expr>,
    },
    Cast {
        to: DType,
        expr: Box<Expr>,
    },
    SizeofType(DType),
    SizeofExpr(Box<Expr>),
    Stringof(Box<Expr>),
    /// `base.member` or `base->member` (`arrow`).
    Member {
        base: Box<Expr>,
        member: String,
        arrow: bool,
    },
    /// `base[i, j]`: `args[0]` or an associative array.
    Index {
        base: Box<Expr>,
        indices: Vec<Expr>,
    },
    Call {
        func: Function,
        args: Vec<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VarScope {
    Global,
    /// `self->x`: one per thread.
    Thread,
    /// `this->x`: one per clause firing.
    Clause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Plus,
    Not,
    BitNot,
    Deref,
    AddrOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncDecOp {
    PreInc,
    PreDec,
    PostInc,
    PostDec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Mul,
    Div,
    Mod,
    Add,
    Sub,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    BitAnd,
    BitXor,
    BitOr,
    And,
    /// D's logical exclusive or, `^^`.
    Xor,
    Or,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Mul => "*",
            Div => "/",
            Mod => "%",
            Add => "+",
            Sub => "-",
            Shl => "<<",
            Shr => ">>",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            Eq => "==",
            Ne => "!=",
            BitAnd => "&",
            BitXor => "^",
            BitOr => "|",
            And => "&&",
            Xor => "^^",
            Or => "||",
        }
    }

    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(self, Lt | Le | Gt | Ge | Eq | Ne)
    }

    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)
    }
}

/// A D type, as the checker assigns it to every expression.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DType {
    /// Not yet checked (the parser's placeholder).
    #[default]
    Unknown,
    Void,
    Int {
        bits: u8,
        signed: bool,
    },
    String,
    Pointer(Box<DType>),
    /// `struct name` or `union name`: its members are in the program's `TypeTable` when
    /// the program defines it; otherwise they read as 64-bit integers.
    Record {
        union: bool,
        name: String,
    },
    /// An array of a fixed number of elements (a struct member or a variable).
    Array(Box<DType>, u64),
    /// The value of `stack()` or `ustack()`.
    Stack,
    Aggregation,
}

impl DType {
    pub const INT: DType = DType::Int {
        bits: 32,
        signed: true,
    };
    pub const LONG: DType = DType::Int {
        bits: 64,
        signed: true,
    };
    pub const ULONG: DType = DType::Int {
        bits: 64,
        signed: false,
    };
    pub const CHAR: DType = DType::Int {
        bits: 8,
        signed: true,
    };

    pub fn is_integer(&self) -> bool {
        matches!(self, DType::Int { .. })
    }

    /// Integers and pointers: what D allows in arithmetic, conditions and comparisons.
    pub fn is_scalar(&self) -> bool {
        matches!(self, DType::Int { .. } | DType::Pointer(_))
    }

    /// Strings and pointers to char, which D's string functions accept.
    pub fn is_string_like(&self) -> bool {
        match self {
            DType::String => true,
            DType::Pointer(to) => matches!(**to, DType::Int { bits: 8, .. }),
            _ => false,
        }
    }

    /// Size in bytes when it is known without options (strings depend on `strsize`).
    pub fn size(&self) -> Option<u64> {
        match self {
            DType::Int { bits, .. } => Some(u64::from(*bits / 8)),
            DType::Pointer(_) => Some(8),
            _ => None,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DType::Unknown => f.write_str("<unknown>"),
            DType::Void => f.write_str("void"),
            DType::Int { bits, signed } => {
                let base = match bits {
                    8 => "char",
                    16 => "short",
                    32 => "int",
                    _ => "long",
                };
                if *signed {
                    f.write_str(base)
                } else {
                    write!(f, "unsigned {base}")
                }
            }
            DType::String => f.write_str("string"),
            DType::Pointer(to) => write!(f, "{to} *"),
            DType::Record { union, name } => {
                write!(f, "{} {name}", if *union { "union" } else { "struct" })
            }
            DType::Array(elem, n) => write!(f, "{elem} [{n}]"),
            DType::Stack => f.write_str("stack"),
            DType::Aggregation => f.write_str("aggregation"),
        }
    }
}

/// D's builtin variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Pid,
    Tid,
    Ppid,
    Uid,
    Gid,
    Execname,
    Zonename,
    Cpu,
    Timestamp,
    Vtimestamp,
    Walltimestamp,
    Probeprov,
    Probemod,
    Probefunc,
    Probename,
    /// `arg0` … `arg9`.
    Arg(u8),
    /// `args[]`, the typed arguments; indexed with `args[N]`.
    Args,
    Errno,
    Curthread,
    Stackdepth,
    Ustackdepth,
    Caller,
    Ucaller,
    Epid,
    Id,
    Curpsinfo,
    /// The process's working directory.
    Cwd,
}

/// Which of D's function families a function belongs to; decides where it may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// Records data or changes tracing state; a statement on its own, never a value.
    Action,
    /// Computes a value.
    Subroutine,
    /// Only on the right of `@agg[keys] = ...`.
    Aggregating,
}

/// The functions the front end knows, by D name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Trace,
    Printf,
    Printa,
    Exit,
    Clear,
    Trunc,
    Normalize,
    Denormalize,
    Stack,
    Ustack,
    Copyin,
    Copyinstr,
    Strlen,
    Strjoin,
    Substr,
    Strstr,
    Index,
    Rindex,
    Basename,
    Dirname,
    Lltostr,
    Tolower,
    Toupper,
    Progenyof,
    Strchr,
    Strrchr,
    Cleanpath,
    /// getmajor(dev) / getminor(dev): the kernel's MAJOR() and MINOR() of a dev_t.
    Getmajor,
    Getminor,
    Strtok,
    Rand,
    /// htons(), htonl(), htonll() and their ntoh inverses: byte order swaps of 16, 32 and 64
    /// bits (the host is little-endian; network order is big-endian).
    Htons,
    Htonl,
    Htonll,
    Ntohs,
    Ntohl,
    Ntohll,
    /// speculation(): a free speculative buffer's id, or 0.
    Speculation,
    /// speculate(id): the rest of the clause's data goes to that buffer.
    Speculate,
    /// commit(id) / discard(id): a speculative buffer's data is output / thrown away.
    Commit,
    Discard,
    /// system(format, ...): runs a shell command in the consumer (destructive).
    System,
    /// raise(signal): signals the thread that fired the probe (destructive).
    Raise,
    /// func(addr) / sym(addr): the kernel function holding an address, `module`function`.
    Func,
    /// mod(addr): the kernel module holding an address.
    Mod,
    /// ufunc(addr) / usym(addr): the function of the current process holding an address.
    Ufunc,
    /// uaddr(addr): `module`function+0xoffset` of an address of the current process.
    Uaddr,
    /// umod(addr): the file of the current process mapped at an address.
    Umod,
    /// alloca(size): scratch memory that lasts until the end of the clause.
    Alloca,
    /// bcopy(src, dst, size): copies `size` bytes into scratch memory.
    Bcopy,
    /// copyinto(addr, size, dst): copyin() into scratch memory.
    Copyinto,
    /// count(), sum(), quantize() …: the aggregating functions are the event model's list.
    Aggregating(AggFunc),
}

const FUNCTION_NAMES: &[(&str, Function)] = &[
    ("trace", Function::Trace),
    ("printf", Function::Printf),
    ("printa", Function::Printa),
    ("exit", Function::Exit),
    ("clear", Function::Clear),
    ("trunc", Function::Trunc),
    ("normalize", Function::Normalize),
    ("denormalize", Function::Denormalize),
    ("stack", Function::Stack),
    ("ustack", Function::Ustack),
    // jstack() is ustack() with Java frames annotated; this engine has no Java helper, so
    // it is ustack().
    ("jstack", Function::Ustack),
    ("copyin", Function::Copyin),
    ("copyinstr", Function::Copyinstr),
    ("strlen", Function::Strlen),
    ("strjoin", Function::Strjoin),
    ("substr", Function::Substr),
    ("strstr", Function::Strstr),
    ("index", Function::Index),
    ("rindex", Function::Rindex),
    ("basename", Function::Basename),
    ("dirname", Function::Dirname),
    ("lltostr", Function::Lltostr),
    ("tolower", Function::Tolower),
    ("toupper", Function::Toupper),
    ("progenyof", Function::Progenyof),
    ("strchr", Function::Strchr),
    ("cleanpath", Function::Cleanpath),
    ("getmajor", Function::Getmajor),
    ("getminor", Function::Getminor),
    ("strrchr", Function::Strrchr),
    ("strtok", Function::Strtok),
    ("rand", Function::Rand),
    ("htons", Function::Htons),
    ("htonl", Function::Htonl),
    ("htonll", Function::Htonll),
    ("ntohs", Function::Ntohs),
    ("ntohl", Function::Ntohl),
    ("ntohll", Function::Ntohll),
    ("speculation", Function::Speculation),
    ("speculate", Function::Speculate),
    ("commit", Function::Commit),
    ("discard", Function::Discard),
    ("system", Function::System),
    ("raise", Function::Raise),
    ("func", Function::Func),
    ("sym", Function::Func),
    ("mod", Function::Mod),
    ("ufunc", Function::Ufunc),
    ("usym", Function::Ufunc),
    ("uaddr", Function::Uaddr),
    ("umod", Function::Umod),
    ("alloca", Function::Alloca),
    ("bcopy", Function::Bcopy),
    ("copyinto", Function::Copyinto),
    ("count", Function::Aggregating(AggFunc::Count)),
    ("sum", Function::Aggregating(AggFunc::Sum)),
    ("min", Function::Aggregating(AggFunc::Min)),
    ("max", Function::Aggregating(AggFunc::Max)),
    ("avg", Function::Aggregating(AggFunc::Avg)),
    ("stddev", Function::Aggregating(AggFunc::Stddev)),
    ("quantize", Function::Aggregating(AggFunc::Quantize)),
    ("lquantize", Function::Aggregating(AggFunc::Lquantize)),
    ("llquantize", Function::Aggregating(AggFunc::Llquantize)),
];

impl Function {
    pub fn from_name(name: &str) -> Option<Function> {
        FUNCTION_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        FUNCTION_NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }

    /// The aggregating function this is, if it is one.
    pub fn aggregating(self) -> Option<AggFunc> {
        match self {
            Function::Aggregating(f) => Some(f),
            _ => None,
        }
    }

    pub fn kind(self) -> FunctionKind {
        use Function::*;
        match self {
            Trace | Printf | Printa | Exit | Clear | Trunc | Normalize | Denormalize
            | Speculate | Commit | Discard | System | Raise => FunctionKind::Action,
            Aggregating(_) => FunctionKind::Aggregating,
            _ => FunctionKind::Subroutine,
        }
    }

    /// Whether dtrace(1) refuses this action without `-w` (`-x destructive`): it changes the
    /// traced system rather than observing it.
    pub fn is_destructive(self) -> bool {
        matches!(self, Function::System | Function::Raise)
    }
}

/// A variable or aggregation the program uses, as the checker found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub name: String,
    pub kind: VariableKind,
    /// The value type (for aggregations: `Aggregation`).
    pub ty: DType,
    /// Key types of an associative array or aggregation.
    pub keys: Vec<DType>,
    /// The aggregating function, for aggregations.
    pub func: Option<AggFunc>,
    /// Where it is first declared or assigned.
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableKind {
    Scalar(VarScope),
    Aggregation,
}
