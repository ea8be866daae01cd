//! dtk's own engine for stock Linux with no DTrace installed: a D front end (`d`), eBPF
//! programs loaded through the bpf() syscall (`bpf`), and attach points (`attach`).

pub mod attach;
pub mod bpf;
pub mod codegen;
pub mod d;
pub mod firing;
pub mod options;
pub mod plan;

use super::{Backend, BackendError, EventSink, Job, Stop, Target};

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
        _stop: &Stop,
        _sink: &mut dyn EventSink,
    ) -> Result<(), BackendError> {
        compile_job(job)?;
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

/// Runs the D front end over the job's script, so that errors are reported before anything
/// is attached. With `-c`, the command's pid is not known before it starts; `$target` is
/// checked with pid 0 in its place.
fn compile_job(job: &Job) -> Result<d::Compiled, BackendError> {
    let target = match &job.target {
        Target::Pid(pid) => Some(*pid),
        Target::Command(_) => Some(0),
        Target::None => None,
    };
    let macros = d::MacroArgs {
        target,
        args: job.args.clone(),
    };
    d::compile(&job.script.name, &job.script.text, &macros).map_err(|diagnostics| {
        BackendError::Compile(format!(
            "the D program does not compile:\n{}",
            diagnostics.to_string().trim_end()
        ))
    })
}
