//! Back ends: the trait both engines implement, and the selection between them.

pub mod linux;
