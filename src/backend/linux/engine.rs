//! One run of the Linux engine: compile, plan, attach, then the event loop that feeds the
//! executor in timestamp order, drives BEGIN, tick-N and END, watches the target, and reports
//! drops.
//!
//! Before tick-N and END fire, the kernel aggregations are read into the executor (drained
//! ones give what was counted since the last read; see `codegen::aggregate`), so that what
//! their clauses print, clear or truncate is current. A tick's firing carries the time it
//! was due: one the loop fires late still has its own time, a period after the one before.
//!
//! The loop wakes at least every `switchrate`. Records read from the ring buffer are held
//! until then and delivered sorted by timestamp: the ring buffer is shared by all CPUs, and a
//! record reserved on one CPU can land after a later one from another, so flow output would
//! otherwise be shuffled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codegen::{self, Attached};
use super::d;
use super::d::ast::Item;
use super::exec::{Executor, Flow};
use super::firing::{Firing, ProbeKind};
use super::options::Options;
use super::plan::{self, Plan, Site};
use super::target::{Spawned, Watched};
use crate::backend::{BackendError, EventSink, Job, RunEnd, Stop};
use crate::event::{DropKind, Event, ProbeDesc, TargetExit, TargetStatus};
use crate::target::Target;

/// Where the run's target stands.
enum Traced {
    None,
    Running(Watched),
    Started(Spawned),
}

impl Traced {
    fn pid(&self) -> Option<u32> {
        match self {
            Traced::None => None,
            Traced::Running(w) => Some(w.pid()),
            Traced::Started(s) => Some(s.pid()),
        }
    }

    /// How the target ended, once it has exited (None inside: not known).
    fn exited(&mut self) -> Option<Option<TargetStatus>> {
        match self {
            Traced::None => None,
            Traced::Running(w) => w.has_exited().then(|| w.exit_status()),
            Traced::Started(s) => s.try_exit().map(Some),
        }
    }
}

fn engine_error(e: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Engine(Box::new(e))
}

/// Compiles and runs `job` until exit(), the target's exit, or `stop`.
pub fn run(job: &Job, stop: &Stop, sink: &mut dyn EventSink) -> Result<RunEnd, BackendError> {
    let mut traced = match &job.target {
        Target::None => Traced::None,
        Target::Pid(pid) => Traced::Running(Watched::new(*pid).map_err(engine_error)?),
        Target::Command(argv) => {
            Traced::Started(Spawned::start(argv, probes_in_libraries(job)).map_err(engine_error)?)
        }
    };
    let (compiled, options, plan) = prepare(job, traced.pid())?;
    let mut attached = codegen::attach(&plan, &options).map_err(engine_error)?;
    if job.dump_bpf {
        eprintln!("{}", attached.dump());
    }
    let infos = plan.probes.iter().map(|p| p.info.clone()).collect();
    let mut exec =
        Executor::new(compiled.program, infos, options.clone()).with_zones(plan.zones.clone());
    if let Traced::Started(s) = &mut traced {
        s.resume();
    }
    let mut run = Run {
        plan: &plan,
        decoder: codegen::Decoder::new(&plan),
        options: &options,
        exec: &mut exec,
        sink,
        reported_lost: 0,
        reported_lost_by_probe: Vec::new(),
        reported_agg_drops: 0,
        reported_var_drops: 0,
        bad_records: 0,
        target_exit: None,
    };
    let result = run.main_loop(&mut attached, &mut traced, stop);
    let end = run.finish(&mut attached);
    result.and(end)?;
    Ok(RunEnd {
        exit: run.exec.exit_status(),
        target: run.target_exit,
    })
}

/// The probes the job's descriptions match, for `dtk run -l`.
pub fn list(job: &Job) -> Result<Vec<Arc<ProbeDesc>>, BackendError> {
    // A command is started and held, as for a run, so that its probes can be found; it is
    // killed when `held` drops, never having run.
    let held = match &job.target {
        Target::Command(argv) => {
            Some(Spawned::start(argv, probes_in_libraries(job)).map_err(engine_error)?)
        }
        _ => None,
    };
    let target = match &job.target {
        Target::Pid(pid) => Some(Watched::new(*pid).map_err(engine_error)?.pid()),
        Target::Command(_) => held.as_ref().map(Spawned::pid),
        Target::None => None,
    };
    let (_, _, plan) = prepare(job, target)?;
    Ok(plan
        .probes
        .iter()
        .map(|p| Arc::clone(&p.info.desc))
        .collect())
}

