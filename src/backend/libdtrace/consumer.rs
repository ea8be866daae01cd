//! The consumer: what libdtrace calls back while it works (probe and record callbacks,
//! error, drop and process handlers), turning each call into events for the sink.
//!
//! Every callback is an `extern "C"` trampoline that catches panics: a panic must not
//! unwind into C. The first failure (a sink error, a panic) is kept and ends the run.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::slice;
use std::sync::Arc;

use super::aggregate;
use super::ffi;
use super::handle::{c_text, Handlers, WorkCallbacks};
use super::memstream::MemStream;
use super::platform;
use super::symbols::decode_action;
use super::LibdtraceError;
use crate::backend::EventSink;
use crate::event::{DropKind, Event, Origin, Printf, ProbeDesc, Record, TargetExit, Value};

/// A printf whose text libdtrace writes after the record callback returns.
struct PendingPrintf {
    origin: Origin,
    args: Vec<Value>,
}

/// Why the consumer stopped the run.
#[derive(Debug)]
pub enum Failure {
    Sink(io::Error),
    Libdtrace(LibdtraceError),
    Panic,
}

pub struct Consumer<'a> {
    sink: &'a mut dyn EventSink,
    out: MemStream,
    handle: *mut ffi::dtrace_hdl_t,
    probes: HashMap<u32, Arc<ProbeDesc>>,
    origin: Option<Origin>,
    values: Vec<Value>,
    pending: Option<PendingPrintf>,
    /// The -p/-c target, and whether it has exited.
    pub target: Option<u32>,
    pub target_exited: bool,
    /// The status of the last exit() consumed, which dtrace(1) exits with.
    pub exit_status: Option<i32>,
    pub failure: Option<Failure>,
}

impl<'a> Consumer<'a> {
    pub fn new(sink: &'a mut dyn EventSink, handle: *mut ffi::dtrace_hdl_t) -> io::Result<Self> {
        Ok(Consumer {
            sink,
            out: MemStream::open()?,
            handle,
            probes: HashMap::new(),
            origin: None,
            values: Vec::new(),
            pending: None,
            target: None,
            target_exited: false,
            exit_status: None,
            failure: None,
        })
    }

    pub fn stream(&self) -> *mut ffi::FILE {
        self.out.file()
    }

    /// Sends an event, keeping the first sink error.
    pub fn emit(&mut self, event: Event) {
        if self.failure.is_some() {
            return;
        }
        if let Err(e) = self.sink.event(event) {
            self.failure = Some(Failure::Sink(e));
        }
    }

    /// Writes out what the sink holds (a flush point after each dtrace_work), keeping the
    /// first sink error.
    pub fn flush(&mut self) {
        if self.failure.is_none() {
            if let Err(e) = self.sink.flush() {
                self.failure = Some(Failure::Sink(e));
            }
        }
    }

    fn probe(&mut self, data: &ffi::dtrace_probedata_t) -> c_int {
        // SAFETY: libdtrace hands a valid probe description with the probe data.
        let desc = unsafe { data.dtpda_pdesc.as_ref() };
        let probe = desc.map_or_else(|| Arc::new(ProbeDesc::default()), |d| self.probe_desc(d));
        self.origin = Some(Origin {
            probe,
            cpu: data.dtpda_cpu,
            ts_ns: monotonic_ns(),
        });
        self.values.clear();
        ffi::DTRACE_CONSUME_THIS as c_int
    }

    fn probe_desc(&mut self, d: &ffi::dtrace_probedesc_t) -> Arc<ProbeDesc> {
        let id = d.id;
        Arc::clone(self.probes.entry(id).or_insert_with(|| {
            // SAFETY: the description's strings are libdtrace's, valid during the callback.
            let [provider, module, function, name] = unsafe { platform::probe_names(d) };
            Arc::new(ProbeDesc {
                provider,
                module,
                function,
                name,
            })
        }))
    }

    /// Finishes the printf whose text libdtrace has written since the last callback.
    fn finish_printf(&mut self) {
        let text = self.out.take();
        if let Some(p) = self.pending.take() {
            self.emit(Event::Printf(Printf {
                origin: p.origin,
                traced: Printf::locate_traced(&text, &p.args),
                text: text.into(),
                args: p.args,
                printa: None,
            }));
        }
    }

