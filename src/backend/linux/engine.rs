//! One run of the Linux engine: compile (`d`), plan (`plan`), build the programs (`codegen`),
//! load and attach them (`load`), then the event loop that decodes records (`record`) and
//! feeds the executor (`exec`) in timestamp order, drives BEGIN, tick-N and END, watches the
//! target, and reports drops. A failure is an [`EngineError`] naming the layer that failed.
//!
//! Before tick-N and END fire, the kernel aggregations are read into the executor (drained
//! ones give what was counted since the last read; see `load`), so that what
//! their clauses print, clear or truncate is current. A tick's firing carries the time it
//! was due: one the loop fires late still has its own time, a period after the one before.
//!
//! The loop blocks in one epoll_wait (the ring buffer, and the target's pidfd) until the next
//! read is due (every `switchrate`), a tick is due, the buffer is a quarter full, the target
//! exits or a signal arrives: an idle run wakes `switchrate` times a second and no more.
//! Records are delivered at every wake, sorted by timestamp, except those younger than
//! [`REORDER_NS`], which wait for the next one: the ring buffer is shared by all CPUs, and a
//! record reserved on one CPU can land after a later one from another, so flow output would
//! otherwise be shuffled. After each delivery the sink is flushed, so that on a terminal an
//! event shows within `switchrate` + `REORDER_NS` (55 ms by default) of happening.
//!
//! A stop (Ctrl-C, `-d`, the target's exit, exit()) disarms every program in one step
//! (`load`'s gate), then drains what they recorded before it, and nothing after. Asked to
//! stop, the loop shows what is left for at most [`STOP_BUDGET`] and counts the rest
//! (`DropKind::Unshown`), since the reader can be far behind a busy target; at the target's
//! exit it shows everything. The perf events are then closed without waiting for the kernel
//! (`Attached::release`).

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codegen;
use super::d;
use super::d::ast::Item;
use super::error::EngineError;
use super::exec::{Executor, Flow};
use super::firing::{Firing, ProbeKind, ProcessState};
use super::load::{self, Attached};
use super::options::Options;
use super::plan::{self, Plan};
use super::record::{self, Decoder};
use super::target::{self, Spawned, Watched};
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

fn engine_error(e: impl Into<EngineError>) -> BackendError {
    BackendError::Linux(e.into())
}

/// Compiles and runs `job` until exit(), the target's exit, or `stop`.
pub fn run(job: &Job, stop: &Stop, sink: &mut dyn EventSink) -> Result<RunEnd, BackendError> {
    // Parsed once, before the target exists; a parse error is reported where compiling
    // reports errors, once the target is set up.
    let parsed = parse(job);
    let mut traced = match &job.target {
        Target::None => Traced::None,
        Target::Pid(pid) => Traced::Running(Watched::new(*pid).map_err(engine_error)?),
        Target::Command(argv) => {
            let libraries = parsed.as_ref().is_ok_and(probes_in_libraries);
            Traced::Started(Spawned::start(argv, libraries).map_err(engine_error)?)
        }
    };
    let (compiled, options, plan) = prepare(job, parsed?, traced.pid())?;
    let mut programs = codegen::build(&plan, &options).map_err(engine_error)?;
    let layouts = std::mem::take(&mut programs.layouts);
    // Before the ring buffer is mapped, so that the two are never resident together.
    release_free_memory();
    let mut attached = load::attach(programs).map_err(engine_error)?;
    for notice in plan.holds.iter().filter_map(|h| h.notice.as_ref()) {
        eprintln!("dtk: {notice}");
    }
    // The loop's one wait also ends when the target exits.
    let exit_fd = traced
        .pid()
        .map(target::pidfd_open)
        .transpose()
        .map_err(|e| engine_error(EngineError::Watch(e)))?;
    if let Some(fd) = &exit_fd {
        attached
            .ring_buffer()
            .wake_on(fd.as_raw_fd())
            .map_err(engine_error)?;
    }
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
        decoder: Decoder::new(&plan, layouts),
        options: &options,
        exec: &mut exec,
        sink,
        reported_lost: 0,
        reported_lost_by_probe: Vec::new(),
        reported_agg_drops: 0,
        reported_var_drops: 0,
        reported_unfollowed: 0,
        bad_records: 0,
        target_exit: None,
    };
    let result = run.main_loop(&mut attached, &mut traced, stop);
    let end = run.finish(&mut attached);
    attached.release();
    result.and(end)?;
    Ok(RunEnd {
        exit: run.exec.exit_status(),
        target: run.target_exit,
        started: match &traced {
            Traced::Started(s) => Some(s.pid()),
            _ => None,
        },
    })
}

