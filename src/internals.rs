//! The engine internals that the integration tests (tests/), the benchmarks (benches/) and the
//! fuzz targets (fuzz/) drive directly: BPF programs, maps and attach points, the D front end,
//! the plan, code generation and the executor. It is not dtk's API and is hidden from the
//! documentation; everything else in the crate is private to it, so that the compiler finds
//! dead code and the layout can change behind this one list.

pub use crate::backend::{select, Backend, BackendChoice, EventSink, Job, Stop};
pub use crate::output::text::base64;
pub use crate::python::Build;
pub use crate::target::Target;

/// Kernel-facing BPF objects: instructions, programs, maps, the ring buffer.
pub mod bpf {
    pub use crate::backend::linux::bpf::drops::DropCounter;
    pub use crate::backend::linux::bpf::maps::{Map, MapError, MapType, Update};
    pub use crate::backend::linux::bpf::ringbuf::RingBuf;

    pub mod access {
        pub use crate::backend::linux::bpf::access::check;
    }
    pub mod cpus {
        pub use crate::backend::linux::bpf::cpus::{online, possible};
    }
    pub mod insn {
        pub use crate::backend::linux::bpf::disasm::disassemble;
        pub use crate::backend::linux::bpf::insn::{
            AluOp, Asm, Cond, Helper, Insn, Label, Reg, Size, Src,
        };
    }
    pub mod prog {
        pub use crate::backend::linux::bpf::prog::{load, LoadError, ProgType, Program};
    }
}

/// Perf-event attach points.
pub mod attach {
    pub use crate::backend::linux::attach::{AttachError, Link};

    pub mod perf {
        pub use crate::backend::linux::attach::perf::{attach_cpu_clock, CpuClock};
    }
    pub mod tracepoint {
        pub use crate::backend::linux::attach::tracepoint::attach_tracepoint;
    }
    pub mod uprobe {
        pub use crate::backend::linux::attach::uprobe::{attach_uprobe, UprobeSpec};
    }
}

/// The D front end.
pub mod d {
    pub use crate::backend::linux::d::{compile, dump, parse, MacroArgs, Severity};

    pub mod ast {
        pub use crate::backend::linux::d::ast::{DType, Expr, ExprKind, Item, Program, Stmt};
    }
}

/// The run's middle: plan, code generation, loading, records and the executor.
pub mod plan {
    pub use crate::backend::linux::plan::{list, resolve, Plan, PlanError, Site};

    pub mod glob {
        pub use crate::backend::linux::plan::glob::matches;
    }
}
pub mod codegen {
    pub use crate::backend::linux::codegen::{build, CodegenError};

    pub mod usdt_arg {
        pub use crate::backend::linux::codegen::usdt_arg::load_arg;
    }
}
pub mod load {
    pub use crate::backend::linux::load::{attach, Attached, LoadError};
}
pub use crate::backend::linux::exec::{Executor, Flow};
pub use crate::backend::linux::firing::{
    CapturedString, Firing, MemoryRead, ProbeInfo, ProbeKind, ReadData,
};
pub use crate::backend::linux::options::Options;
pub use crate::backend::linux::record::decode;

/// Reading the system: tracefs, ELF files, process maps, USDT notes.
/// CPython facts the pyflow scripts are built from.
pub mod python {
    pub use crate::python::tls::{thread_state_tls, ThreadStateTls, TlsError, GET_UNCHECKED};
}

pub mod inspect {
    pub use crate::inspect::elf::ElfImage;
    pub use crate::inspect::procmaps::{find_probe_file, ProcessMaps};
    pub use crate::inspect::usdt::{semaphore_holder, UsdtProbe, UsdtProbes};

    pub mod tracefs {
        pub use crate::inspect::tracefs::{read_format, root, TracefsError};
    }
}

/// The events a back end delivers.
pub mod event {
    pub use crate::event::{
        AggFunc, AggSnapshot, AggValue, DropKind, Event, Printf, ProbeDesc, Value, QUANTIZE_BUCKETS,
    };
}

/// The bundled scripts and their parameters.
pub mod script {
    pub use crate::script::{bundled, Param, Script, TargetMacro};
}
