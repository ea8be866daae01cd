//! The call flow of each thread, worked out from the entries and returns CPython fires: which
//! frames are shown, their depth (which counts only shown frames), the time since the thread's
//! previous shown event, and the calls and times for --summary.
//!
//! What CPython fires differs by version, and the flow makes every version read like
//! sys.setprofile's 'call' and 'return' events:
//! - A generator's resume enters at the line it last yielded at; it is shown at the line of
//!   its `def`, which the flow learns from the return at that yield.
//! - `<module>` enters at line 0 (3.11, 3.15); a module's code starts at line 1.
//! - 3.15 also fires an entry, never returned from, when a generator function is called and
//!   makes its generator. pyflow.d leaves those out where it reads the running frame; where it
//!   cannot, such an entry is held until the thread's next event, which tells a creation from
//!   a first resume (see [`Creation`]); creations are not shown. Returns are
//!   matched to entries by function, so an entry that is never returned from cannot shift the
//!   depth of what follows.
//! - 3.15 enters some code at no line (class bodies, closures, methods using `super()`). The
//!   line is the `def` or `class` of that name in the source; when the file has several, the
//!   entry's line waits for its return (the definition above the returning line), and the
//!   thread's later lines wait with it, in order. Code no statement defines (`__annotate__`)
//!   takes the line it returns at.
//! - An exec ends a process's flow; the new program's starts at depth 0.

use std::collections::HashMap;

use super::source::SourceCache;
use super::{Kind, PyEvent};
use crate::config::FrameFilter;

/// A function's identity: its file, name and first line (the `def`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FnKey {
    pub file: String,
    pub function: String,
    pub def_line: i64,
}

/// An event to show, at its depth, with the time since the thread's previous shown event.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    pub event: PyEvent,
    pub depth: usize,
    pub delta_ns: u64,
}

/// Calls and times of one function, for --summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: u64,
    pub incl_ns: u64,
    pub excl_ns: u64,
}

/// A frame on a thread's stack.
#[derive(Clone, Debug)]
struct Frame {
    key: FnKey,
    shown: bool,
    entered_ns: u64,
    /// Time spent in shown callees, for exclusive time: a hidden callee's own time is its
    /// shown caller's, as a reader of the flow takes "exclusive" (the time in library code
    /// the function called is the function's).
    children_ns: u64,
    /// The first lines it may have, while its entry came at no line and several definitions
    /// in the file have its name.
    candidates: Vec<i64>,
    /// Where its entry waits in the thread's queue.
    queued_at: Option<usize>,
    /// It entered by resuming a generator: not a call, for --summary.
    resumed: bool,
}

/// One thread's stack, depth and held entry.
#[derive(Debug, Default)]
struct ThreadFlow {
    /// Its process.
    pid: u32,
    stack: Vec<Frame>,
    /// Shown frames on the stack: the indentation depth.
    depth: usize,
    last_ns: Option<u64>,
    /// An entry of a generator function that may be the generator's creation.
    held: Option<PyEvent>,
    /// Shown events waiting for the line of an entry among them.
    queue: Vec<Shown>,
    /// Frames on the stack whose line is not known yet.
    unplaced: usize,
}

/// The one candidate line of an entry at no line whose name no statement in its file defines:
/// its line is the line it returns at.
const AT_RETURN: i64 = -1;

/// Most events a thread's queue holds for an entry's line; past it, the line stays unknown.
const MAX_QUEUED: usize = 4096;

impl ThreadFlow {
    /// Shows `s`, or queues it behind an entry whose line is not known yet.
    fn emit(&mut self, s: Shown, out: &mut Vec<Shown>) {
        if self.unplaced == 0 {
            return out.push(s);
        }
        self.queue.push(s);
        if self.queue.len() > MAX_QUEUED {
            for frame in &mut self.stack {
                frame.candidates.clear();
                frame.queued_at = None;
            }
            self.unplaced = 0;
            out.append(&mut self.queue);
        }
    }

    /// `frame` returned at `line`: it is the last of its candidate definitions above `line`.
    fn place(&mut self, frame: &mut Frame, line: i64, out: &mut Vec<Shown>) {
        if frame.candidates.is_empty() {
            return;
        }
        let def_line = match frame.candidates[..] {
            [AT_RETURN] => line,
            _ => frame
                .candidates
                .iter()
                .copied()
                .filter(|&c| c <= line)
                .max()
                .unwrap_or(frame.candidates[0]),
        };
        frame.key.def_line = def_line;
        if let Some(at) = frame.queued_at {
            self.queue[at].event.line = def_line;
        }
        self.unplaced -= 1;
        if self.unplaced == 0 {
            out.append(&mut self.queue);
        }
    }
}