/// The probes the job's descriptions match, for `dtk run -l`.
pub fn list(job: &Job) -> Result<Vec<Arc<ProbeDesc>>, BackendError> {
    // A command is started and held, as for a run, so that its probes can be found; it is
    // killed when `held` drops, never having run.
    let parsed = parse(job);
    let held = match &job.target {
        Target::Command(argv) => {
            let libraries = parsed.as_ref().is_ok_and(probes_in_libraries);
            Some(Spawned::start(argv, libraries).map_err(engine_error)?)
        }
        _ => None,
    };
    let target = match &job.target {
        Target::Pid(pid) => Some(Watched::new(*pid).map_err(engine_error)?.pid()),
        Target::Command(_) => held.as_ref().map(Spawned::pid),
        Target::None => None,
    };
    let (_, _, plan) = prepare(job, parsed?, target)?;
    Ok(plan
        .probes
        .iter()
        .map(|p| Arc::clone(&p.info.desc))
        .collect())
}

/// Whether the program names probes that may live in the target's shared libraries (pid,
/// USDT; see `plan::providers::in_process`). `$target` is not substituted yet: `pid$target`
/// is in a process as `pid123` is.
fn probes_in_libraries(parsed: &d::Parsed) -> bool {
    parsed.program().items.iter().any(|item| match item {
        Item::Clause(c) => c
            .probes
            .iter()
            .any(|p| plan::providers::in_process(&p.provider)),
        _ => false,
    })
}

/// Compiles the job's program, resolves its options and plans its probes. Warnings are
/// printed here, before anything is attached.
fn prepare(
    job: &Job,
    parsed: d::Parsed,
    target: Option<u32>,
) -> Result<(d::Compiled, Options, Plan), BackendError> {
    let compiled = d::finish(&job.script.name, &job.script.text, parsed, target)
        .map_err(|d| not_compiled(job, d))?;
    // Planning reads tracefs and the target's files, which need the same privileges as
    // tracing: say which capability is missing before a plan error could hide it.
    super::bpf::access::check().map_err(engine_error)?;
    for warning in &compiled.warnings {
        eprint!("{}", warning.render(&job.script.text));
    }
    let mut options = Options::resolve(&compiled.program, &job.options).map_err(engine_error)?;
    options.zdefs |= job.allow_empty;
    if let Some(cpu) = options.cpu {
        run_on_cpu(cpu).map_err(|source| engine_error(EngineError::Cpu { cpu, source }))?;
    }
    refuse_destructive(job, &compiled.program, &options)?;
    let plan_error = |e| {
        let tag = matches!(
            e,
            plan::PlanError::NoMatch { .. } | plan::PlanError::BadRate { .. }
        ) && errtags(job);
        engine_error(EngineError::Plan {
            script: job.script.name.clone(),
            tag: tag.then_some("D_PDESC_ZERO"),
            source: Box::new(e),
        })
    };
    let usdt_files = job.scope.usdt_files.as_deref();
    let mut plan =
        plan::resolve(&compiled.program, target, &options, usdt_files).map_err(plan_error)?;
    if let (true, Some(root)) = (job.scope.follow, target) {
        plan.follow_tree(root).map_err(plan_error)?;
    }
    Ok((compiled, options, plan))
}

