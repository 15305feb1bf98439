//! What GitHub Pages needs of a site: a `.nojekyll` at its root, and files of at
//! most [`PAGES_FILE_LIMIT`]. Publishing, offering an updater and mirroring all
//! write sites that Pages may serve, so this sits below them.

use wavecast_schema::RelativePath;
use wavecast_site::Storage;

use crate::error::Result;

/// The largest file GitHub Pages serves.
pub const PAGES_FILE_LIMIT: u64 = 100 * 1000 * 1000;

/// `.nojekyll` at the site root, so GitHub Pages serves the site as is.
const NOJEKYLL: &str = ".nojekyll";

/// Writes an empty `.nojekyll` at the site root unless there is one: GitHub Pages
/// would otherwise run Jekyll over the site.
///
/// # Errors
///
/// Storage errors.
pub fn write_nojekyll(storage: &dyn Storage) -> Result<()> {
    let path: RelativePath = NOJEKYLL.parse().expect(".nojekyll is a valid site path");
    if storage.size(&path)?.is_none() {
        storage.put_bytes(&path, b"")?;
    }
    Ok(())
}
