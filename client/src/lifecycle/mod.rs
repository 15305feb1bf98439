//! After the switch: health checks, trials, confirmation and rollback, image modules in
//! A/B slots with their activation hook, and keeping the newest releases.

pub(crate) mod command;
pub(crate) mod error;
pub(crate) mod health;
pub(crate) mod prune;
pub(crate) mod slots;