/// A destructive action in a program that `destructive` (-w) does not allow is a compile
/// error, as in dtrace(1).
fn refuse_destructive(
    job: &Job,
    program: &d::ast::Program,
    options: &Options,
) -> Result<(), BackendError> {
    if options.destructive {
        return Ok(());
    }
    match d::first_destructive_action(program) {
        Some(mut error) => {
            error.file = job.script.name.clone();
            Err(not_compiled(
                job,
                d::Diagnostics {
                    source_text: job.script.text.clone(),
                    diagnostics: vec![error],
                    errtags: false,
                },
            ))
        }
        None => Ok(()),
    }
}

/// Parses the job's program; `$target` is substituted when it is compiled.
fn parse(job: &Job) -> Result<d::Parsed, BackendError> {
    let macros = d::MacroArgs {
        target: None,
        args: job.args.clone(),
        defaultargs: job.options.iter().any(|(name, _)| name == "defaultargs"),
    };
    d::parse_program(&job.script.name, &job.script.text, &macros).map_err(|d| not_compiled(job, d))
}

/// `-x errtags` shows each error's DTrace tag, as dtrace(1) does.
fn errtags(job: &Job) -> bool {
    job.options.iter().any(|(name, _)| name == "errtags")
}

fn not_compiled(job: &Job, mut diagnostics: d::Diagnostics) -> BackendError {
    diagnostics.errtags = errtags(job);
    engine_error(EngineError::Compile(diagnostics))
}