/// Whether the program names probes that may live in the target's shared libraries: any
/// provider other than the kernel's and dtrace's own (pid, USDT). A program that does not
/// parse says no; compiling it reports the error.
fn probes_in_libraries(job: &Job) -> bool {
    const KERNEL: &[&str] = &["syscall", "proc", "profile", "tick", "dtrace", ""];
    let macros = d::MacroArgs {
        target: Some(0),
        args: job.args.clone(),
        // Only the probe descriptions matter here; argument errors are compile()'s to report.
        defaultargs: true,
    };
    d::parse(&job.script.text, &macros).is_ok_and(|program| {
        program.items.iter().any(|item| match item {
            Item::Clause(c) => c
                .probes
                .iter()
                .any(|p| !KERNEL.contains(&p.provider.as_str())),
            _ => false,
        })
    })
}

/// Compiles the job's program, resolves its options and plans its probes. Warnings are
/// printed here, before anything is attached.
fn prepare(job: &Job, target: Option<u32>) -> Result<(d::Compiled, Options, Plan), BackendError> {
    let compiled = compile(job, target)?;
    // Planning reads tracefs and the target's files, which need the same privileges as
    // tracing: say which capability is missing before a plan error could hide it.
    super::bpf::access::check().map_err(engine_error)?;
    for warning in &compiled.warnings {
        eprint!("{}", warning.render(&job.script.text));
    }
    let mut options = Options::resolve(&compiled.program, &job.options).map_err(engine_error)?;
    options.zdefs |= job.allow_empty;
    let plan = plan::resolve(&compiled.program, target, &options)
        .map_err(|e| BackendError::Compile(format!("{}: {}", job.script.name, with_causes(&e))))?;
    Ok((compiled, options, plan))
}

/// `error: cause: cause…`, as main prints an error chain: a plan error is reported as text,
/// and its causes (why a zone or a USDT probe was not found) are the useful part.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text += &format!(": {c}");
        cause = c.source();
    }
    text
}

fn compile(job: &Job, target: Option<u32>) -> Result<d::Compiled, BackendError> {
    let macros = d::MacroArgs {
        target,
        args: job.args.clone(),
        defaultargs: job.options.iter().any(|(name, _)| name == "defaultargs"),
    };
    d::compile(&job.script.name, &job.script.text, &macros).map_err(|diagnostics| {
        BackendError::Compile(format!(
            "the D program does not compile:\n{}",
            diagnostics.to_string().trim_end()
        ))
    })
}

/// The state of the event loop.
struct Run<'a> {
    plan: &'a Plan,
    decoder: codegen::Decoder<'a>,
    options: &'a Options,
    exec: &'a mut Executor,
    sink: &'a mut dyn EventSink,
    reported_lost: u64,
    /// Lost records reported so far, by probe index.
    reported_lost_by_probe: Vec<u64>,
    reported_agg_drops: u64,
    reported_var_drops: u64,
    /// Records that did not decode (never expected: a bug if it happens), reported once.
    bad_records: u64,
    /// The target's end, when the run ended with it.
    target_exit: Option<TargetExit>,
}

/// A tick-N probe's timer.
struct Tick {
    probe: u32,
    period: Duration,
    due: Instant,
    /// `due` on CLOCK_MONOTONIC: the firing's timestamp. A tick carries the time it was due,
    /// so that ticks the loop fires late, back to back, still have their own times.
    due_ns: u64,
}

/// Why the loop ended.
enum Ending {
    Exit,
    TargetExited(u32, Option<TargetStatus>),
    Stopped,
}

