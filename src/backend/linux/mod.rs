//! dtk's own engine for stock Linux with no DTrace installed: a D front end (`d`), eBPF
//! programs loaded through the bpf() syscall (`bpf`), and attach points (`attach`).

pub mod attach;
pub mod bpf;
pub mod d;

use super::{Backend, BackendError, EventSink, Job, Stop};

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
        _job: &Job,
        _stop: &Stop,
        _sink: &mut dyn EventSink,
    ) -> Result<(), BackendError> {
        Err(BackendError::Unavailable {
            backend: "linux",
            why: "this build's Linux engine has no D code generator or executor, so no \
                  back end can run the program"
                .into(),
            hint: "`dtk show NAME [options]` prints the program, which runs as it is under \
                   dtrace(1) -s where DTrace is installed"
                .into(),
        })
    }
}
