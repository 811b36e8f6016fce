//! T5 generation state (filled in below).
pub struct T5Cache;
