//! D variables: globals, associative arrays, thread-locals (`self->`, one set per thread id)
//! and clause-locals (`this->`, one set per firing).
//!
//! Thread-locals and associative-array elements are DTrace's "dynamic" variables: assigning
//! them zero frees them, and together they live in `dynvarsize` bytes. Each element is
//! charged what DTrace's dynamic variable chunk would take (a header, its keys and its value,
//! strings at strsize), so the option bounds about as many elements as it does in DTrace.
//! An assignment that does not fit is dropped and counted.

use rustc_hash::FxHashMap as HashMap;

use super::agg::KeyPart;
use super::value::Value;
use crate::backend::linux::d::ast::VarScope;

/// Bytes DTrace's dynamic variable header and tuple bookkeeping take per element.
const DYNVAR_HEADER: usize = 64;

/// Identifies one stored variable or element.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Slot {
    scope: VarScope,
    /// The thread for `self->`; 0 otherwise.
    tid: u32,
    /// The variable's name, as a number given on first store (lookups by name then cost no
    /// allocation).
    id: u32,
    keys: Vec<KeyPart>,
}

/// Where a variable lives and which element of it is meant.
pub struct Place<'a> {
    pub scope: VarScope,
    pub name: &'a str,
    pub keys: Vec<KeyPart>,
}

/// What an assignment did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    Done,
    /// dynvarsize is exhausted: the assignment was dropped.
    Dropped,
}

#[derive(Debug)]
pub struct Variables {
    ids: HashMap<String, u32>,
    slots: HashMap<Slot, (Value, usize)>,
    /// `this->` variables of the current firing.
    clause: HashMap<Slot, Value>,
    dynamic_used: usize,
    dynamic_limit: usize,
    strsize: usize,
}

impl Variables {
    pub fn new(dynvarsize: usize, strsize: usize) -> Variables {
        Variables {
            ids: HashMap::default(),
            slots: HashMap::default(),
            clause: HashMap::default(),
            dynamic_used: 0,
            dynamic_limit: dynvarsize,
            strsize,
        }
    }

    /// Forgets the clause-locals: a new firing starts.
    pub fn begin_firing(&mut self) {
        self.clause.clear();
    }

    pub fn get(&self, place: Place<'_>, tid: u32) -> Option<&Value> {
        let id = *self.ids.get(place.name)?;
        let key = slot(place, id, tid);
        if key.scope == VarScope::Clause {
            return self.clause.get(&key);
        }
        self.slots.get(&key).map(|(v, _)| v)
    }

    /// Stores `value`. A zero integer frees a dynamic variable.
    pub fn set(&mut self, place: Place<'_>, tid: u32, value: Value) -> Stored {
        let id = match self.ids.get(place.name) {
            Some(&id) => id,
            None => {
                let id = self.ids.len() as u32;
                self.ids.insert(place.name.to_string(), id);
                id
            }
        };
        let key = slot(place, id, tid);
        if key.scope == VarScope::Clause {
            self.clause.insert(key, value);
            return Stored::Done;
        }
        let dynamic = key.scope == VarScope::Thread || !key.keys.is_empty();
        if !dynamic {
            self.slots.insert(key, (value, 0));
            return Stored::Done;
        }
        let frees = matches!(value, Value::Int(0));
        if frees {
            if let Some((_, cost)) = self.slots.remove(&key) {
                self.dynamic_used -= cost;
            }
            return Stored::Done;
        }
        let cost = self.cost(&key, &value);
        let old = self.slots.get(&key).map_or(0, |(_, c)| *c);
        let used = self.dynamic_used - old + cost;
        if used > self.dynamic_limit {
            return Stored::Dropped;
        }
        self.dynamic_used = used;
        self.slots.insert(key, (value, cost));
        Stored::Done
    }

    fn cost(&self, slot: &Slot, value: &Value) -> usize {
        let part = |k: &KeyPart| match k {
            KeyPart::Str(_) => self.strsize,
            _ => 8,
        };
        let value_size = match value {
            Value::Str(_) => self.strsize,
            _ => 8,
        };
        DYNVAR_HEADER + slot.keys.iter().map(part).sum::<usize>() + value_size
    }
}

fn slot(place: Place<'_>, id: u32, tid: u32) -> Slot {
    Slot {
        scope: place.scope,
        tid: if place.scope == VarScope::Thread {
            tid
        } else {
            0
        },
        id,
        keys: place.keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(name: &str) -> Place<'_> {
        Place {
            scope: VarScope::Thread,
            name,
            keys: Vec::new(),
        }
    }

    #[test]
    fn dynamic_space_is_bounded_and_freed_by_zero() {
        // Room for exactly two integer thread-locals.
        let mut vars = Variables::new(2 * (DYNVAR_HEADER + 8), 256);
        assert_eq!(vars.set(thread("a"), 1, Value::Int(1)), Stored::Done);
        assert_eq!(vars.set(thread("a"), 2, Value::Int(1)), Stored::Done);
        assert_eq!(vars.set(thread("a"), 3, Value::Int(1)), Stored::Dropped);
        assert_eq!(vars.get(thread("a"), 3), None);
        assert_eq!(vars.set(thread("a"), 1, Value::Int(5)), Stored::Done);
        assert_eq!(vars.set(thread("a"), 1, Value::Int(0)), Stored::Done);
        assert_eq!(vars.get(thread("a"), 1), None);
        assert_eq!(vars.set(thread("a"), 3, Value::Int(1)), Stored::Done);
    }

    #[test]
    fn clause_locals_last_one_firing() {
        let mut vars = Variables::new(1024, 256);
        let this = || Place {
            scope: VarScope::Clause,
            name: "x",
            keys: Vec::new(),
        };
        vars.set(this(), 0, Value::Int(3));
        assert_eq!(vars.get(this(), 0), Some(&Value::Int(3)));
        vars.begin_firing();
        assert_eq!(vars.get(this(), 0), None);
    }
}