impl Run<'_> {
    fn main_loop(
        &mut self,
        attached: &mut Attached,
        traced: &mut Traced,
        stop: &Stop,
    ) -> Result<(), BackendError> {
        if is_exit(self.fire_user_probes(ProbeKind::Begin)?) {
            return self.end(attached, Ending::Exit);
        }
        let (start, start_ns) = (Instant::now(), monotonic_ns());
        let mut ticks: Vec<Tick> = (0u32..)
            .zip(&self.plan.probes)
            .filter_map(|(probe, p)| match p.site {
                Site::Tick { period } => Some(Tick {
                    probe,
                    period,
                    due: start + period,
                    due_ns: start_ns.saturating_add(duration_ns(period)),
                }),
                _ => None,
            })
            .collect();
        let mut batch: Vec<Firing> = Vec::new();
        let mut next_flush = Instant::now() + self.options.switchrate;
        let ending = loop {
            let now = Instant::now();
            let next_tick = ticks.iter().map(|t| t.due).min();
            let wake = next_tick.map_or(next_flush, |t| t.min(next_flush));
            let timeout = wake
                .saturating_duration_since(now)
                .min(Duration::from_millis(100));
            self.read(attached, timeout, &mut batch)?;
            if Instant::now() >= next_flush || stop.is_set() {
                if is_exit(self.deliver(&mut batch)?) {
                    break Ending::Exit;
                }
                self.report_drops(attached)?;
                next_flush = Instant::now() + self.options.switchrate;
            }
            let now = Instant::now();
            let mut due: Vec<(u64, u32)> = ticks
                .iter_mut()
                .filter(|t| t.due <= now)
                .map(|t| {
                    let at = t.due_ns;
                    t.due += t.period;
                    t.due_ns = t.due_ns.saturating_add(duration_ns(t.period));
                    (at, t.probe)
                })
                .collect();
            if !due.is_empty() {
                // Records gathered so far come before the tick.
                if is_exit(self.deliver(&mut batch)?) {
                    break Ending::Exit;
                }
                if is_exit(self.fire_ticks(attached, &mut due)?) {
                    break Ending::Exit;
                }
            }
            if stop.is_set() {
                // Records written after the read above (while the batch was delivered, say)
                // come before the stop: detach so that nothing more arrives, then deliver
                // everything the programs wrote.
                attached.detach();
                self.read(attached, Duration::ZERO, &mut batch)?;
                if is_exit(self.deliver(&mut batch)?) {
                    break Ending::Exit;
                }
                break Ending::Stopped;
            }
            if let Some(status) = traced.exited() {
                // Drain what the target produced before it exited.
                self.read(attached, Duration::ZERO, &mut batch)?;
                if is_exit(self.deliver(&mut batch)?) {
                    break Ending::Exit;
                }
                break Ending::TargetExited(traced.pid().unwrap_or(0), status);
            }
        };
        self.end(attached, ending)
    }

    /// Fires the due ticks, `(due time, probe)`, in time order, each at its own time. The
    /// kernel aggregations are read before the ticks of each time, so that what a tick
    /// prints, clears or truncates is current.
    fn fire_ticks(
        &mut self,
        attached: &mut Attached,
        due: &mut [(u64, u32)],
    ) -> Result<Flow, BackendError> {
        due.sort_unstable();
        let mut result = Flow::Continue;
        let mut read_at = None;
        for &(at, probe) in due.iter() {
            if read_at != Some(at) {
                self.refresh_kernel_aggregations(attached)?;
                read_at = Some(at);
            }
            let firing = Firing {
                ts_ns: at,
                ..self.user_firing(probe)
            };
            let flow = self.fire(firing)?;
            if is_exit(flow) {
                result = flow;
            }
        }
        Ok(result)
    }

    fn end(&mut self, attached: &mut Attached, ending: Ending) -> Result<(), BackendError> {
        if let Ending::TargetExited(pid, status) = ending {
            let exit = TargetExit { pid, status };
            self.target_exit = Some(exit);
            self.sink.event(Event::TargetExited(exit))?;
        }
        self.refresh_kernel_aggregations(attached)?;
        self.fire_user_probes(ProbeKind::End)?;
        Ok(())
    }

    /// Copies the aggregations kept in kernel maps into the executor, so that a printa in a
    /// user-space probe (tick-N, END) prints what the kernel counted so far.
    fn refresh_kernel_aggregations(&mut self, attached: &mut Attached) -> Result<(), BackendError> {
        let kernel = attached
            .read_kernel_aggregations(self.plan)
            .map_err(engine_error)?;
        for read in kernel {
            if read.increments {
                self.exec.add_kernel_aggregation(&read.name, read.entries);
            } else {
                self.exec.set_kernel_aggregation(&read.name, read.entries);
            }
        }
        Ok(())
    }

    /// Final aggregations and Done; runs even when the loop failed, so that what was
    /// gathered is printed.
    fn finish(&mut self, attached: &mut Attached) -> Result<(), BackendError> {
        self.refresh_kernel_aggregations(attached)?;
        self.report_drops(attached)?;
        self.exec.final_snapshots(self.sink)?;
        self.sink.event(Event::Done)?;
        Ok(())
    }

    /// Waits up to `timeout` for records and decodes what has arrived into `batch`.
    fn read(
        &mut self,
        attached: &mut Attached,
        timeout: Duration,
        batch: &mut Vec<Firing>,
    ) -> Result<(), BackendError> {
        let decoder = &self.decoder;
        let mut bad = 0;
        attached
            .ring_buffer()
            .poll(Some(timeout), |record| match decoder.decode(record) {
                Ok(firing) => batch.push(firing),
                Err(_) => bad += 1,
            })
            .map_err(engine_error)?;
        if bad > 0 && self.bad_records == 0 {
            eprintln!("dtk: {bad} ring-buffer records could not be decoded and were skipped");
        }
        self.bad_records += bad;
        Ok(())
    }

    /// Runs the held records in timestamp order.
    fn deliver(&mut self, batch: &mut Vec<Firing>) -> Result<Flow, BackendError> {
        batch.sort_by_key(|f| f.ts_ns);
        let mut drained = batch.drain(..);
        for firing in drained.by_ref() {
            let flow = self.fire(firing)?;
            if is_exit(flow) {
                return Ok(flow);
            }
        }
        Ok(Flow::Continue)
    }

    fn fire(&mut self, firing: Firing) -> Result<Flow, BackendError> {
        self.exec.fire(&firing, self.sink).map_err(engine_error)
    }

    /// Fires every probe of `kind` (BEGIN or END), in plan order.
    fn fire_user_probes(&mut self, kind: ProbeKind) -> Result<Flow, BackendError> {
        let probes: Vec<u32> = (0u32..)
            .zip(&self.plan.probes)
            .filter(|(_, p)| p.info.kind == kind)
            .map(|(i, _)| i)
            .collect();
        let mut result = Flow::Continue;
        for probe in probes {
            let flow = self.fire(self.user_firing(probe))?;
            if is_exit(flow) {
                result = flow;
                if kind == ProbeKind::Begin {
                    break;
                }
            }
        }
        Ok(result)
    }

    /// A firing of a probe that lives in user space, in dtk's own context.
    fn user_firing(&self, probe: u32) -> Firing {
        Firing {
            probe,
            cpu: current_cpu(),
            ts_ns: monotonic_ns(),
            pid: std::process::id(),
            tid: current_tid(),
            // SAFETY: getuid and getgid cannot fail.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            comm: "dtk".into(),
            ..Firing::default()
        }
    }

    /// Lost ring-buffer records, kernel aggregation drops and the executor's own drops, as
    /// deltas since the last report.
    fn report_drops(&mut self, attached: &Attached) -> Result<(), BackendError> {
        let lost = attached.dropped().map_err(engine_error)?;
        if lost > self.reported_lost {
            self.reported_lost = lost;
            self.report_lost_records(attached)?;
        }
        let agg = attached.aggregation_drops().map_err(engine_error)?;
        if agg > self.reported_agg_drops {
            self.sink.event(Event::Drop {
                kind: DropKind::Aggregation,
                count: agg - self.reported_agg_drops,
                probe: None,
            })?;
            self.reported_agg_drops = agg;
        }
        let vars = attached.thread_var_drops().map_err(engine_error)?;
        if vars > self.reported_var_drops {
            self.sink.event(Event::Drop {
                kind: DropKind::Dynamic,
                count: vars - self.reported_var_drops,
                probe: None,
            })?;
            self.reported_var_drops = vars;
        }
        for (kind, count) in self.exec.take_drops() {
            self.sink.event(Event::Drop {
                kind,
                count,
                probe: None,
            })?;
        }
        Ok(())
    }

    /// Lost ring-buffer records, one `Drop` per probe that lost some since the last report.
    fn report_lost_records(&mut self, attached: &Attached) -> Result<(), BackendError> {
        let by_probe = attached.dropped_by_probe().map_err(engine_error)?;
        self.reported_lost_by_probe.resize(by_probe.len(), 0);
        for (index, lost) in by_probe.into_iter().enumerate() {
            let reported = &mut self.reported_lost_by_probe[index];
            if lost > *reported {
                let count = lost - *reported;
                *reported = lost;
                self.sink.event(Event::Drop {
                    kind: DropKind::Buffer,
                    count,
                    probe: Some(Arc::clone(&self.plan.probes[index].info.desc)),
                })?;
            }
        }
        Ok(())
    }
}

fn is_exit(flow: Flow) -> bool {
    matches!(flow, Flow::Exit(_))
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn current_cpu() -> u32 {
    // SAFETY: sched_getcpu takes no arguments.
    u32::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(0)
}

fn current_tid() -> u32 {
    // SAFETY: gettid takes no arguments.
    unsafe { libc::gettid() as u32 }
}
