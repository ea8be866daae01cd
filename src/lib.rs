//! dtk: a DTrace toolkit. See DESIGN.md in the project's shared notes for the pipeline:
//! cli → config → command → script → back end → events → presenter.

pub mod backend;
pub mod event;
