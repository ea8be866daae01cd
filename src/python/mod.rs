//! What dtk needs to know about a CPython build to follow its calls: which file holds the
//! interpreter (the executable, or libpython for shared builds), its version, whether it has
//! the USDT function markers, and, for 3.12 to 3.14 (no markers), the layout of the
//! structures the perf-trampoline path reads (see ../shared/PYTHON.md and
//! d-scripts/pyflow-trampoline.d).
//!
//! Layouts: 3.12's are measured (gdb `ptype/o` on a 3.12.1 build with debug information);
//! 3.13 and later publish them in `_Py_DebugOffsets` at the start of `_PyRuntime`, whose
//! initial value is in the file's data, so they are read from there for the build at hand.

mod command;
pub(crate) mod tls;

use std::path::{Path, PathBuf};

use thiserror::Error;

use command::Program;

use crate::inspect::elf::{ElfError, ElfImage};
use crate::inspect::procmaps::{ProcMapsError, ProcessMaps};
use crate::inspect::returns::return_sites;
use crate::inspect::usdt::UsdtProbes;

/// CPython's bytecode evaluator: with the perf trampoline, entered once per Python call.
pub const EVAL_FRAME: &str = "_PyEval_EvalFrameDefault";

#[derive(Debug, Error)]
pub enum PythonError {
    #[error("pid {pid}: no such process")]
    NoProcess { pid: u32 },
    #[error("cannot read the mappings of pid {pid}")]
    Maps {
        pid: u32,
        #[source]
        source: ProcMapsError,
    },
    #[error(
        "{what} is not a CPython interpreter (no {EVAL_FRAME} in it or in a libpython it maps)"
    )]
    NotPython { what: String },
    #[error("pid {pid} is a zombie: it has exited, and its parent has not reaped it yet")]
    Zombie { pid: u32 },
    #[error("{what} runs Python 2 ({path}); dtk follows CPython 3 only")]
    Python2 { what: String, path: String },
    #[error("{what} is a script (#!{shebang}), not a CPython interpreter\n  hint: name the interpreter in the command, as in `dtk pyflow -c 'python3 SCRIPT.py'`")]
    Script { what: String, shebang: String },
    #[error("{shim} is a pyenv shim (a shell script) and the interpreter it runs is not known: {reason}\n  hint: name the interpreter by its path (`pyenv which python3`)")]
    Shim { shim: String, reason: String },
    #[error("--activate turns on the perf trampoline of CPython 3.14 or later through sys.remote_exec, and pid {pid} runs CPython {version}{why}")]
    CannotActivate {
        pid: u32,
        version: String,
        why: &'static str,
    },
    #[error("{path} (CPython {version}) has no function probes\n  hint: check with `readelf -n {path} | grep -A3 function__entry`; Debian's, Ubuntu's, Fedora's and Homebrew's builds have them, and ./configure --with-dtrace adds them (pyenv: PYTHON_CONFIGURE_OPTS=--with-dtrace)")]
    NoProbes { path: String, version: String },
    #[error("{path} (CPython {version}) has no function probes (CPython 3.12 removed them), and the perf trampoline is not active in pid {pid}\n  hint: run the program with `dtk pyflow -c`, which enables the perf trampoline, or start it with `python -X perf` (or PYTHONPERFSUPPORT=1){activate}")]
    TrampolineInactive {
        path: String,
        version: String,
        pid: u32,
        activate: &'static str,
    },
    #[error(
        "{path}: CPython {version}'s structure layout (_Py_DebugOffsets) is not one dtk knows"
    )]
    UnknownLayout { path: String, version: String },
    #[error("cannot run code in pid {pid} through sys.remote_exec: {reason}")]
    RemoteExec { pid: u32, reason: String },
    #[error(transparent)]
    Elf(#[from] ElfError),
}

/// A CPython version, as `Py_Version` gives it or the file name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The file that holds a process's interpreter, and what it offers.
#[derive(Debug)]
pub struct Build {
    /// The file as the process names it, for messages.
    pub shown: String,
    pub version: Option<Version>,
    /// It has the `python:function__entry` marker.
    pub markers: bool,
    /// The trampoline path's structure offsets, on 3.12 and later.
    pub layout: Option<Layout>,
    /// Where `_PyRuntime` is, on a 3.9, 3.11 or 3.15 with markers (pyflow.d reads the running
    /// thread's state through it).
    pub runtime: Option<Runtime>,
    /// On 3.15 with markers: the offsets pyflow.d follows from `_PyRuntime` to the running
    /// frame, read from the build's `_Py_DebugOffsets`.
    pub reach: Option<FrameReach>,
}

