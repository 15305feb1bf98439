//! How the client reads bytes from a site: the [`Transport`] trait and its
//! implementations.
//!
//! Transports only move bytes. Size limits and hash checks are applied by the caller
//! around whatever stream a transport returns, so a transport never needs to know
//! what it is fetching, and a test transport can corrupt or truncate freely.

mod default;
mod file;
mod http;
mod protocol;

pub use default::DefaultTransport;
pub use file::FileTransport;
pub use http::HttpTransport;
pub use protocol::{
    Conditional, RangeStream, Transport, TransportError, TransportErrorKind, Validators,
};
