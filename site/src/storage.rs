//! The storage trait that publishers write sites through.

use std::path::Path;

use jiff::Timestamp;
use wavecast_schema::RelativePath;

use crate::error::Result;

/// A place a site lives: a folder, a bucket. Implementations only move bytes; what
/// goes where, and in which order, is decided by the publisher with [`crate::layout`].
///
/// Every `put` is atomic: a reader sees the old content or the new, never a mix.
pub trait Storage: std::fmt::Debug + Send + Sync {
    /// The content at `path`, or `None` when there is no such file.
    fn get(&self, path: &RelativePath) -> Result<Option<Vec<u8>>>;

    /// The size of the file at `path`, or `None` when there is no such file.
    fn size(&self, path: &RelativePath) -> Result<Option<u64>>;

    /// The files directly inside the folder `prefix` (not in its subfolders), as full
    /// site paths in name order; empty when the folder does not exist. Temporary files
    /// of writes in progress are left out.
    fn list(&self, prefix: &RelativePath) -> Result<Vec<RelativePath>>;

    /// Stores `bytes` at `path`, replacing any previous content atomically.
    fn put_bytes(&self, path: &RelativePath, bytes: &[u8]) -> Result<()>;

    /// Stores the content of the local file `source` at `path`, atomically.
    fn put_file(&self, path: &RelativePath, source: &Path) -> Result<()>;

    /// Removes the file at `path`. Removing a file that is not there is not an error,
    /// so a collection that was interrupted can simply run again.
    fn delete(&self, path: &RelativePath) -> Result<()>;

    /// When the file at `path` was last written (for a blob, which is never
    /// rewritten, when it was uploaded), or `None` when there is no such file.
    fn modified(&self, path: &RelativePath) -> Result<Option<Timestamp>>;
}