/// How pyflow.d reaches the running frame on CPython 3.15, and what it reads there: the main
/// interpreter (`_PyRuntime.interpreters.head`), the thread that holds its GIL (the one
/// running Python code, whose marker fires), its current frame, and the frame's code, owner
/// and next instruction. From the build's `_Py_DebugOffsets`, whose sections start (in
/// 64-bit words) at: runtime_state 3, interpreter_state 6, thread_state 22,
/// interpreter_frame 39, code_object 47, unicode_object 89 (read in Debian's 3.15.2, whose
/// sections show as runs of known offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameReach {
    pub interpreters_head: u64,
    pub gil_holder: u64,
    pub current_frame: u64,
    pub current_exception: u64,
    pub frame_code: u64,
    pub frame_previous: u64,
    pub frame_instr: u64,
    pub frame_owner: u64,
    pub co_flags: u64,
    pub co_filename: u64,
    pub co_name: u64,
    pub co_firstlineno: u64,
    pub str_state: u64,
    pub str_ascii_data: u64,
}

impl FrameReach {
    /// Reads the offsets of a 3.15 build's `_Py_DebugOffsets`.
    fn read(image: &ElfImage) -> Option<FrameReach> {
        let words = debug_words(
            image,
            Version {
                major: 3,
                minor: 15,
            },
            93,
        )?;
        // The word after the version says whether the build is free-threaded: there, no one
        // thread holds a GIL, and the running thread cannot be found this way.
        if words[2] != 0 {
            return None;
        }
        let (interp, thread, frame, code, unicode) = (6, 22, 39, 47, 89);
        Some(FrameReach {
            interpreters_head: words[5],
            // interpreter_state: size, id, next, threads_head, threads_main, gc,
            // imports_modules, sysdict, builtins, ceval_gil, gil_runtime_state, its enabled,
            // locked and holder, …
            gil_holder: words[interp + 13],
            // thread_state: size, prev, next, interp, current_frame, …, current_exception
            // (the 15th field).
            current_frame: words[thread + 4],
            current_exception: words[thread + 14],
            // interpreter_frame: size, previous, executable, instr_ptr, localsplus, owner.
            frame_previous: words[frame + 1],
            frame_code: words[frame + 2],
            frame_instr: words[frame + 3],
            frame_owner: words[frame + 5],
            // code_object: size, filename, name, qualname, linetable, firstlineno, argcount;
            // co_flags sits just before co_argcount.
            co_filename: words[code + 1],
            co_name: words[code + 2],
            co_firstlineno: words[code + 5],
            co_flags: words[code + 6].checked_sub(4)?,
            // unicode_object: size, state, length, asciiobject_size.
            str_state: words[unicode + 1],
            str_ascii_data: words[unicode + 3],
        })
    }
}

/// `_PyRuntime` in the interpreter's file (in .data or .bss).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runtime {
    /// Its address in the file's own terms.
    pub address: u64,
    /// The address of the file's start (see `ElfImage::start_address`).
    pub start: u64,
    /// Loaded where it says (ET_EXEC: Debian's and Ubuntu's /usr/bin/python3.X).
    pub fixed: bool,
}

impl Runtime {
    /// Its address in a process that maps the file's start at `loaded` (None: not known).
    fn in_process(&self, loaded: Option<u64>) -> Option<u64> {
        if self.fixed {
            return Some(self.address);
        }
        Some(self.address.checked_sub(self.start)? + loaded?)
    }
}

/// What d-scripts/pyflow.d reads on CPython 3.9 and 3.11 to tell yields, resumes and unwinds
/// apart: where the pointer to the running thread's state is in the process, and the offsets
/// of the version's structures (gdb `ptype/o` of _PyRuntimeState, PyThreadState and
/// PyFrameObject on 3.9.18, and of _PyCFrame, _PyInterpreterFrame and PyGenObject on 3.11.7;
/// checked against Debian's 3.9.2 and 3.11.2 by the `pyflow_matches_setprofile_*` tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkerLayout {
    pub minor: u8,
    /// 3.9 and 3.11: where the pointer to the running thread's state is; 3.15: where the
    /// pointer to the main interpreter is (`_PyRuntime.interpreters.head`).
    pub tstate_current: u64,
    /// 3.15: the way from there to the running frame.
    pub reach: Option<FrameReach>,
}

