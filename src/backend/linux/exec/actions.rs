//! D's actions: trace, printf, printa, exit, clear, trunc, normalize and denormalize; the
//! speculation actions (with `speculation`) and the destructive ones (`destructive`).
//!
//! A clause's actions are collected while it runs and applied in order once it completes
//! (`commit`): DTrace discards what an enabling recorded when it faults, and runs printa,
//! clear, trunc and exit in the consumer, in record order. Aggregation updates are not
//! actions and take effect at once, as they do in DTrace's aggregation buffers.

use std::io;

use super::agg::KeyPart;
use super::destructive;
use super::printf::{self, Formatted, Typed};
use super::{ExecError, Fault, Frame, State};
use crate::backend::linux::d::ast::{DType, Expr, ExprKind, Function};
use crate::backend::EventSink;
use crate::event::{
    AggFunc, AggSnapshot, AggValue, Event, Origin, PrintaRow, Printf, Record, TraceFormat, Value,
};

/// An action waiting for its clause to complete.
#[derive(Debug)]
pub enum Pending {
    Emit(Event),
    Printa(String),
    PrintaFormat {
        format: String,
        names: Vec<String>,
        origin: Origin,
    },
    Clear(String),
    /// trunc(@a) (None) or trunc(@a, n).
    Trunc(String, Option<i64>),
    /// normalize(@a, n); denormalize(@a) is n = 1.
    Normalize(String, i64),
    Exit(i32),
    /// commit(id) / discard(id) of the speculative buffer at this index.
    Commit(usize),
    Discard(usize),
    /// system(): the command line, run by the shell when the clause's data is output.
    System {
        origin: Origin,
        command: String,
    },
    /// raise(): a signal for the thread that fired the probe.
    Raise {
        pid: u32,
        tid: u32,
        signal: i32,
    },
}

/// How dtrace(1) shows a traced expression: by its integer size, or as the program's own
/// text when it is a string constant.
fn trace_format(e: &Expr) -> TraceFormat {
    match (&e.kind, &e.ty) {
        (ExprKind::Str(_), _) => TraceFormat::ProgramText,
        (_, DType::Int { .. } | DType::Pointer(_)) => {
            TraceFormat::Int(e.ty.size().map_or(8, |n| n as u8))
        }
        _ => TraceFormat::Other,
    }
}

/// The name of an aggregation argument, `@name`.
fn agg_name(e: Option<&Expr>) -> String {
    match e.map(|e| &e.kind) {
        Some(ExprKind::Aggregation(name)) => name.clone(),
        _ => String::new(),
    }
}

impl State {
    pub(super) fn action(
        &mut self,
        func: Function,
        args: &[Expr],
        f: &mut Frame<'_>,
    ) -> Result<(), Fault> {
        let pending = match func {
            Function::Trace => {
                let mut values = Vec::with_capacity(args.len());
                let mut formats = Vec::with_capacity(args.len());
                for arg in args {
                    let v = self.eval(arg, f)?;
                    let v = self.scratch_string(v, &arg.ty);
                    values.push(v.string(&arg.ty)?.to_event(&arg.ty));
                    formats.push(trace_format(arg));
                }
                self.speculative_data(&values, f)?;
                // Consecutive trace() calls make one record.
                if let Some(Pending::Emit(Event::Record(last))) = f.pending.last_mut() {
                    last.values.extend(values);
                    last.formats.extend(formats);
                    return Ok(());
                }
                Pending::Emit(Event::Record(Record {
                    origin: f.origin.clone(),
                    values,
                    formats,
                }))
            }
            Function::Printf => {
                let pending = self.printf(args, f)?;
                if let Pending::Emit(Event::Printf(p)) = &pending {
                    self.speculative_data(&p.args, f)?;
                }
                pending
            }
            Function::Speculate => {
                let id = self.int_arg(args.first(), f)? as u64;
                return self.speculate(id, f);
            }
            Function::Commit | Function::Discard => {
                let id = self.int_arg(args.first(), f)? as u64;
                match self.speculations.index(id)? {
                    Some(i) if func == Function::Commit => Pending::Commit(i),
                    Some(i) => Pending::Discard(i),
                    None => return Ok(()),
                }
            }
            Function::System => match self.printf(args, f)? {
                Pending::Emit(Event::Printf(p)) => Pending::System {
                    origin: p.origin,
                    command: String::from_utf8_lossy(p.text.as_bytes()).into_owned(),
                },
                _ => return Err(Fault::IllegalOperation),
            },
            Function::Raise => {
                let signal = self.int_arg(args.first(), f)?;
                if !(1..=64).contains(&signal) {
                    return Err(Fault::IllegalOperation);
                }
                Pending::Raise {
                    pid: f.firing.pid,
                    tid: f.firing.tid,
                    signal: signal as i32,
                }
            }
            Function::Printa => return self.printa(args, f),
            Function::Exit => {
                let status = self.int_arg(args.first(), f)?;
                Pending::Exit(status as i32)
            }
            Function::Clear => Pending::Clear(agg_name(args.first())),
            Function::Trunc => {
                let keep = match args.get(1) {
                    Some(e) => Some(self.eval(e, f)?.int() as i64),
                    None => None,
                };
                Pending::Trunc(agg_name(args.first()), keep)
            }
            Function::Normalize => {
                let n = self.int_arg(args.get(1), f)?;
                if n <= 0 {
                    return Err(Fault::IllegalOperation);
                }
                Pending::Normalize(agg_name(args.first()), n)
            }
            Function::Denormalize => Pending::Normalize(agg_name(args.first()), 1),
            _ => return self.eval_all(args, f),
        };
        self.fired(f);
        f.pending.push(pending);
        Ok(())
    }

