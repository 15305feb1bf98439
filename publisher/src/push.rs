//! Uploading a site folder to other storage, such as an S3 bucket.
//!
//! Only what the destination lacks is written: a blob whose size matches is left
//! alone (blobs are content-addressed, so the same name and size is the same blob),
//! and a mutable file (channel manifests, the status page, the measured adoption
//! `stats.json`, `.nojekyll`) is written only when its content differs. Blobs go first, then the channel manifests, then
//! the status page, so readers of the destination always see a complete release.

use std::path::{Path, PathBuf};

use wavecast_schema::RelativePath;
use wavecast_site::{Storage, layout};

use crate::error::{Error, Result};
use crate::verify::Count;

/// What [`push`] did.
#[derive(Debug, Default, serde::Serialize)]
pub struct PushReport {
    /// Files written to the destination.
    pub uploaded: Count,
    /// Files the destination already had.
    pub present: Count,
    /// The channel manifests written.
    pub channels_written: Vec<String>,
}

/// Told about each file as [`push`] handles it. Every method does nothing by default.
pub trait PushReporter {
    /// `path`, of `bytes` bytes, is about to be uploaded.
    fn on_upload(&self, path: &RelativePath, bytes: u64) {
        let _ = (path, bytes);
    }

    /// `path`, of `bytes` bytes, is done: uploaded, or already there.
    fn on_file(&self, path: &RelativePath, bytes: u64, uploaded: bool) {
        let _ = (path, bytes, uploaded);
    }
}

impl PushReporter for () {}

/// The order files are written in: blobs and anything else first, then the channel
/// manifests, then the status page.
fn stage(path: &RelativePath) -> u8 {
    if path.as_str().starts_with("channels/") {
        1
    } else if *path == layout::status_page() {
        2
    } else {
        0
    }
}

/// The files of the site folder `site` in upload order, with their local paths and
/// sizes. Temporary files of interrupted writes (`.wavecast-*`) are left out.
pub fn site_files(site: &Path) -> Result<Vec<(RelativePath, PathBuf, u64)>> {
    let mut files = Vec::new();
    collect(site, "", &mut files)?;
    files.sort_by(|(a, _, _), (b, _, _)| (stage(a), a).cmp(&(stage(b), b)));
    Ok(files)
}

fn collect(dir: &Path, prefix: &str, files: &mut Vec<(RelativePath, PathBuf, u64)>) -> Result<()> {
    let read_error = |source| Error::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in fs_err::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with(".wavecast-") {
            continue;
        }
        let relative = format!("{prefix}{name}");
        let kind = entry.file_type().map_err(read_error)?;
        if kind.is_dir() {
            collect(&entry.path(), &format!("{relative}/"), files)?;
        } else if kind.is_file() {
            // Names that are not valid site paths cannot be site files; skip them.
            if let Ok(path) = relative.parse() {
                let size = entry.metadata().map_err(read_error)?.len();
                files.push((path, entry.path(), size));
            }
        }
    }
    Ok(())
}

/// Uploads the site folder `site` to `destination`, skipping what it already has.
///
/// # Errors
///
/// Reading the folder or talking to the destination failed; files uploaded before
/// the failure stay, and running `push` again finishes the job.
pub fn push(
    site: &Path,
    destination: &dyn Storage,
    reporter: &dyn PushReporter,
) -> Result<PushReport> {
    let mut report = PushReport::default();
    for (path, local, size) in site_files(site)? {
        let mutable = stage(&path) != 0
            || path.as_str() == ".nojekyll"
            || path == layout::measured_adoption();
        let uploaded = if !mutable {
            if destination.size(&path)? == Some(size) {
                false
            } else {
                reporter.on_upload(&path, size);
                destination.put_file(&path, &local)?;
                true
            }
        } else {
            let bytes = fs_err::read(&local).map_err(|source| Error::Read {
                path: local.clone(),
                source,
            })?;
            if destination.get(&path)?.as_deref() == Some(bytes.as_slice()) {
                false
            } else {
                reporter.on_upload(&path, size);
                destination.put_bytes(&path, &bytes)?;
                if stage(&path) == 1 {
                    report.channels_written.push(path.to_string());
                }
                true
            }
        };
        if uploaded {
            report.uploaded.add(size);
        } else {
            report.present.add(size);
        }
        reporter.on_file(&path, size, uploaded);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use wavecast_site::FsStorage;

    use super::*;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl PushReporter for Log {
        fn on_upload(&self, path: &RelativePath, _bytes: u64) {
            self.0.lock().unwrap().push(path.to_string());
        }
    }

    #[test]
    fn pushes_blobs_first_and_only_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let site = FsStorage::new(dir.path().join("site"));
        for (path, content) in [
            ("index.html", "page"),
            ("channels/stable.json", "{}"),
            ("blobs/b.json", "[]"),
            ("blobs/a.tar.gz", "package"),
            (".nojekyll", ""),
        ] {
            site.put_bytes(&path.parse().unwrap(), content.as_bytes())
                .unwrap();
        }
        std::fs::write(dir.path().join("site/blobs/.wavecast-temp"), "x").unwrap();
        let destination = FsStorage::new(dir.path().join("copy"));
        let log = Log::default();
        let report = push(site.root(), &destination, &log).unwrap();
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                ".nojekyll",
                "blobs/a.tar.gz",
                "blobs/b.json",
                "channels/stable.json",
                "index.html"
            ]
        );
        assert_eq!(report.uploaded.files, 5);
        assert_eq!(report.channels_written, ["channels/stable.json"]);

        site.put_bytes(&"channels/stable.json".parse().unwrap(), b"{1}")
            .unwrap();
        let log = Log::default();
        let report = push(site.root(), &destination, &log).unwrap();
        assert_eq!(*log.0.lock().unwrap(), ["channels/stable.json"]);
        assert_eq!((report.uploaded.files, report.present.files), (1, 4));

        // The measured adoption changes in place: same size, other counts.
        let stats: RelativePath = "stats.json".parse().unwrap();
        site.put_bytes(&stats, b"{\"a\":1}").unwrap();
        push(site.root(), &destination, &Log::default()).unwrap();
        site.put_bytes(&stats, b"{\"a\":2}").unwrap();
        let log = Log::default();
        push(site.root(), &destination, &log).unwrap();
        assert_eq!(*log.0.lock().unwrap(), ["stats.json"]);
        assert_eq!(destination.get(&stats).unwrap().unwrap(), b"{\"a\":2}");
    }
}