    fn record(
        &mut self,
        data: &ffi::dtrace_probedata_t,
        rec: Option<&ffi::dtrace_recdesc_t>,
    ) -> c_int {
        self.finish_printf();
        let Some(rec) = rec else {
            self.end_of_clause();
            return ffi::DTRACE_CONSUME_NEXT as c_int;
        };
        // SAFETY: the data description and the clause data belong to this callback.
        let (recs, clause) = unsafe {
            let Some(ddesc) = data.dtpda_ddesc.as_ref() else {
                return ffi::DTRACE_CONSUME_NEXT as c_int;
            };
            let recs = slice::from_raw_parts(
                ddesc.dtdd_recs,
                usize::try_from(ddesc.dtdd_nrecs).unwrap_or(0),
            );
            let base = platform::clause_data(data, rec);
            // The clause's data ends with its last record (dtdd_size is not filled in on
            // every platform).
            let len = recs
                .iter()
                .map(|r| r.dtrd_offset as usize + r.dtrd_size as usize)
                .max()
                .unwrap_or(0);
            (recs, slice::from_raw_parts(base, len))
        };
        let index = recs.iter().position(|r| std::ptr::eq(r, rec)).unwrap_or(0);
        match u32::from(rec.dtrd_action) {
            ffi::DTRACEACT_PRINTF => {
                self.pending = Some(PendingPrintf {
                    origin: self.current_origin(),
                    args: printf_args(&recs[index..], clause, self.handle),
                });
                ffi::DTRACE_CONSUME_THIS as c_int
            }
            ffi::DTRACEACT_PRINTA => {
                if let Some(id) = record_bytes(clause, rec).get(..4) {
                    self.printa(u32::from_ne_bytes([id[0], id[1], id[2], id[3]]));
                }
                ffi::DTRACE_CONSUME_NEXT as c_int
            }
            ffi::DTRACEACT_EXIT => {
                // exit()'s record is its status, a 32-bit integer, as dtrace(1) reads it.
                if let Some(&[a, b, c, d]) = record_bytes(clause, rec).get(..4) {
                    self.exit_status = Some(i32::from_ne_bytes([a, b, c, d]));
                }
                ffi::DTRACE_CONSUME_NEXT as c_int
            }
            _ => {
                // SAFETY: the handle is open for the duration of the callback.
                let value = unsafe { decode_action(self.handle, rec, record_bytes(clause, rec)) };
                if let Some(value) = value {
                    self.values.push(value);
                    return ffi::DTRACE_CONSUME_NEXT as c_int;
                }
                if !matches!(
                    u32::from(rec.dtrd_action),
                    ffi::DTRACEACT_SYSTEM | ffi::DTRACEACT_FREOPEN
                ) {
                    return ffi::DTRACE_CONSUME_NEXT as c_int;
                }
                // system() and freopen() are carried out by libdtrace; what it prints is
                // delivered like printf's text.
                self.pending = Some(PendingPrintf {
                    origin: self.current_origin(),
                    args: Vec::new(),
                });
                ffi::DTRACE_CONSUME_THIS as c_int
            }
        }
    }

    /// printa(): a snapshot of one aggregation, taken now, before a trunc() or clear() later
    /// in the same clause changes it.
    fn printa(&mut self, id: u32) {
        // SAFETY: the handle is open; libdtrace's own printa walks during consumption too.
        match unsafe { aggregate::collect(self.handle, Some(id)) } {
            Ok(snapshots) => {
                for snapshot in snapshots {
                    self.emit(Event::Agg(snapshot));
                }
            }
            Err(e) => self.failure = Some(Failure::Libdtrace(e)),
        }
    }

    fn current_origin(&self) -> Origin {
        self.origin.clone().unwrap_or_else(|| Origin {
            probe: Arc::new(ProbeDesc::default()),
            cpu: 0,
            ts_ns: 0,
        })
    }

    fn end_of_clause(&mut self) {
        if self.values.is_empty() {
            return;
        }
        let values = std::mem::take(&mut self.values);
        let origin = self.current_origin();
        self.emit(Event::Record(Record {
            origin,
            values,
            formats: Vec::new(),
        }));
    }

