//! The network layer: transports that fetch bytes (HTTP with ranged resume, local
//! folders), the limits a slow host must keep within, and fetching the channel
//! manifest with the walk along the chain of roots that decides whether to trust it.
//!
//! Nothing here knows about install roots or writes a file: it is handed URLs and
//! what to expect, and answers with verified bytes or an [`Error`](error::Error).

pub(crate) mod error;
pub mod limits;
pub(crate) mod manifest;
pub mod transport;
pub(crate) mod trust;
pub(crate) mod url;