/// What the flow knows of one process's generator functions.
#[derive(Debug, Default)]
struct ProcessFlow {
    /// (file, function, line) of each return that was not at the function's first line: a
    /// resume entering at that line continues the function defined at the value.
    yield_points: HashMap<(String, String, i64), i64>,
    /// Generator functions whose generators were made and not yet started.
    unstarted: HashMap<FnKey, usize>,
    /// Whether this Python fires an entry when a generator is made (3.15).
    fires_creations: bool,
}

/// Whether a held entry made a generator or called (or resumed) the function.
#[derive(Debug, PartialEq, Eq)]
enum Creation {
    Made,
    Called,
}

pub struct Flow<'a> {
    filter: &'a FrameFilter,
    summary: bool,
    threads: HashMap<u32, ThreadFlow>,
    processes: HashMap<u32, ProcessFlow>,
    sources: SourceCache,
    /// Per process and function: whether calling it makes a generator.
    generator_functions: HashMap<(u32, FnKey), bool>,
    totals: HashMap<FnKey, Totals>,
    /// The --module names no frame has belonged to yet.
    unmatched_modules: Vec<&'a str>,
    /// The script leaves out generator creations itself, and marks resumes (3.15, from the
    /// code's flags and the frame's owner): every entry it reports is shown as it comes.
    creations_left_out: bool,
}

