//! The storage layer: the install root's layout and atomic writes, its
//! configuration, state, journal record and lock, sharing it with a group, and the
//! content-addressed download and index caches.

pub(crate) mod access;
pub(crate) mod attributes;
pub(crate) mod cache;
pub(crate) mod config;
pub(crate) mod current;
pub(crate) mod error;
pub(crate) mod journal;
pub(crate) mod root;
pub(crate) mod slots;
pub(crate) mod state;