/// _PyRuntimeState.gilstate.tstate_current, by minor version.
fn runtime_tstate_current(minor: u8) -> Option<u64> {
    match minor {
        9 => Some(0x238),
        11 => Some(0x240),
        _ => None,
    }
}

impl MarkerLayout {
    /// The parameters of pyflow.d.
    pub fn params(&self) -> Vec<(&'static str, u64)> {
        let mut params = vec![("TSTATE_CURRENT", self.tstate_current)];
        if let Some(r) = self.reach {
            params.extend([
                ("MODEL", 3),
                ("GIL_HOLDER", r.gil_holder),
                ("TS_CFRAME", 0),
                ("CF_CURRENT_FRAME", r.current_frame),
                ("TS_CUREXC", r.current_exception),
                ("FRAME_CODE", r.frame_code),
                ("FRAME_PREVIOUS", r.frame_previous),
                ("FRAME_PREV_INSTR", r.frame_instr),
                ("FRAME_OWNER", r.frame_owner),
                ("CO_FLAGS", r.co_flags),
                ("CO_FILENAME", r.co_filename),
                ("CO_NAME", r.co_name),
                ("CO_FIRSTLINENO", r.co_firstlineno),
                ("STR_STATE", r.str_state),
                ("STR_ASCII_DATA", r.str_ascii_data),
                // 3.15's opcodes (Lib/_opcode_metadata.py): RESUME, its specialisations
                // RESUME_CHECK and RESUME_CHECK_JIT, and INSTRUMENTED_RESUME.
                ("RESUME", 128),
                ("RESUME_QUICK", 200),
                ("RESUME_JIT", 201),
                ("RESUME_INSTRUMENTED", 244),
            ]);
        } else if self.minor == 9 {
            params.extend([
                ("MODEL", 1),
                ("TS_CFRAME", 0),
                ("CF_CURRENT_FRAME", 0x18),
                ("TS_CUREXC", 0x58),
                ("FRAME_LASTI", 0x68),
                ("FRAME_STACKTOP", 0x48),
            ]);
        } else {
            params.extend([
                ("MODEL", 2),
                ("TS_CFRAME", 56),
                ("CF_CURRENT_FRAME", 8),
                ("TS_CUREXC", 96),
                ("FRAME_PREV_INSTR", 56),
                ("FRAME_OWNER", 69),
                ("GEN_IFRAME", 80),
                ("GEN_FRAME_STATE", 75),
                ("RESUME", 151),
                ("RESUME_QUICK", 150),
                ("YIELD_VALUE", 86),
            ]);
        }
        params
    }
}

/// How pyflow follows calls in a build.
#[derive(Debug, PartialEq, Eq)]
pub enum FlowSource {
    /// The USDT markers (d-scripts/pyflow.d).
    Markers,
    /// The perf trampoline (d-scripts/pyflow-trampoline.d) with these offsets.
    Trampoline(Layout),
}

/// Offsets read by d-scripts/pyflow-trampoline.d (its parameters of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub frame_code: u64,
    pub code_tag_bits: u64,
    pub frame_owner: u64,
    pub co_flags: u64,
    pub co_filename: u64,
    pub co_name: u64,
    pub co_firstlineno: u64,
    pub str_state: u64,
    pub str_ascii_data: u64,
    pub str_utf8: u64,
    /// PyThreadState.cframe on 3.12; 0 where the thread state holds the current frame.
    pub ts_cframe: u64,
    /// current_frame in _PyCFrame (3.12) or in PyThreadState (3.13+).
    pub current_frame: u64,
    /// gi_iframe and gi_frame_state in a generator object.
    pub gen_iframe: u64,
    pub gen_frame_state: u64,
    /// How many nested calls of a thread the evaluator's return probe follows: any depth
    /// (`DEEPEST`) where its return instructions are known and each gets a uprobe, else the
    /// kernel's 64 uretprobes (`inspect::returns`).
    pub max_depth: u64,
}

