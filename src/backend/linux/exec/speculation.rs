//! Speculative tracing: `speculation()` hands out one of `nspec` buffers, a clause that calls
//! `speculate(id)` records its data into that buffer instead of the output, and
//! `commit(id)` outputs what the buffer holds while `discard(id)` throws it away; either
//! frees the buffer. Data is buffered here, in the consumer, where every clause's actions
//! already wait for their clause to complete (`actions::Pending`).
//!
//! Sizes follow DTrace's accounting: a clause's data is a 16-byte record header plus each
//! recorded value (8 bytes for an integer, `strsize` for a string). A clause whose own data
//! passes `specsize` stops where it passes it; a clause that fits on its own but not in what
//! the buffer already holds runs to the end and its data is dropped. Both count as
//! speculative drops, as does a `speculation()` that finds no free buffer.

use super::actions::Pending;
use super::{Fault, Frame, State};
use crate::event::{self, DropKind};

/// A record's header in DTrace's buffers (its EPID and timestamp).
const RECORD_HEADER: usize = 16;

/// The speculative buffers, by id − 1.
#[derive(Debug, Default)]
pub(super) struct Buffers {
    buffers: Vec<Buffer>,
}

#[derive(Debug, Default)]
struct Buffer {
    active: bool,
    /// The actions of each speculating clause, in the order the clauses completed.
    clauses: Vec<Vec<Pending>>,
    bytes: usize,
}

/// A clause that has called `speculate()`: the buffer, and the bytes it recorded so far.
#[derive(Debug)]
pub(super) struct Speculating {
    index: usize,
    bytes: usize,
}

impl Buffers {
    pub(super) fn new(nspec: usize) -> Buffers {
        Buffers {
            buffers: (0..nspec).map(|_| Buffer::default()).collect(),
        }
    }

    /// The buffer an id names for commit() and discard(): none for 0, a fault for an id
    /// out of range (a negative id is a huge one).
    pub(super) fn index(&self, id: u64) -> Result<Option<usize>, Fault> {
        match id {
            0 => Ok(None),
            id if id <= self.buffers.len() as u64 => Ok(Some(id as usize - 1)),
            _ => Err(Fault::IllegalOperation),
        }
    }

    /// What a committed buffer holds, clause by clause; the buffer is free again.
    pub(super) fn take(&mut self, index: usize) -> Vec<Vec<Pending>> {
        let b = &mut self.buffers[index];
        b.active = false;
        b.bytes = 0;
        std::mem::take(&mut b.clauses)
    }
}

/// The bytes DTrace records for these values.
fn data_bytes(values: &[event::Value], strsize: usize) -> usize {
    values
        .iter()
        .map(|v| match v {
            event::Value::Str(_) => strsize,
            event::Value::Bytes(b) => b.len(),
            event::Value::Stack(frames) => 8 * frames.len().max(1),
            event::Value::Int(_) | event::Value::UInt(_) => 8,
        })
        .sum()
}

impl State {
    /// speculation(): the id of a free buffer, which becomes active, or 0.
    pub(super) fn speculation(&mut self) -> u64 {
        let free = self.speculations.buffers.iter().position(|b| !b.active);
        match free {
            Some(i) => {
                self.speculations.buffers[i].active = true;
                i as u64 + 1
            }
            None => {
                self.drop(DropKind::Speculation);
                0
            }
        }
    }

    /// speculate(id): the rest of the clause records into buffer `id`. An id that names no
    /// active buffer ends the clause, silently, as in DTrace.
    pub(super) fn speculate(&mut self, id: u64, f: &mut Frame<'_>) -> Result<(), Fault> {
        let index = match self.speculations.index(id) {
            Ok(Some(i)) if self.speculations.buffers[i].active => i,
            _ => return Err(Fault::Abandoned),
        };
        f.speculating = Some(Speculating {
            index,
            bytes: RECORD_HEADER,
        });
        Ok(())
    }

    /// Counts data a speculating clause records; past `specsize` the clause ends there.
    pub(super) fn speculative_data(
        &mut self,
        values: &[event::Value],
        f: &mut Frame<'_>,
    ) -> Result<(), Fault> {
        let strsize = self.options.strsize;
        let Some(s) = f.speculating.as_mut() else {
            return Ok(());
        };
        s.bytes += data_bytes(values, strsize);
        if s.bytes > self.options.specsize {
            self.drop(DropKind::Speculation);
            return Err(Fault::Abandoned);
        }
        Ok(())
    }

    /// A speculating clause has completed: its actions wait in the buffer, unless the buffer
    /// was freed meanwhile or has no room for them.
    pub(super) fn keep_speculative(&mut self, s: Speculating, pending: Vec<Pending>) {
        let specsize = self.options.specsize;
        let b = &mut self.speculations.buffers[s.index];
        if !b.active {
            return;
        }
        if b.bytes + s.bytes > specsize {
            self.drop(DropKind::Speculation);
            return;
        }
        b.bytes += s.bytes;
        b.clauses.push(pending);
    }
}
