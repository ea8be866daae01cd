//! The Linux engine's error at the back-end boundary: which layer failed (compiling,
//! planning, building or loading the programs, the target, the executor), with that layer's
//! typed error and its causes, which main prints as a chain.

use thiserror::Error;

use super::bpf::access::AccessError;
use super::bpf::maps::MapError;
use super::codegen::CodegenError;
use super::d::Diagnostics;
use super::exec::ExecError;
use super::load::LoadError;
use super::options::OptionError;
use super::plan::PlanError;
use super::target::TargetError;

/// Why a run of the Linux engine failed, by the layer that failed. Each keeps its causes,
/// which main prints as a chain.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The program did not compile; the diagnostics are rendered with their source lines.
    #[error("the D program does not compile:\n{}", .0.to_string().trim_end())]
    Compile(Diagnostics),
    /// The program compiled, but its probes could not be planned.
    #[error("{script}{}", tag.map_or(String::new(), |t| format!(": [{t}]")))]
    Plan {
        script: String,
        /// DTrace's tag for the error, under `-x errtags`.
        tag: Option<&'static str>,
        #[source]
        source: Box<PlanError>,
    },
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Options(#[from] OptionError),
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Watching the target's exit (pidfd_open).
    #[error(transparent)]
    Watch(std::io::Error),
    /// `-x cpu=N` names a CPU dtk cannot run on.
    #[error("option cpu: cannot run on CPU {cpu}")]
    Cpu {
        cpu: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Reading the ring buffer or a kernel map, or disarming the programs.
    #[error(transparent)]
    Map(#[from] MapError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}