/// The deepest nesting pyflow-trampoline.d follows when the evaluator's returns are uprobes:
/// far past CPython's default recursion limit (1,000); deeper calls are counted, not shown.
pub const DEEPEST: u64 = 100_000;

/// The kernel's MAX_URETPROBE_DEPTH: uretprobes on at most this many nested calls of a thread.
pub const URETPROBE_DEPTH: u64 = 64;

impl Layout {
    /// The parameters of pyflow-trampoline.d.
    pub fn params(&self) -> [(&'static str, u64); 15] {
        [
            ("FRAME_CODE", self.frame_code),
            ("CODE_TAG_BITS", self.code_tag_bits),
            ("FRAME_OWNER", self.frame_owner),
            ("CO_FLAGS", self.co_flags),
            ("CO_FILENAME", self.co_filename),
            ("CO_NAME", self.co_name),
            ("CO_FIRSTLINENO", self.co_firstlineno),
            ("STR_STATE", self.str_state),
            ("STR_ASCII_DATA", self.str_ascii_data),
            ("STR_UTF8", self.str_utf8),
            ("TS_CFRAME", self.ts_cframe),
            ("CURRENT_FRAME", self.current_frame),
            ("GEN_IFRAME", self.gen_iframe),
            ("GEN_FRAME_STATE", self.gen_frame_state),
            ("MAX_DEPTH", self.max_depth),
        ]
    }
}

/// CPython 3.12 on 64-bit Linux (gdb `ptype/o` of _PyInterpreterFrame, PyCodeObject,
/// PyASCIIObject, PyThreadState, _PyCFrame and PyGenObject on 3.12.1).
const LAYOUT_3_12: Layout = Layout {
    frame_code: 0,
    code_tag_bits: 0,
    frame_owner: 70,
    co_flags: 48,
    co_filename: 112,
    co_name: 120,
    co_firstlineno: 68,
    str_state: 32,
    str_ascii_data: 40,
    str_utf8: 48,
    ts_cframe: 56,
    current_frame: 0,
    gen_iframe: GEN_IFRAME,
    gen_frame_state: GEN_FRAME_STATE,
    max_depth: URETPROBE_DEPTH,
};

/// A generator's frame and state, the same on 3.12 to 3.14 (gdb `ptype/o PyGenObject` on
/// 3.12.1 and 3.13.0; 3.14.10's _Py_DebugOffsets publishes the same in its gen_object
/// section).
const GEN_IFRAME: u64 = 72;
const GEN_FRAME_STATE: u64 = 67;

impl Build {
    /// How pyflow can follow this build's calls, if it can.
    pub fn flow_source(&self) -> Option<FlowSource> {
        if self.markers {
            return Some(FlowSource::Markers);
        }
        self.layout.map(FlowSource::Trampoline)
    }

    /// pyflow.d's view into the interpreter's structures, on 3.9 and 3.11 when the address
    /// of `_PyRuntime` is known: in a file loaded where it says, or in process `pid`'s
    /// mappings.
    pub fn marker_layout(&self, pid: Option<u32>) -> Option<MarkerLayout> {
        let runtime = self.runtime?;
        let minor = self.version?.minor;
        let loaded = match (runtime.fixed, pid) {
            (false, Some(pid)) => ProcessMaps::read(pid).ok()?.address_of(&self.shown, 0),
            _ => None,
        };
        let address = runtime.in_process(loaded)?;
        if let Some(reach) = self.reach {
            return Some(MarkerLayout {
                minor,
                tstate_current: address + reach.interpreters_head,
                reach: Some(reach),
            });
        }
        Some(MarkerLayout {
            minor,
            tstate_current: address + runtime_tstate_current(minor)?,
            reach: None,
        })
    }

    pub fn version_text(&self) -> String {
        self.version
            .map_or("of unknown version".into(), |v| v.to_string())
    }

    /// Reads `path`; None when it holds no interpreter.
    pub fn read(path: &Path) -> Result<Option<Build>, PythonError> {
        Build::of_image(&ElfImage::open(path)?)
    }

