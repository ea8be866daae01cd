//! The D strings that stay the same for the whole run: the program's string literals and the
//! probe descriptions' fields (probeprov, probemod, probefunc, probename). Each becomes a
//! shared value once, the first time it is read, so that evaluating one on every firing
//! clones a reference instead of allocating.
//!
//! They are found by address: the program and the probe descriptions are owned by the
//! executor and never change while it runs, so a string's address names it for the run.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::value::Value;

#[derive(Default)]
pub struct Interned {
    by_address: FxHashMap<(usize, usize), Arc<[u8]>>,
}

impl Interned {
    /// `s` as a D string value. `s` must live in the executor's program or probe list.
    pub fn value(&mut self, s: &[u8]) -> Value {
        let key = (s.as_ptr() as usize, s.len());
        Value::Str(Arc::clone(
            self.by_address.entry(key).or_insert_with(|| Arc::from(s)),
        ))
    }
}
