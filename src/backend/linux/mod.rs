//! dtk's own engine for stock Linux with no DTrace installed: a D front end (`d`), a plan of
//! the probes (`plan`), code generation into a set of eBPF programs (`codegen`, no system
//! calls), loading and attaching them (`load`, through the bpf() choke point in `bpf` and the
//! perf events of `attach`), the record format between programs and reader (`record`), and
//! the executor of what runs in user space (`exec`); `engine` runs it all.

pub(crate) mod attach;
pub(crate) mod bpf;
pub(crate) mod codegen;
pub(crate) mod d;
pub(crate) mod deep;
mod engine;
mod error;
pub(crate) mod exec;
pub(crate) mod firing;
pub(crate) mod load;
pub(crate) mod options;
pub(crate) mod plan;
pub(crate) mod record;
pub(crate) mod target;

pub use error::EngineError;

use std::sync::Arc;

use super::{Backend, BackendError, EventSink, Job, RunEnd, Stop};
use crate::event::ProbeDesc;

/// The Linux engine.
#[derive(Debug)]
pub struct LinuxEngine {
    _private: (),
}

impl LinuxEngine {
    pub fn open() -> Result<LinuxEngine, BackendError> {
        Ok(LinuxEngine { _private: () })
    }
}

impl Backend for LinuxEngine {
    fn run(
        &mut self,
        job: &Job,
        stop: &Stop,
        sink: &mut dyn EventSink,
    ) -> Result<RunEnd, BackendError> {
        engine::run(job, stop, sink)
    }

    fn list(&mut self, job: &Job) -> Result<Vec<Arc<ProbeDesc>>, BackendError> {
        engine::list(job)
    }

    fn follows_trees(&self) -> bool {
        true
    }
}