    fn error(&mut self, err: &ffi::dtrace_errdata_t) {
        // SAFETY: the probe description, when present, is libdtrace's and valid now.
        let probe = unsafe { err.dteda_pdesc.as_ref() }.map(|d| self.probe_desc(d));
        // SAFETY: the handle is open; dtrace_faultstr returns a static string.
        let fault = unsafe { c_text(ffi::dtrace_faultstr(err.dteda_handle, err.dteda_fault)) };
        let msg = match err.dteda_addr {
            0 => format!("{fault} in action #{}", err.dteda_action),
            addr => format!("{fault} ({addr:#x}) in action #{}", err.dteda_action),
        };
        self.emit(Event::Error { probe, msg });
    }

    fn drop_report(&mut self, drop: &ffi::dtrace_dropdata_t) {
        let kind = match drop.dtdda_kind {
            ffi::dtrace_dropkind_t_DTRACEDROP_PRINCIPAL => Some(DropKind::Buffer),
            ffi::dtrace_dropkind_t_DTRACEDROP_AGGREGATION => Some(DropKind::Aggregation),
            ffi::dtrace_dropkind_t_DTRACEDROP_DYNAMIC
            | ffi::dtrace_dropkind_t_DTRACEDROP_DYNRINSE
            | ffi::dtrace_dropkind_t_DTRACEDROP_DYNDIRTY => Some(DropKind::Dynamic),
            ffi::dtrace_dropkind_t_DTRACEDROP_SPEC
            | ffi::dtrace_dropkind_t_DTRACEDROP_SPECBUSY
            | ffi::dtrace_dropkind_t_DTRACEDROP_SPECUNAVAIL => Some(DropKind::Speculation),
            _ => None,
        };
        match kind {
            Some(kind) => self.emit(Event::Drop {
                kind,
                count: drop.dtdda_drops,
                probe: None,
            }),
            // Stack-string overflows and errors in the ERROR probe have no drop kind of
            // their own: libdtrace's message says what was lost.
            None => {
                // SAFETY: dtdda_msg is NULL or a string owned by libdtrace.
                let msg = unsafe { c_text(drop.dtdda_msg) };
                self.emit(Event::Error { probe: None, msg });
            }
        }
    }

    fn process(&mut self, pid: ffi::pid_t) {
        let (pid, gone) = platform::process_event(pid);
        if gone && self.target == Some(pid) && !self.target_exited {
            self.target_exited = true;
            // libdtrace does not hand on the process's wait status.
            self.emit(Event::TargetExited(TargetExit { pid, status: None }));
        }
    }

    /// The callbacks for dtrace_work, pointing at `this`.
    pub fn callbacks(this: *mut Consumer<'a>) -> WorkCallbacks {
        WorkCallbacks {
            probe: Some(probe_trampoline),
            record: Some(record_trampoline),
            arg: this.cast(),
        }
    }

    /// The handlers, pointing at `this`.
    pub fn handlers(this: *mut Consumer<'a>) -> Handlers {
        Handlers {
            error: Some(error_trampoline),
            drop: Some(drop_trampoline),
            process: Some(process_trampoline),
            arg: this.cast(),
        }
    }
}

/// Now on CLOCK_MONOTONIC, the clock of D's `timestamp` on Linux. libdtrace hands no time
/// with the probe data, so a record's time is when dtk consumed it.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a live out-parameter; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    u64::try_from(now.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(now.tv_nsec).unwrap_or(0))
}

/// The arguments of the printf that starts at `recs[0]`: its own record and the records
/// that follow it with the same action and no format of their own.
fn printf_args(
    recs: &[ffi::dtrace_recdesc_t],
    clause: &[u8],
    handle: *mut ffi::dtrace_hdl_t,
) -> Vec<Value> {
    let Some((first, rest)) = recs.split_first() else {
        return Vec::new();
    };
    std::iter::once(first)
        .chain(
            rest.iter()
                .take_while(|r| r.dtrd_action == first.dtrd_action && r.dtrd_format.is_null()),
        )
        .filter(|r| r.dtrd_size > 0)
        // SAFETY: the handle is open for the duration of the callback.
        .filter_map(|r| unsafe { decode_action(handle, r, record_bytes(clause, r)) })
        .collect()
}

/// The bytes of one record, or nothing when the description does not fit the clause data.
fn record_bytes<'c>(clause: &'c [u8], rec: &ffi::dtrace_recdesc_t) -> &'c [u8] {
    let start = rec.dtrd_offset as usize;
    clause
        .get(start..start.saturating_add(rec.dtrd_size as usize))
        .unwrap_or(&[])
}

