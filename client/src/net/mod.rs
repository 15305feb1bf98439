//! The network layer: transports that fetch bytes (HTTP with ranged resume, local
//! folders), the limits a slow host must keep within, downloads into the cache's
//! files, and fetching the channel manifest with the walk along the chain of roots
//! that decides whether to trust it.
//!
//! Nothing here knows about install roots: it is handed URLs, files to write and
//! what to expect, and answers with verified bytes or a [`crate::Error`].

pub(crate) mod download;
pub mod limits;
pub(crate) mod manifest;
pub mod transport;
pub(crate) mod trust;
pub(crate) mod url;