impl<'a> Flow<'a> {
    pub fn new(filter: &'a FrameFilter, summary: bool) -> Flow<'a> {
        Flow {
            filter,
            summary,
            threads: HashMap::new(),
            processes: HashMap::new(),
            sources: SourceCache::default(),
            generator_functions: HashMap::new(),
            totals: HashMap::new(),
            unmatched_modules: filter.modules.iter().map(String::as_str).collect(),
            creations_left_out: false,
        }
    }

    /// The script leaves out generator creations and marks resumes itself.
    pub fn creations_left_out(&mut self) {
        self.creations_left_out = true;
    }

    /// The --module names that no frame traced so far belonged to.
    pub fn unmatched_modules(&self) -> &[&'a str] {
        &self.unmatched_modules
    }

    /// Takes one event and says what to show now: up to two events (a held entry that turned
    /// out to be a call, then this event).
    /// Process `child` was forked by thread `parent` (its main thread: fork copies the
    /// calling thread only): the child's thread starts inside the frames the parent's is in
    /// now, so that its calls show at their depth and its returns from them match. Nothing
    /// changes once the child has events of its own.
    pub fn fork(&mut self, parent: u32, child: u32) {
        if self.threads.contains_key(&child) {
            return;
        }
        let Some(from) = self.threads.get(&parent) else {
            return;
        };
        let stack: Vec<Frame> = from
            .stack
            .iter()
            .map(|f| Frame {
                candidates: Vec::new(),
                queued_at: None,
                ..f.clone()
            })
            .collect();
        let thread = ThreadFlow {
            depth: from.depth,
            stack,
            ..ThreadFlow::default()
        };
        self.threads.insert(child, thread);
    }

    pub fn event(&mut self, e: PyEvent) -> Vec<Shown> {
        let mut shown = Vec::new();
        let held = self.threads.get_mut(&e.tid).and_then(|t| t.held.take());
        if let Some(h) = held {
            let verdict = self.creation(&h, Some(&e));
            self.settle(h, verdict, &mut shown);
        }
        // An exec may be any process's (the scripts report every exec): it makes no thread.
        if e.kind != Kind::Exec {
            self.threads.entry(e.tid).or_default().pid = e.pid;
        }
        match e.kind {
            Kind::Exec => self.exec(e, &mut shown),
            Kind::Entry => self.entry(e, &mut shown),
            Kind::Resume => self.resume(e, &mut shown),
            Kind::Return | Kind::Unwind | Kind::Yield => self.ret(e, &mut shown),
        }
        shown
    }

    /// The process `e.pid` replaced its program: what it ran is gone, unreturned, and what it
    /// knew of its functions with it. The exec is shown, at depth 0, if the flow followed the
    /// process (the scripts report every exec); the new program's flow starts there.
    fn exec(&mut self, mut e: PyEvent, shown: &mut Vec<Shown>) {
        if self.processes.remove(&e.pid).is_none() {
            return;
        }
        let pid = e.pid;
        let last_ns = self
            .threads
            .values()
            .filter(|t| t.pid == pid)
            .filter_map(|t| t.last_ns)
            .max();
        for thread in self.threads.values_mut().filter(|t| t.pid == pid) {
            shown.append(&mut thread.queue);
        }
        self.threads.retain(|_, t| t.pid != pid);
        self.generator_functions.retain(|(p, _), _| *p != pid);
        self.sources.forget(pid);
        let thread = self.threads.entry(e.tid).or_default();
        thread.pid = pid;
        thread.last_ns = last_ns;
        // The script gives line 0: an exec has no line.
        e.line = -1;
        let s = show(thread, e, 0);
        shown.push(s);
    }

    /// Settles every held entry: the run is over, so nothing will tell them apart any more.
    pub fn finish(&mut self) -> Vec<Shown> {
        let mut shown = Vec::new();
        let held: Vec<PyEvent> = self
            .threads
            .values_mut()
            .filter_map(|t| t.held.take())
            .collect();
        for h in held {
            let verdict = self.creation(&h, None);
            self.settle(h, verdict, &mut shown);
        }
        for thread in self.threads.values_mut() {
            shown.append(&mut thread.queue);
        }
        shown
    }

    /// The summary rows, one per shown function.
    pub fn totals(&self) -> impl Iterator<Item = (&FnKey, &Totals)> {
        self.totals.iter()
    }

    fn process(&mut self, pid: u32) -> &mut ProcessFlow {
        self.processes.entry(pid).or_default()
    }

    fn entry(&mut self, mut e: PyEvent, shown: &mut Vec<Shown>) {
        let point = (e.file.clone(), e.function.clone(), e.line);
        if let Some(&def_line) = self.process(e.pid).yield_points.get(&point) {
            e.line = def_line;
            return self.push(e, Vec::new(), shown);
        }
        if e.function == "<module>" && e.line == 0 {
            e.line = 1;
        }
        let mut candidates = Vec::new();
        if e.line < 0 {
            // Only 3.15 enters at no line, which its start-up (importlib's classes) already
            // does; that Python fires an entry when a generator is made.
            self.process(e.pid).fires_creations = true;
            if e.function != "<genexpr>" {
                candidates = self.sources.def_lines(e.pid, &e.file, &e.function);
                if let [line] = candidates[..] {
                    e.line = line;
                    candidates.clear();
                } else if candidates.is_empty() {
                    // Code no statement defines (3.14's `__annotate__`): CPython places all
                    // of it at the line of what it was made for, where it returns.
                    candidates.push(AT_RETURN);
                }
            }
        }
        if self.creations_left_out {
            return self.push(e, candidates, shown);
        }
        let sources = &mut self.sources;
        let generator = *self
            .generator_functions
            .entry((e.pid, key_of(&e)))
            .or_insert_with(|| sources.makes_generator(e.pid, &e.file, &e.function, e.line));
        if generator {
            let tid = e.tid;
            self.threads.entry(tid).or_default().held = Some(e);
        } else {
            self.push(e, candidates, shown);
        }
    }

    /// A resume is never a generator's creation. The markers enter it at the line it yielded
    /// at (3.9, 3.11): it is shown at its `def`, learnt from the return at that yield.
    fn resume(&mut self, mut e: PyEvent, shown: &mut Vec<Shown>) {
        let point = (e.file.clone(), e.function.clone(), e.line);
        if let Some(&def_line) = self.process(e.pid).yield_points.get(&point) {
            e.line = def_line;
        }
        self.push(e, Vec::new(), shown);
    }

    /// Tells a held entry of a generator function `h` apart by the thread's next event.
    fn creation(&mut self, h: &PyEvent, next: Option<&PyEvent>) -> Creation {
        let same = |n: &PyEvent| n.file == h.file && n.function == h.function;
        let process = self.processes.entry(h.pid).or_default();
        let made_before = process.unstarted.get(&key_of(h)).copied().unwrap_or(0) > 0;
        if h.function == "<genexpr>" {
            // A generator expression's creation enters at no line (3.15), its resumes at its
            // line: the line alone tells them apart.
            return if h.line < 0 {
                Creation::Made
            } else {
                Creation::Called
            };
        }
        match next {
            // The run ended (or the thread's next event was never seen).
            None => Creation::Made,
            Some(n) if !n.kind.enters() => {
                if same(n) {
                    Creation::Called
                } else {
                    // A return of another function before this one's: nothing runs in
                    // between, so this entry made a generator and went back to its caller.
                    process.fires_creations = true;
                    Creation::Made
                }
            }
            // Made, then started at once (`for x in gen()`); a 3.15 generator expression's
            // creation enters at no line, its first resume at its line. (Before 3.15, the same
            // pair is a generator whose first statement is `yield from` itself.)
            Some(n) if same(n) && (h.line < 0 || (process.fires_creations && n.line == h.line)) => {
                Creation::Made
            }
            // The caller goes on with something else: on a Python that fires creations, the
            // first entry of a generator that was not made yet is its creation.
            Some(_) if process.fires_creations && !made_before => Creation::Made,
            Some(_) => Creation::Called,
        }
    }

    fn settle(&mut self, h: PyEvent, verdict: Creation, shown: &mut Vec<Shown>) {
        let key = key_of(&h);
        let process = self.processes.entry(h.pid).or_default();
        match verdict {
            Creation::Made => *process.unstarted.entry(key).or_default() += 1,
            Creation::Called => {
                if let Some(n) = process.unstarted.get_mut(&key) {
                    *n = n.saturating_sub(1);
                }
                self.push(h, Vec::new(), shown);
            }
        }
    }

    fn push(&mut self, e: PyEvent, candidates: Vec<i64>, shown: &mut Vec<Shown>) {
        if !self.unmatched_modules.is_empty() {
            self.unmatched_modules
                .retain(|m| !super::filter::in_module(&e.file, m));
        }
        let thread = self.threads.entry(e.tid).or_default();
        let caller = thread.stack.last().map(|f| f.shown);
        let visible = self.filter.shows_frame(&e.file, caller);
        let depth = thread.depth;
        thread.depth += usize::from(visible);
        if !candidates.is_empty() {
            thread.unplaced += 1;
        }
        let queued_at = (visible && !candidates.is_empty()).then_some(thread.queue.len());
        thread.stack.push(Frame {
            key: key_of(&e),
            shown: visible,
            entered_ns: e.ts_ns,
            children_ns: 0,
            candidates,
            queued_at,
            resumed: e.kind == Kind::Resume,
        });
        if visible {
            let s = show(thread, e, depth);
            thread.emit(s, shown);
        }
    }

    fn ret(&mut self, e: PyEvent, shown: &mut Vec<Shown>) {
        let thread = self.threads.entry(e.tid).or_default();
        let matched = thread
            .stack
            .iter()
            .rposition(|f| f.key.file == e.file && f.key.function == e.function);
        let Some(at) = matched else {
            // A return from a call that began before tracing did. One at no line leaves one of
            // the interpreter's own shim frames (3.15's `__init__` cleanup), which entered
            // without an entry and is no Python function.
            let caller = thread.stack.last().map(|f| f.shown);
            if e.line >= 0 && self.filter.shows_frame(&e.file, caller) {
                let s = show(thread, e, 0);
                thread.emit(s, shown);
            }
            return;
        };
        // Frames above the match were never returned from: creations taken for calls.
        let unmatched: Vec<Frame> = thread.stack.drain(at + 1..).collect();
        for mut frame in unmatched {
            thread.depth -= usize::from(frame.shown);
            thread.place(&mut frame, e.line, shown);
            self.generator_functions.insert((e.pid, frame.key), true);
            self.processes.entry(e.pid).or_default().fires_creations = true;
        }
        let mut frame = thread
            .stack
            .pop()
            .expect("the matched frame is on the stack");
        thread.depth -= usize::from(frame.shown);
        let incl = e.ts_ns.saturating_sub(frame.entered_ns);
        if let Some(parent) = thread.stack.last_mut() {
            parent.children_ns += if frame.shown { incl } else { frame.children_ns };
        }
        let depth = thread.depth;
        if frame.shown {
            let s = show(thread, e.clone(), depth);
            thread.emit(s, shown);
        }
        thread.place(&mut frame, e.line, shown);
        if e.line != frame.key.def_line {
            let point = (e.file.clone(), e.function.clone(), e.line);
            self.process(e.pid)
                .yield_points
                .insert(point, frame.key.def_line);
        }
        if self.summary && frame.shown {
            let t = self.totals.entry(frame.key).or_default();
            t.calls += u64::from(!frame.resumed);
            t.incl_ns += incl;
            t.excl_ns += incl.saturating_sub(frame.children_ns);
        }
    }
}

fn key_of(e: &PyEvent) -> FnKey {
    FnKey {
        file: e.file.clone(),
        function: e.function.clone(),
        def_line: e.line,
    }
}

/// `e` at `depth`, timed from the thread's previous shown event.
fn show(thread: &mut ThreadFlow, event: PyEvent, depth: usize) -> Shown {
    let delta_ns = thread
        .last_ns
        .map_or(0, |last| event.ts_ns.saturating_sub(last));
    thread.last_ns = Some(event.ts_ns);
    Shown {
        event,
        depth,
        delta_ns,
    }
}