    /// `read`, for a file already read.
    fn of_image(image: &ElfImage) -> Result<Option<Build>, PythonError> {
        let path = image.path();
        let markers =
            UsdtProbes::read(image).is_ok_and(|p| p.find("python", "function__entry").is_ok());
        let evaluator = image.function(EVAL_FRAME).is_ok();
        if !markers && !evaluator {
            return Ok(None);
        }
        let version = py_version(image).or_else(|| version_from_name(path));
        // The trampoline path is only for builds without markers, 3.12 to 3.14.
        let layout = match version {
            _ if markers => None,
            Some(Version {
                major: 3,
                minor: 12,
            }) => Some(LAYOUT_3_12),
            Some(v) if debug_sections(v).is_some() => Some(debug_offsets(image, v).ok_or_else(
                || PythonError::UnknownLayout {
                    path: path.display().to_string(),
                    version: v.to_string(),
                },
            )?),
            _ => None,
        };
        let layout = layout.map(|l| Layout {
            max_depth: max_depth(image),
            ..l
        });
        let reach = match version {
            Some(Version {
                major: 3,
                minor: 15,
            }) if markers => FrameReach::read(image),
            _ => None,
        };
        let runtime = match version {
            Some(Version { major: 3, minor })
                if markers && (runtime_tstate_current(minor).is_some() || reach.is_some()) =>
            {
                runtime_of(image)
            }
            _ => None,
        };
        Ok(Some(Build {
            shown: path.display().to_string(),
            version,
            markers,
            layout,
            runtime,
            reach,
        }))
    }

    /// The interpreter of process `pid`: its executable, or a libpython it maps.
    pub fn of_process(pid: u32) -> Result<Build, PythonError> {
        let maps = ProcessMaps::read(pid).map_err(|source| match source {
            ProcMapsError::NoSuchProcess { pid } => PythonError::NoProcess { pid },
            source => PythonError::Maps { pid, source },
        })?;
        for mapping in maps.files() {
            let name = mapping.path.rsplit('/').next().unwrap_or("");
            if !(name.starts_with("python") || name.starts_with("libpython")) {
                continue;
            }
            if is_python2(Path::new(&mapping.path)) {
                return Err(PythonError::Python2 {
                    what: format!("pid {pid}"),
                    path: mapping.path.clone(),
                });
            }
            if let Some(build) = Build::read(&maps.openable_path(mapping))? {
                return Ok(Build {
                    shown: mapping.path.clone(),
                    ..build
                });
            }
        }
        // An interpreter under another name (an embedding program, a renamed copy).
        if let Some(exe) = maps.files().first() {
            if let Some(build) = Build::read(&maps.openable_path(exe))? {
                return Ok(Build {
                    shown: exe.path.clone(),
                    ..build
                });
            }
        }
        if process_state(pid) == Some('Z') {
            return Err(PythonError::Zombie { pid });
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        Err(PythonError::NotPython {
            what: format!("pid {pid} ({})", comm.trim()),
        })
    }

    /// The interpreter a command line runs, and the index of its argument: the first argument
    /// that names an interpreter (so that `ld.so --library-path … python3.14 app.py` works),
    /// or a program linked with a libpython found through its RUNPATH.
    pub fn of_command(argv: &[String]) -> Result<Launch, PythonError> {
        let mut script = None;
        for (index, arg) in argv.iter().enumerate() {
            let (path, shim) = match command::program(arg) {
                None => continue,
                Some(Err(e)) => {
                    return Err(PythonError::Shim {
                        shim: e.shim.display().to_string(),
                        reason: e.reason,
                    })
                }
                // A wrapper script may run the interpreter named later on the line.
                Some(Ok(Program::Script { shebang, .. })) => {
                    script.get_or_insert((arg.clone(), shebang));
                    continue;
                }
                Some(Ok(Program::File(path))) => (path, None),
                Some(Ok(Program::Shim { interpreter, .. })) => {
                    (interpreter.clone(), Some(interpreter))
                }
            };
            let Ok(image) = ElfImage::open(&path) else {
                continue;
            };
            let launch = |build| Launch {
                build,
                index,
                interpreter: shim.clone(),
            };
            if let Some(build) = Build::of_image(&image)? {
                return Ok(launch(build));
            }
            let libraries = linked_libpython(&image, &path);
            for lib in &libraries {
                if let Some(build) = Build::read(lib)? {
                    return Ok(launch(build));
                }
            }
            if let Some(python2) = std::iter::once(&path)
                .chain(&libraries)
                .find(|p| is_python2(p))
            {
                return Err(PythonError::Python2 {
                    what: format!("`{}`", argv.join(" ")),
                    path: python2.display().to_string(),
                });
            }
        }
        Err(match script {
            Some((what, shebang)) => PythonError::Script { what, shebang },
            None => PythonError::NotPython {
                what: argv.first().cloned().unwrap_or_default(),
            },
        })
    }
}

/// Whether the file at `path` is a CPython 3.11 with markers, which fires function__entry
/// only while its `line` marker's semaphore is set (CPython issue #98894, not fixed in 3.11).
pub fn entry_needs_line(path: &Path) -> bool {
    matches!(
        Build::read(path),
        Ok(Some(Build {
            version: Some(Version {
                major: 3,
                minor: 11
            }),
            markers: true,
            ..
        }))
    )
}

/// The interpreter a command line runs.
#[derive(Debug)]
pub struct Launch {
    pub build: Build,
    /// The argument that names it.
    pub index: usize,
    /// When that argument is a pyenv shim: the interpreter the shim would run, to run instead
    /// (the shim is a shell script, with no interpreter in it to trace).
    pub interpreter: Option<PathBuf>,
}

/// A Python 2 executable or libpython, by its file name.
fn is_python2(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.starts_with("python2") || name.starts_with("libpython2")
}

/// The interpreters with function markers that are installed where Pythons are started
/// from: `python*` executables on PATH and in /usr/bin and /usr/local/bin, and the
/// libpython of shared builds in the usual library directories. Each file once (symbolic
/// links resolved). `dtk pyflow` with no target attaches to these, so that a Python started
/// after it is traced too.
pub fn installed_with_markers() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    let mut libs: Vec<PathBuf> = ["/usr/lib", "/usr/lib64", "/usr/local/lib"]
        .map(PathBuf::from)
        .into();
    // Multiarch directories: /usr/lib/x86_64-linux-gnu and the like.
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        libs.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with("-linux-gnu")),
        );
    }
    let named = |dir: &Path, prefix: &str| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let candidates = dirs.iter().flat_map(|d| named(d, "python")).chain(
        libs.iter()
            .flat_map(|d| named(d, "libpython"))
            .filter(|p| p.to_string_lossy().contains(".so")),
    );
    let mut found: Vec<PathBuf> = Vec::new();
    for path in candidates {
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if found.contains(&real) || is_python2(&real) {
            continue;
        }
        let markers =
            UsdtProbes::open(&real).is_ok_and(|p| p.find("python", "function__entry").is_ok());
        if markers {
            found.push(real);
        }
    }
    found
}

