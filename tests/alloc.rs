//! Heap allocations per firing of the bundled scripts' clauses in the executor, counted by a
//! counting global allocator over 100,000 firings each. The engine runs the executor once
//! per ring-buffer record, so what it allocates here it allocates for every traced event.
//!
//! The allocator counts only on a thread that has asked it to (`Counting`), so the other
//! tests of this binary, running in parallel threads, do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use dtk::internals::d::{self, ast, MacroArgs};
use dtk::internals::event::{Event, ProbeDesc, Value};
use dtk::internals::plan::glob::matches;
use dtk::internals::script::bundled;
use dtk::internals::{CapturedString, EventSink, Executor, Firing, Flow, Options};
use dtk::internals::{MemoryRead, ProbeInfo, ProbeKind, ReadData};

struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // try_with: the thread's locals may already be gone while it exits.
    let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
    if counting {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is passed on unchanged to the system allocator; counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract for `layout` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` came from this allocator with `layout`; the caller checked new_size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made on this thread by `f`.
fn allocations_of(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// Firings per script.
const FIRINGS: u64 = 100_000;

/// A presenter's view of the events: it reads printf's arguments, keeps nothing, and so
/// allocates nothing itself.
#[derive(Default)]
struct Reader {
    printfs: u64,
    /// The printf arguments' total string length, to check that the strings arrived.
    string_bytes: usize,
    errors: u64,
}

impl EventSink for Reader {
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn event(&mut self, event: Event) -> std::io::Result<()> {
        match &event {
            Event::Printf(p) => {
                self.printfs += 1;
                self.string_bytes += p
                    .args
                    .iter()
                    .map(|a| match a {
                        Value::Str(s) => s.len(),
                        _ => 0,
                    })
                    .sum::<usize>();
            }
            Event::Error { .. } => self.errors += 1,
            _ => {}
        }
        Ok(())
    }
}

/// A probe as the plan would describe it; the clauses it runs are found by `executor`.
fn probe(provider: &str, function: &str, name: &str, kind: ProbeKind) -> ProbeInfo {
    ProbeInfo {
        desc: Arc::new(ProbeDesc {
            provider: provider.into(),
            module: String::new(),
            function: function.into(),
            name: name.into(),
        }),
        kind,
        clauses: Vec::new(),
    }
}

/// The bundled script's executor, each probe running the clauses whose descriptions match it,
/// as the plan would choose them.
fn executor(script: &str, target: Option<u32>, mut probes: Vec<ProbeInfo>) -> Executor {
    let source = bundled(script).expect("a bundled script").source;
    let args = MacroArgs {
        target,
        ..MacroArgs::default()
    };
    let program = d::compile(script, source, &args).unwrap().program;
    let clauses: Vec<_> = program
        .items
        .iter()
        .filter_map(|item| match item {
            ast::Item::Clause(c) => Some(c),
            _ => None,
        })
        .collect();
    for p in &mut probes {
        p.clauses = (0..clauses.len())
            .filter(|&i| {
                clauses[i].probes.iter().any(|d| {
                    matches(&d.provider, &p.desc.provider)
                        && matches(&d.function, &p.desc.function)
                        && matches(&d.name, &p.desc.name)
                })
            })
            .collect();
        assert!(
            !p.clauses.is_empty(),
            "no clause of {script} runs at {:?}",
            p.desc
        );
    }
    let options = Options::resolve(&program, &[]).unwrap();
    Executor::new(program, probes, options)
}

/// Fires `firings` in turn until FIRINGS have run (after one warm-up round, which may fill
/// caches and grow tables once); returns the allocations per firing and what the presenter
/// saw.
fn per_firing(exec: &mut Executor, firings: &[Firing]) -> (f64, Reader) {
    let mut reader = Reader::default();
    for f in firings {
        assert_eq!(exec.fire(f, &mut reader).unwrap(), Flow::Continue);
    }
    let mut reader = Reader::default();
    let rounds = FIRINGS / firings.len() as u64;
    let n = allocations_of(|| {
        for _ in 0..rounds {
            for f in firings {
                exec.fire(f, &mut reader).unwrap();
            }
        }
    });
    (n as f64 / (rounds * firings.len() as u64) as f64, reader)
}

const PATH: &str = "/etc/hosts";
const PATH_ADDR: u64 = 0x7f00_0000_1000;

#[test]
fn opens_d_allocations_per_firing() {
    let mut exec = executor(
        "opens",
        None,
        vec![
            probe("syscall", "openat", "entry", ProbeKind::SyscallEntry),
            probe("syscall", "openat", "return", ProbeKind::SyscallReturn),
        ],
    );
    let entry = Firing {
        probe: 0,
        pid: 42,
        tid: 42,
        comm: "cat".into(),
        args: [-100i64 as u64, PATH_ADDR, 0, 0, 0, 0, 0, 0, 0, 0],
        ..Firing::default()
    };
    let ret = Firing {
        probe: 1,
        pid: 42,
        tid: 42,
        comm: "cat".into(),
        args: [3, 3, 0, 0, 0, 0, 0, 0, 0, 0],
        reads: vec![MemoryRead {
            addr: PATH_ADDR,
            data: ReadData::String {
                value: PATH.as_bytes().into(),
                truncated: false,
            },
        }],
        ..Firing::default()
    };
    let (n, reader) = per_firing(&mut exec, &[entry, ret]);
    println!("opens.d: {n:.2} allocations per firing");
    // One printf per open, with the path (and execname and zonename) among its arguments.
    assert_eq!(reader.printfs, FIRINGS / 2);
    assert!(reader.string_bytes >= PATH.len() * (FIRINGS / 2) as usize);
    assert_eq!(reader.errors, 0);
    assert!(
        n <= OPENS_MAX,
        "opens.d: {n} allocations per firing, more than {OPENS_MAX}"
    );
}

#[test]
fn syscalls_d_allocations_per_firing() {
    let mut exec = executor(
        "syscalls",
        None,
        vec![
            probe("syscall", "read", "entry", ProbeKind::SyscallEntry),
            probe("syscall", "read", "return", ProbeKind::SyscallReturn),
        ],
    );
    let firing = |probe| Firing {
        probe,
        pid: 42,
        tid: 42,
        comm: "dd".into(),
        ..Firing::default()
    };
    let (n, reader) = per_firing(&mut exec, &[firing(0), firing(1)]);
    println!("syscalls.d: {n:.2} allocations per firing");
    assert_eq!((reader.printfs, reader.errors), (0, 0));
    assert!(
        n <= SYSCALLS_MAX,
        "syscalls.d: {n} allocations per firing, more than {SYSCALLS_MAX}"
    );
}

#[test]
fn pyflow_d_allocations_per_firing() {
    // With the default parameters (MODEL 0): the markers' arguments only.
    let mut exec = executor(
        "pyflow",
        Some(42),
        vec![
            probe("python42", "", "function-entry", ProbeKind::Usdt),
            probe("python42", "", "function-return", ProbeKind::Usdt),
        ],
    );
    let firing = |probe| Firing {
        probe,
        pid: 42,
        tid: 42,
        comm: "python3.11".into(),
        args: [0x1000, 0x2000, 12, 0, 0, 0, 0, 0, 0, 0],
        strings: vec![
            CapturedString {
                arg: 0,
                value: b"app.py".as_slice().into(),
                truncated: false,
            },
            CapturedString {
                arg: 1,
                value: b"load".as_slice().into(),
                truncated: false,
            },
        ],
        ..Firing::default()
    };
    let (n, reader) = per_firing(&mut exec, &[firing(0), firing(1)]);
    println!("pyflow.d: {n:.2} allocations per firing");
    assert_eq!(reader.printfs, FIRINGS);
    // kind, file and function in each line.
    assert_eq!(reader.string_bytes, (2 + 6 + 4) * FIRINGS as usize);
    assert_eq!(reader.errors, 0);
    assert!(
        n <= PYFLOW_MAX,
        "pyflow.d: {n} allocations per firing, more than {PYFLOW_MAX}"
    );
}

const OPENS_MAX: f64 = 6.0;
const SYSCALLS_MAX: f64 = 1.5;
const PYFLOW_MAX: f64 = 14.0;