    fn int_arg(&mut self, e: Option<&Expr>, f: &mut Frame<'_>) -> Result<i64, Fault> {
        match e {
            Some(e) => Ok(self.eval(e, f)?.int() as i64),
            None => Ok(0),
        }
    }

    fn eval_all(&mut self, args: &[Expr], f: &mut Frame<'_>) -> Result<(), Fault> {
        for arg in args {
            self.eval(arg, f)?;
        }
        Ok(())
    }

    fn printf(&mut self, args: &[Expr], f: &mut Frame<'_>) -> Result<Pending, Fault> {
        let Some((fmt, rest)) = args.split_first() else {
            return Err(Fault::IllegalOperation);
        };
        let ExprKind::Str(fmt) = &fmt.kind else {
            return Err(Fault::IllegalOperation);
        };
        let mut typed = Vec::with_capacity(rest.len());
        for arg in rest {
            typed.push(Typed {
                value: self.eval(arg, f)?,
                ty: arg.ty.clone(),
            });
        }
        let Formatted { text, traced } = printf::printf(fmt, &typed);
        let args = typed.iter().map(|t| t.value.to_event(&t.ty)).collect();
        Ok(Pending::Emit(Event::Printf(Printf {
            origin: f.origin.clone(),
            text: text.into(),
            traced,
            args,
            printa: None,
        })))
    }

    fn printa(&mut self, args: &[Expr], f: &mut Frame<'_>) -> Result<(), Fault> {
        self.fired(f);
        match args.first().map(|e| &e.kind) {
            Some(ExprKind::Str(format)) => {
                let names = args.iter().skip(1).map(|e| agg_name(Some(e))).collect();
                f.pending.push(Pending::PrintaFormat {
                    format: format.clone(),
                    names,
                    origin: f.origin.clone(),
                });
            }
            _ => {
                for arg in args {
                    f.pending.push(Pending::Printa(agg_name(Some(arg))));
                }
            }
        }
        Ok(())
    }

    /// The clause records something for this firing (an action, or DTrace's default action
    /// for a clause with an empty body, which records the firing and nothing else): unless
    /// the program is quiet, its output starts with the probe's line, as dtrace(1) prints it.
    /// A clause that only assigns variables or aggregations records nothing, and prints no
    /// line.
    pub(super) fn fired(&mut self, f: &mut Frame<'_>) {
        if !self.options.quiet && f.pending.is_empty() {
            f.pending.push(Pending::Emit(Event::FiringStart {
                origin: f.origin.clone(),
                probe_id: f.firing.probe + 1,
            }));
        }
    }

    /// Applies a completed clause's actions, in order.
    pub(super) fn commit(
        &mut self,
        pending: Vec<Pending>,
        in_end: bool,
        sink: &mut dyn EventSink,
    ) -> Result<(), ExecError> {
        self.apply_all(pending, in_end, sink)
            .map_err(ExecError::Output)
    }

