//! dtk's own engine for stock Linux with no DTrace installed: a D front end (`d`), eBPF
//! programs loaded through the bpf() syscall (`bpf`), and attach points (`attach`).

pub mod attach;
pub mod bpf;
pub mod codegen;
pub mod d;
pub mod deep;
mod engine;
pub mod exec;
pub mod firing;
pub mod options;
pub mod plan;
pub mod target;

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
    fn name(&self) -> &'static str {
        "linux"
    }

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
}