/// The state of the event loop.
struct Run<'a> {
    plan: &'a Plan,
    decoder: Decoder<'a>,
    options: &'a Options,
    exec: &'a mut Executor,
    sink: &'a mut dyn EventSink,
    reported_lost: u64,
    /// Lost records reported so far, by probe index.
    reported_lost_by_probe: Vec<u64>,
    reported_agg_drops: u64,
    reported_var_drops: u64,
    reported_unfollowed: u64,
    /// Records that did not decode (never expected: a bug if it happens), reported once.
    bad_records: u64,
    /// The target's end, when the run ended with it.
    target_exit: Option<TargetExit>,
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
            attached.disarm().map_err(engine_error)?;
            return self.end(attached, Ending::Exit);
        }
        self.sink.flush()?;
        let start = Instant::now();
        // Records read and not yet delivered, younger than REORDER_NS when last looked at;
        // they go out at the next wake, at most a switchrate later.
        let mut held: Vec<Firing> = Vec::new();
        let mut next_read = start + self.options.switchrate;
        let mut next_drop_report = start + DROP_REPORT_INTERVAL;
        let ending = loop {
            // Behind a busy target, the ring buffer still holds records: read on at once.
            let wake = if attached.ring_buffer().has_data() {
                Instant::now()
            } else {
                next_read
            };
            let target_ready = attached
                .ring_buffer()
                .wait(Some(wake.saturating_duration_since(Instant::now())))
                .map_err(engine_error)?;
            let now = Instant::now();
            if now >= next_read {
                next_read = now + self.options.switchrate;
            }
            if stop.is_set() {
                // Asked to stop: what is left to show is shown within STOP_BUDGET.
                let deadline = now + STOP_BUDGET;
                break match self.wind_down(attached, &mut held, Some(deadline))? {
                    Flow::Continue => Ending::Stopped,
                    Flow::Exit(_) => Ending::Exit,
                };
            }
            if let Some(status) = target_ready.then(|| traced.exited()).flatten() {
                // Everything the target did before it exited is shown.
                break match self.wind_down(attached, &mut held, None)? {
                    Flow::Continue => Ending::TargetExited(traced.pid().unwrap_or(0), status),
                    Flow::Exit(_) => Ending::Exit,
                };
            }
            let horizon = monotonic_ns().saturating_sub(REORDER_NS);
            self.read(attached, &mut held)?;
            if is_exit(self.deliver(attached, &mut held, horizon, || stop.is_set())?) {
                attached.disarm().map_err(engine_error)?;
                break Ending::Exit;
            }
            if now >= next_drop_report {
                self.report_drops(attached)?;
                next_drop_report = now + DROP_REPORT_INTERVAL;
            }
            self.sink.flush()?;
        };
        self.end(attached, ending)
    }

    /// The stop: disarms every program in one step, then delivers what they recorded before
    /// it (which the ring buffer may still hold) and nothing after, in timestamp order. With
    /// a deadline, delivery ends there, and what was left is counted as
    /// [`DropKind::Unshown`]: a stop must not take seconds when the reader is behind. What
    /// is shown is then everything up to some moment, so a flow's returns still match its
    /// entries.
    fn wind_down(
        &mut self,
        attached: &mut Attached,
        held: &mut Vec<Firing>,
        deadline: Option<Instant>,
    ) -> Result<Flow, BackendError> {
        attached.disarm().map_err(engine_error)?;
        let end = attached.ring_buffer().end();
        let out_of_time = || deadline.is_some_and(|d| Instant::now() >= d);
        let mut bad = 0;
        let (drained, flow) = loop {
            // Read and deliver in chunks, so that the deadline leaves nothing read and unshown
            // but the last chunk.
            let decoder = &self.decoder;
            let drained = attached.ring_buffer().drain(
                end,
                STOP_CHUNK,
                Instant::now() + STRAGGLER_WAIT,
                |record| push_decoded(decoder, record, held, &mut bad),
            );
            let horizon = match held.iter().map(|f| f.ts_ns).max() {
                Some(newest) if !drained => newest.saturating_sub(REORDER_NS),
                _ => u64::MAX,
            };
            let flow = self.deliver(attached, held, horizon, out_of_time)?;
            if drained || is_exit(flow) || out_of_time() {
                break (drained, flow);
            }
        };
        self.count_bad(bad);
        // What was not shown, by probe, as lost records are counted (`report_lost_records`).
        let mut unshown = vec![0u64; self.plan.probes.len()];
        let mut count = |probe: Option<u32>| {
            if let Some(n) = probe.and_then(|p| unshown.get_mut(p as usize)) {
                *n += 1;
            }
        };
        held.drain(..).for_each(|f| count(Some(f.probe)));
        if !drained {
            let ring = attached.ring_buffer();
            ring.drain(end, usize::MAX, Instant::now() + STRAGGLER_WAIT, |record| {
                count(record::probe_of(record))
            });
        }
        if is_exit(flow) {
            return Ok(flow);
        }
        for (probe, count) in self.plan.probes.iter().zip(unshown) {
            if count > 0 {
                self.sink.event(Event::Drop {
                    kind: DropKind::Unshown,
                    count,
                    probe: Some(Arc::clone(&probe.info.desc)),
                })?;
            }
        }
        Ok(flow)
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
                self.exec
                    .add_kernel_aggregation(&read.name, read.func, read.entries);
            } else {
                self.exec
                    .set_kernel_aggregation(&read.name, read.func, read.entries);
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

    /// Decodes the records available now into `held`, at most READ_BATCH of them: behind a
    /// busy target, the rest wait in the ring buffer (where, if it fills, the programs count
    /// what they cannot write), and the loop can see a stop between batches.
    fn read(
        &mut self,
        attached: &mut Attached,
        held: &mut Vec<Firing>,
    ) -> Result<(), BackendError> {
        let decoder = &self.decoder;
        let mut bad = 0;
        attached.ring_buffer().consume_some(READ_BATCH, |record| {
            push_decoded(decoder, record, held, &mut bad)
        });
        self.count_bad(bad);
        Ok(())
    }

    fn count_bad(&mut self, bad: u64) {
        if bad > 0 && self.bad_records == 0 {
            eprintln!("dtk: {bad} ring-buffer records could not be decoded and were skipped");
        }
        self.bad_records += bad;
    }

    /// Runs the held records stamped at or before `horizon`, in timestamp order, and keeps
    /// the others; stops early, keeping the rest, once `pause` says so.
    fn deliver(
        &mut self,
        attached: &mut Attached,
        held: &mut Vec<Firing>,
        horizon: u64,
        mut pause: impl FnMut() -> bool,
    ) -> Result<Flow, BackendError> {
        held.sort_by_key(|f| f.ts_ns);
        let ready = held.partition_point(|f| f.ts_ns <= horizon);
        let mut delivered = 0;
        let mut flow = Flow::Continue;
        for firing in &held[..ready] {
            if pause() {
                break;
            }
            delivered += 1;
            if self.plan.probes[firing.probe as usize].info.kind == ProbeKind::Tick {
                // What a tick prints, clears or truncates is current.
                self.refresh_kernel_aggregations(attached)?;
            }
            flow = self.fire(firing)?;
            if is_exit(flow) {
                break;
            }
        }
        held.drain(..delivered);
        Ok(flow)
    }

    fn fire(&mut self, firing: &Firing) -> Result<Flow, BackendError> {
        self.exec.fire(firing, self.sink).map_err(engine_error)
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
            let flow = self.fire(&self.user_firing(probe))?;
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
            // SAFETY: as for getuid.
            gid: unsafe { libc::getgid() },
            comm: "dtk".into(),
            process: Some(Box::new(ProcessState::own())),
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
        let unfollowed = attached.unfollowed().map_err(engine_error)?;
        if unfollowed > self.reported_unfollowed {
            self.sink.event(Event::Drop {
                kind: DropKind::Unfollowed,
                count: unfollowed - self.reported_unfollowed,
                probe: None,
            })?;
            self.reported_unfollowed = unfollowed;
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

/// How long a record is held before delivery, so that records from other CPUs stamped
/// earlier can arrive first: a program takes its timestamp a few microseconds before it
/// reserves its record.
const REORDER_NS: u64 = 5_000_000;

/// How often the drop counters are read while tracing (and once at the end): each read is a
/// few bpf() calls, and drop notices are printed at most once a second anyway.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The most records decoded per wake. Decoded firings are held on the heap until delivered,
/// so this bounds the reader's memory (about 400 bytes a firing); behind a busy target the
/// loop reads again at once.
const READ_BATCH: usize = 4 * 1024;

/// Records decoded at a time while a stop drains the ring buffer.
const STOP_CHUNK: usize = 1024;

/// How long a requested stop (Ctrl-C, `-d`) may spend showing what was recorded before it.
const STOP_BUDGET: Duration = Duration::from_millis(80);

/// At a stop, how long to wait for records that programs were still writing.
const STRAGGLER_WAIT: Duration = Duration::from_millis(20);

fn push_decoded(decoder: &Decoder<'_>, record: &[u8], held: &mut Vec<Firing>, bad: &mut u64) {
    match decoder.decode(record) {
        Ok(firing) => held.push(firing),
        Err(_) => *bad += 1,
    }
}

/// Gives the memory that setting up freed (the target's ELF files, BTF, the compiled
/// program's intermediate forms) back to the system, so that a long run keeps only what it
/// uses: the allocator would otherwise hold it for reuse.
fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of the allocator's own heap; every live
    // allocation stays where it is.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn is_exit(flow: Flow) -> bool {
    matches!(flow, Flow::Exit(_))
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

/// Keeps this thread, and the threads it starts from now on, on `cpu`: with `-x cpu=N`,
/// BEGIN, END and tick-N fire on that CPU, as they do in dtrace.
fn run_on_cpu(cpu: u32) -> std::io::Result<()> {
    let bits = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if cpu as usize >= bits {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below the set's capacity (checked above).
    unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn current_cpu() -> u32 {
    // SAFETY: sched_getcpu takes no arguments.
    u32::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(0)
}

fn current_tid() -> u32 {
    // SAFETY: gettid takes no arguments.
    unsafe { libc::gettid() as u32 }
}
