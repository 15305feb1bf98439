//! Copying a site to another place, verifying every byte on the way.
//!
//! The blobs go first (packages, copy packs, delta packs, updater builds, then the
//! file indexes and platform documents that name them), each checked as `verify`
//! checks it and stored atomically (temporary file, then rename), skipping
//! blobs the destination already has with the right size. The roots follow, then the
//! channel envelopes, byte for byte as signed (a mirror never re-signs), and the
//! status page after them, so the destination is a valid site at every moment and an interrupted mirror
//! is finished by running it again.

use std::io::{BufWriter, Write};

use wavecast_schema::RelativePath;
use wavecast_site::{Storage, layout};

use crate::error::{Error, Result};
use crate::pages::write_nojekyll;
use crate::verify::{self, Count, Reporter, Source, Survey};

/// What [`copy`] did.
#[derive(Debug, Default)]
pub struct MirrorReport {
    /// Blobs written to the destination.
    pub copied: Count,
    /// Blobs the destination already had with the right size.
    pub present: Count,
    /// Channel envelopes written (those the destination had byte for byte are not).
    pub channels_written: Vec<String>,
    /// Whether the status page was copied.
    pub status_page: bool,
}

/// Copies every blob of `survey` from `source` to `destination`, then (only when
/// `survey` has no problems, including those found while copying) the channel
/// envelopes and the status page.
///
/// Blobs that fail their check are not written; they are added to the survey's
/// problems. Errors are failures to read the source or write the destination.
pub fn copy(
    source: &Source,
    survey: &mut Survey,
    destination: &dyn Storage,
    staging: &std::path::Path,
    reporter: &dyn Reporter,
) -> Result<MirrorReport> {
    let mut report = MirrorReport::default();
    let blobs: Vec<_> = survey
        .blobs
        .iter()
        .map(|(path, expected)| (path.clone(), expected.clone()))
        .collect();
    for (path, expected) in &blobs {
        let size = expected.stored_size();
        if destination.size(path)? == Some(size) {
            report.present.add(size);
            reporter.on_blob(size);
            continue;
        }
        fs_err::create_dir_all(staging).map_err(|source| Error::Write {
            path: staging.to_owned(),
            source,
        })?;
        let temp = tempfile::Builder::new()
            .prefix(".wavecast-mirror-")
            .tempfile_in(staging)
            .map_err(|source| Error::Write {
                path: staging.to_owned(),
                source,
            })?;
        let write_error = |source| Error::Write {
            path: temp.path().to_owned(),
            source,
        };
        let mut writer = BufWriter::new(temp.as_file());
        let outcome = verify::fetch_blob(source, path, expected, &mut writer)?;
        writer.flush().map_err(write_error)?;
        drop(writer);
        match outcome {
            Ok(bytes) => {
                survey.checked.add(bytes);
                destination.put_file(path, temp.path())?;
                report.copied.add(bytes);
            }
            Err(what) => survey.problems.push(verify::Problem {
                path: path.to_string(),
                problem: what,
            }),
        }
        reporter.on_blob(size);
    }
    for (path, (expected, bytes)) in &survey.documents {
        let size = expected.stored_size();
        if destination.size(path)? == Some(size) {
            report.present.add(size);
        } else {
            destination.put_bytes(path, bytes)?;
            report.copied.add(size);
        }
        reporter.on_blob(size);
    }
    if !survey.problems.is_empty() {
        return Ok(report);
    }
    // Roots before the manifests that name them, like blobs.
    for (path, bytes) in &survey.roots {
        if destination.get(path)?.as_deref() != Some(bytes.as_slice()) {
            destination.put_bytes(path, bytes)?;
        }
    }
    for channel in &survey.channels {
        let path = layout::channel_manifest(&channel.channel);
        if destination.get(&path)?.as_deref() != Some(channel.envelope.as_slice()) {
            destination.put_bytes(&path, &channel.envelope)?;
            report.channels_written.push(channel.channel.to_string());
        }
    }
    let status_page: RelativePath = layout::status_page();
    if let Some(page) = source.read(&status_page, 64 << 20)? {
        if destination.get(&status_page)?.as_deref() != Some(page.as_slice()) {
            destination.put_bytes(&status_page, &page)?;
        }
        report.status_page = true;
    }
    // A mirror is a site of its own: keep it servable from GitHub Pages too.
    write_nojekyll(destination)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Selection;

    #[test]
    fn a_mirror_holds_every_blob_of_its_releases_and_verifies() {
        let site = crate::publish::tests::Fixture::new();
        let lib = crate::delta::tests::text(1, 4000);
        site.publish("1.0.0", &[("lib", &lib), ("same", b"same")], 3);
        let lib2 = crate::delta::tests::edited(&lib);
        site.publish("1.1.0", &[("lib", &lib2), ("same", b"same")], 3);
        let key =
            verify::load_public_key(site.dir.path().join("keys/wavecast.pub").to_str().unwrap())
                .unwrap();
        let now = "2026-11-22T01:00:00Z".parse().unwrap();
        let source = Source::Folder(site.dir.path().join("site"));
        let mut survey = verify::survey(&source, &Selection::default(), &key, now).unwrap();
        let destination = site.dir.path().join("mirror");
        let storage = wavecast_site::FsStorage::new(&destination);
        let staging = site.dir.path().join("staging");
        let report = copy(&source, &mut survey, &storage, &staging, &()).unwrap();
        assert!(survey.problems.is_empty(), "{:?}", survey.problems);
        assert_eq!(report.channels_written, ["stable"]);
        let listed = storage.list(&"blobs".parse().unwrap()).unwrap();
        for extension in [".json", ".json.zst", ".tar.zst", ".copies", ".pack"] {
            assert!(
                listed.iter().any(|path| path.as_str().ends_with(extension)),
                "{extension}: {listed:?}"
            );
        }
        let mirrored = Source::Folder(destination);
        let mut again = verify::survey(&mirrored, &Selection::default(), &key, now).unwrap();
        verify::check_blobs(&mirrored, &mut again, &()).unwrap();
        assert!(again.problems.is_empty(), "{:?}", again.problems);
        assert_eq!(again.total(), survey.total());
    }
}