/// Runs `f` on the consumer behind `arg`, turning a panic into `on_panic`.
///
/// # Safety
/// `arg` is the pointer given to libdtrace by [`Consumer::callbacks`] or
/// [`Consumer::handlers`], and no other reference to the consumer is live during the call.
unsafe fn with_consumer<R>(
    arg: *mut c_void,
    on_panic: R,
    f: impl FnOnce(&mut Consumer<'_>) -> R,
) -> R {
    // SAFETY: `arg` is NULL or our consumer, borrowed by nothing else (the caller's promise).
    let Some(consumer) = (unsafe { arg.cast::<Consumer<'_>>().as_mut() }) else {
        return on_panic;
    };
    if consumer.failure.is_some() {
        return on_panic;
    }
    match catch_unwind(AssertUnwindSafe(|| f(&mut *consumer))) {
        Ok(r) => r,
        Err(_) => {
            consumer.failure = Some(Failure::Panic);
            on_panic
        }
    }
}

/// libdtrace's callback; hands the call to the consumer, catching panics.
///
/// # Safety
/// libdtrace calls it with probe data and the consumer pointer given by [`Consumer::callbacks`].
unsafe extern "C" fn probe_trampoline(
    data: *const ffi::dtrace_probedata_t,
    arg: *mut c_void,
) -> c_int {
    let abort = ffi::DTRACE_CONSUME_ABORT as c_int;
    // SAFETY: libdtrace passes valid probe data and our consumer pointer.
    unsafe {
        let Some(data) = data.as_ref() else {
            return abort;
        };
        with_consumer(arg, abort, |c| c.probe(data))
    }
}

/// libdtrace's callback; hands the call to the consumer, catching panics.
///
/// # Safety
/// libdtrace calls it with probe data, a record or NULL, and the consumer pointer given by [`Consumer::callbacks`].
unsafe extern "C" fn record_trampoline(
    data: *const ffi::dtrace_probedata_t,
    rec: *const ffi::dtrace_recdesc_t,
    arg: *mut c_void,
) -> c_int {
    let abort = ffi::DTRACE_CONSUME_ABORT as c_int;
    // SAFETY: libdtrace passes valid probe data, a record or NULL, and our pointer.
    unsafe {
        let Some(data) = data.as_ref() else {
            return abort;
        };
        with_consumer(arg, abort, |c| c.record(data, rec.as_ref()))
    }
}

/// libdtrace's callback; hands the call to the consumer, catching panics.
///
/// # Safety
/// libdtrace calls it with error data and the consumer pointer given by [`Consumer::handlers`].
unsafe extern "C" fn error_trampoline(
    err: *const ffi::dtrace_errdata_t,
    arg: *mut c_void,
) -> c_int {
    let abort = ffi::DTRACE_HANDLE_ABORT;
    // SAFETY: libdtrace passes valid error data and our pointer.
    unsafe {
        let Some(err) = err.as_ref() else {
            return abort;
        };
        with_consumer(arg, abort, |c| {
            c.error(err);
            ffi::DTRACE_HANDLE_OK as c_int
        })
    }
}

/// libdtrace's callback; hands the call to the consumer, catching panics.
///
/// # Safety
/// libdtrace calls it with drop data and the consumer pointer given by [`Consumer::handlers`].
unsafe extern "C" fn drop_trampoline(
    drop: *const ffi::dtrace_dropdata_t,
    arg: *mut c_void,
) -> c_int {
    let abort = ffi::DTRACE_HANDLE_ABORT;
    // SAFETY: libdtrace passes valid drop data and our pointer.
    unsafe {
        let Some(drop) = drop.as_ref() else {
            return abort;
        };
        with_consumer(arg, abort, |c| {
            c.drop_report(drop);
            ffi::DTRACE_HANDLE_OK as c_int
        })
    }
}

/// libdtrace's callback; hands the call to the consumer, catching panics.
///
/// # Safety
/// libdtrace calls it with the consumer pointer given by [`Consumer::handlers`].
unsafe extern "C" fn process_trampoline(pid: ffi::pid_t, _msg: *const c_char, arg: *mut c_void) {
    // SAFETY: libdtrace passes our pointer.
    unsafe { with_consumer(arg, (), |c| c.process(pid)) }
}