    /// Applies one clause's actions, in order: when it completes, or when the speculative
    /// buffer that holds them is committed. Output that began with the probe's line (see
    /// `fired`) ends with its FiringEnd.
    fn apply_all(
        &mut self,
        pending: Vec<Pending>,
        in_end: bool,
        sink: &mut dyn EventSink,
    ) -> io::Result<()> {
        let fired = matches!(
            pending.first(),
            Some(Pending::Emit(Event::FiringStart { .. }))
        );
        for p in pending {
            self.apply(p, in_end, sink)?;
        }
        if fired {
            sink.event(Event::FiringEnd)?;
        }
        Ok(())
    }

    fn apply(&mut self, p: Pending, in_end: bool, sink: &mut dyn EventSink) -> io::Result<()> {
        match p {
            Pending::Emit(event) => sink.event(event)?,
            Pending::Printa(name) => {
                let snapshot = self.snapshot(&name);
                if !snapshot.entries.is_empty() {
                    self.printed.insert(name);
                }
                sink.event(Event::Agg(snapshot))?;
            }
            Pending::PrintaFormat {
                format,
                names,
                origin,
            } => {
                let rows = self.printa_rows(&format, &names);
                if !rows.is_empty() {
                    self.printed.extend(names.iter().cloned());
                }
                for (Formatted { text, traced }, args, row) in rows {
                    sink.event(Event::Printf(Printf {
                        origin: origin.clone(),
                        text: text.into(),
                        traced,
                        args,
                        printa: Some(row),
                    }))?;
                }
            }
            Pending::Clear(name) => self.aggs.clear(&name),
            Pending::Trunc(name, keep) => self.aggs.trunc(&name, keep),
            Pending::Normalize(name, n) => self.aggs.set_normal(&name, n),
            // The first exit() sets the status; one in END overrides it, as in dtrace(1).
            Pending::Exit(status) if in_end => self.exit = Some(status),
            Pending::Exit(status) => {
                self.exit.get_or_insert(status);
            }
            Pending::Commit(index) => {
                for clause in self.speculations.take(index) {
                    self.apply_all(clause, in_end, sink)?;
                }
            }
            Pending::Discard(index) => {
                self.speculations.take(index);
            }
            Pending::System { origin, command } => {
                let text = destructive::system(&command)?;
                sink.event(Event::Printf(Printf {
                    origin,
                    text: text.into(),
                    traced: Vec::new(),
                    args: Vec::new(),
                    printa: None,
                }))?;
            }
            Pending::Raise { pid, tid, signal } => destructive::raise(pid, tid, signal),
        }
        Ok(())
    }

    /// A snapshot of `name`, empty when it has no data yet.
    fn snapshot(&self, name: &str) -> AggSnapshot {
        self.aggs.snapshot(name).unwrap_or_else(|| AggSnapshot {
            name: name.to_string(),
            func: self.func_of(name),
            entries: Vec::new(),
            key_sizes: Vec::new(),
            sort: self.aggs.sort,
        })
    }

    pub(super) fn func_of(&self, name: &str) -> AggFunc {
        self.agg_funcs.get(name).copied().unwrap_or(AggFunc::Count)
    }

    /// The text of each row of `printa(format, @names…)`, with its arguments: the keys,
    /// then each aggregation's value where it is a number (count, sum, min, max, avg and
    /// stddev), so that a command can read fields without parsing text; and the row itself.
    fn printa_rows(
        &self,
        format: &str,
        names: &[String],
    ) -> Vec<(Formatted, Vec<Value>, PrintaRow)> {
        let funcs: Vec<_> = names.iter().map(|n| self.func_of(n)).collect();
        self.aggs
            .rows(names)
            .into_iter()
            .map(|(keys, values)| {
                let text = printf::printa_row(format, &funcs, &keys, &values);
                let keys: Vec<Value> = keys.iter().map(KeyPart::to_event).collect();
                let args = keys
                    .iter()
                    .cloned()
                    .chain(values.iter().filter_map(AggValue::scalar).map(Value::Int))
                    .collect();
                let row = PrintaRow {
                    aggregations: names.to_vec(),
                    keys,
                    values,
                };
                (text, args, row)
            })
            .collect()
    }
}