/// The state letter of /proc/PID/stat (R, S, Z…).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Runs `code` in process `pid` with `sys.remote_exec` (PEP 768, CPython 3.14): the target's
/// own interpreter command line (up to the interpreter) and environment run
/// `sys.remote_exec(pid, FILE)`, and the target runs FILE before its next bytecode (a target
/// blocked in a system call runs it when the call returns). FILE is written under the
/// target's root and removes itself once run.
pub fn remote_exec(pid: u32, code: &str) -> Result<(), PythonError> {
    let fail = |reason: String| PythonError::RemoteExec { pid, reason };
    let read = |what: &str| {
        std::fs::read(format!("/proc/{pid}/{what}"))
            .map_err(|e| fail(format!("cannot read /proc/{pid}/{what}: {e}")))
    };
    let split = |bytes: Vec<u8>| -> Vec<String> {
        bytes
            .split(|&b| b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect()
    };
    let cmdline = split(read("cmdline")?);
    let environ: Vec<(String, String)> = split(read("environ")?)
        .into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    let mut invoker = match Build::of_command(&cmdline) {
        Ok(launch) => cmdline[..=launch.index].to_vec(),
        Err(_) => vec![format!("/proc/{pid}/exe")],
    };
    let name = format!("dtk-remote-{pid}-{}.py", std::process::id());
    let inside = format!("/tmp/{name}");
    let script = format!("import os\ntry:\n    {code}\nfinally:\n    os.unlink({inside:?})\n");
    let outside = format!("/proc/{pid}/root/tmp/{name}");
    std::fs::write(&outside, script).map_err(|e| fail(format!("cannot write {outside}: {e}")))?;
    invoker.push("-c".into());
    invoker.push(format!("import sys; sys.remote_exec({pid}, {inside:?})"));
    let out = std::process::Command::new(&invoker[0])
        .args(&invoker[1..])
        .env_clear()
        .envs(environ)
        .output()
        .map_err(|e| fail(format!("cannot run {}: {e}", invoker[0])));
    let out = match out {
        Ok(out) if out.status.success() => return Ok(()),
        Ok(out) => fail(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => e,
    };
    // The request was not queued: the file would never be run or removed.
    let _ = std::fs::remove_file(&outside);
    Err(out)
}

/// `Py_Version` (3.11 and later): PY_VERSION_HEX, 0x030C01F0 for 3.12.1.
fn py_version(image: &ElfImage) -> Option<Version> {
    let address = image.symbol_address("Py_Version").ok()?;
    let bytes = image.bytes_at(image.file_offset(address).ok()?, 4)?;
    let raw = <[u8; 4]>::try_from(bytes).ok()?;
    let hex = if image.is_little_endian() {
        u32::from_le_bytes(raw)
    } else {
        u32::from_be_bytes(raw)
    };
    Some(Version {
        major: (hex >> 24) as u8,
        minor: (hex >> 16) as u8,
    })
}

/// `python3.11`, `libpython3.10.so.1.0` → 3.11, 3.10.
fn version_from_name(path: &Path) -> Option<Version> {
    let name = path.file_name()?.to_str()?;
    let rest = name
        .strip_prefix("lib")
        .unwrap_or(name)
        .strip_prefix("python")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(Version { major, minor })
}

/// Where the sections of `_Py_DebugOffsets` that dtk reads start, in 64-bit words from the
/// beginning of the structure: (thread_state, interpreter_frame, code_object,
/// unicode_object). The words
/// before each section are fields of earlier sections, whose count changes between minor
/// versions: 3.13's from gdb `ptype/o struct _Py_DebugOffsets` on 3.13.0; 3.14's from the
/// words of a 3.14.10 build (Debian's), whose sections show as runs of known offsets.
fn debug_sections(v: Version) -> Option<(usize, usize, usize, usize)> {
    match (v.major, v.minor) {
        (3, 13) => Some((19, 28, 34, 67)),
        (3, 14) => Some((22, 31, 39, 77)),
        _ => None,
    }
}

/// The layout from the build's `_Py_DebugOffsets` (3.13+): the structure starts with the
/// cookie "xdebugpy" and PY_VERSION_HEX, then one u64 per field.
fn debug_offsets(image: &ElfImage, v: Version) -> Option<Layout> {
    let (thread, frame, code, unicode) = debug_sections(v)?;
    let words = debug_words(image, v, unicode + 4)?;
    let word = |i: usize| words[i];
    Some(Layout {
        // interpreter_frame: size, previous, executable, instr_ptr, localsplus, owner.
        frame_code: word(frame + 2),
        // 3.14's f_executable is a tagged stack reference.
        code_tag_bits: if v.minor >= 14 { 7 } else { 0 },
        frame_owner: word(frame + 5),
        // co_flags is not published; it sits before co_argcount in every version so far.
        co_flags: word(code + 6) - 4,
        // code_object: size, filename, name, qualname, linetable, firstlineno, argcount, …
        co_filename: word(code + 1),
        co_name: word(code + 2),
        co_firstlineno: word(code + 5),
        // unicode_object: size, state, length, asciiobject_size. A compact non-ASCII str
        // keeps its UTF-8 pointer after utf8_length, which follows the ASCII header.
        str_state: word(unicode + 1),
        str_ascii_data: word(unicode + 3),
        str_utf8: word(unicode + 3) + 8,
        // thread_state: size, prev, next, interp, current_frame, …
        ts_cframe: 0,
        current_frame: word(thread + 4),
        gen_iframe: GEN_IFRAME,
        gen_frame_state: GEN_FRAME_STATE,
        max_depth: URETPROBE_DEPTH,
    })
}

/// How deep pyflow-trampoline.d can follow the calls of `image`'s evaluator.
fn max_depth(image: &ElfImage) -> u64 {
    let known = image
        .function(EVAL_FRAME)
        .ok()
        .and_then(|f| return_sites(image, EVAL_FRAME, &f, true))
        .is_some_and(|rets| !rets.is_empty());
    if known {
        DEEPEST
    } else {
        URETPROBE_DEPTH
    }
}

/// The first `count` words of the build's `_Py_DebugOffsets` (3.13+), when it starts with
/// the cookie "xdebugpy" and its PY_VERSION_HEX is version `v`'s.
fn debug_words(image: &ElfImage, v: Version, count: usize) -> Option<Vec<u64>> {
    let address = image.symbol_address("_PyRuntime").ok()?;
    let start = image.file_offset(address).ok()?;
    let bytes = image.bytes_at(start, 8 * count)?;
    if &bytes[..8] != b"xdebugpy" || !image.is_little_endian() {
        return None;
    }
    let words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .collect();
    let version = words[1];
    if (version >> 24, (version >> 16) & 0xff) != (u64::from(v.major), u64::from(v.minor)) {
        return None;
    }
    Some(words)
}

/// Where `_PyRuntime` is in `image`.
fn runtime_of(image: &ElfImage) -> Option<Runtime> {
    Some(Runtime {
        address: image.symbol_address("_PyRuntime").ok()?,
        start: image.start_address()?,
        fixed: image.is_fixed_address(),
    })
}

/// The libpython files `image` needs, where the dynamic loader would find them first: its
/// RUNPATH or RPATH (with $ORIGIN), then the usual library directories.
fn linked_libpython(image: &ElfImage, path: &Path) -> Vec<PathBuf> {
    let Some((needed, search)) = image.dynamic_needs() else {
        return Vec::new();
    };
    let origin = path.parent().unwrap_or(Path::new("/"));
    let mut dirs: Vec<PathBuf> = search
        .iter()
        .flat_map(|s| s.split(':'))
        .map(|d| PathBuf::from(d.replace("$ORIGIN", &origin.to_string_lossy())))
        .collect();
    dirs.extend(
        [
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib",
            "/usr/lib",
            "/usr/local/lib",
        ]
        .map(PathBuf::from),
    );
    needed
        .iter()
        .filter(|n| n.starts_with("libpython"))
        .filter_map(|n| dirs.iter().map(|d| d.join(n)).find(|p| p.is_file()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_is_found_where_the_file_is_loaded() {
        let fixed = Runtime {
            address: 0xa5_6220,
            start: 0x40_0000,
            fixed: true,
        };
        assert_eq!(fixed.in_process(None), Some(0xa5_6220));
        let moved = Runtime {
            address: 0x2f_5000,
            start: 0,
            fixed: false,
        };
        assert_eq!(
            moved.in_process(None),
            None,
            "not known without the process"
        );
        assert_eq!(
            moved.in_process(Some(0x7f12_3400_0000)),
            Some(0x7f12_342f_5000)
        );
    }

    #[test]
    fn debian_python_3_11_knows_where_its_runtime_is() {
        let Ok(Some(build)) = Build::read(Path::new("/usr/bin/python3.11")) else {
            return;
        };
        let layout = build
            .marker_layout(None)
            .expect("Debian's python3.11 is ET_EXEC");
        assert_eq!(layout.minor, 11);
        assert!(layout.params().contains(&("MODEL", 2)));
    }

    #[test]
    fn versions_from_file_names() {
        let v = |s: &str| version_from_name(Path::new(s));
        assert_eq!(
            v("/usr/bin/python3.11"),
            Some(Version {
                major: 3,
                minor: 11
            })
        );
        assert_eq!(
            v("/x/libpython3.10.so.1.0"),
            Some(Version {
                major: 3,
                minor: 10
            })
        );
        assert_eq!(v("/usr/bin/ld-linux-x86-64.so.2"), None);
    }

    #[test]
    fn debian_python_3_11_has_markers() {
        let path = Path::new("/usr/bin/python3.11");
        if !path.exists() {
            return;
        }
        let build = Build::read(path).unwrap().unwrap();
        assert_eq!(
            build.version,
            Some(Version {
                major: 3,
                minor: 11
            })
        );
        assert_eq!(build.flow_source(), Some(FlowSource::Markers));
    }

    #[test]
    fn python_2_is_named() {
        assert!(is_python2(Path::new(
            "/root/.pyenv/versions/2.7.18/bin/python2.7"
        )));
        assert!(is_python2(Path::new("/x/libpython2.7.so.1.0")));
        assert!(!is_python2(Path::new("/usr/bin/python3.11")));
    }

    #[test]
    fn a_program_that_is_not_python_is_said_so() {
        let err = Build::of_command(&["/bin/true".to_string()]).unwrap_err();
        assert!(matches!(err, PythonError::NotPython { .. }), "{err}");
    }
}
