//! Rebuilding file content from bytes: decompressing a file's zstd copy, applying a
//! patch to a base. These only stream bytes into a writer; the caller limits the
//! output and verifies its hash ([`VerifiedFile`](crate::install::verified::VerifiedFile)).
//!
//! The encodings are defined once, in the `wavecast-delta` crate that the publisher
//! encodes with: a file copy is one zstd frame; patches are zstd `--patch-from`
//! frames, bsdiff 4 files, or bsdiff instructions re-encoded in one zstd frame.

use std::io::{self, Read, Write};

use wavecast_schema::PatchAlgorithm;

/// The largest back-reference window a decoder accepts, as a power of two: zstd's own
/// maximum, since a large file copy may use a long window.
const WINDOW_LOG_MAX: u32 = if cfg!(target_pointer_width = "64") {
    31
} else {
    30
};

/// Decompresses a file copy (one zstd frame; anything after it is ignored) into
/// `out`, streaming.
///
/// # Errors
///
/// The decoder's errors (not zstd, truncated, corrupt) and `out`'s.
pub(crate) fn decompress(copy: impl Read, out: &mut dyn Write) -> io::Result<u64> {
    let mut decoder = zstd::stream::read::Decoder::new(copy)?.single_frame();
    decoder.window_log_max(WINDOW_LOG_MAX)?;
    io::copy(&mut decoder, out)
}

/// Applies `patch` to `base` and writes the result, at most `size` bytes, into `out`.
///
/// # Errors
///
/// The decoder's errors (malformed patch, wrong base, output past `size`) and `out`'s.
pub(crate) fn apply(
    algorithm: PatchAlgorithm,
    base: &[u8],
    patch: &[u8],
    size: u64,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let content = wavecast_delta::apply_patch(algorithm, base, patch, size)?;
    out.write_all(&content)?;
    Ok(content.len() as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use zstd::zstd_safe::CParameter;

    use super::*;

    /// `len` bytes of pseudo-random, poorly compressible data.
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    /// `content` with a few bytes changed in the middle and a tail appended.
    pub(crate) fn edited(content: &[u8]) -> Vec<u8> {
        let mut edited = content.to_vec();
        let middle = edited.len() / 2;
        edited[middle..middle + 4].copy_from_slice(b"EDIT");
        edited.extend_from_slice(b"and a new tail");
        edited
    }

    /// A file copy as the publisher makes it.
    pub(crate) fn file_copy(content: &[u8]) -> Vec<u8> {
        wavecast_delta::compress_copy(content, wavecast_delta::DEFAULT_COPY_LEVEL).unwrap()
    }

    /// A zstd patch from `old` to `new` as the publisher makes it.
    pub(crate) fn zstd_patch(old: &[u8], new: &[u8]) -> Vec<u8> {
        wavecast_delta::zstd_patch(old, new).unwrap()
    }

    /// A bsdiff patch from `old` to `new` as the publisher makes it.
    pub(crate) fn bsdiff_patch(old: &[u8], new: &[u8]) -> Vec<u8> {
        wavecast_delta::bsdiff_patch(old, new).unwrap()
    }

    fn applied(
        algorithm: PatchAlgorithm,
        base: &[u8],
        patch: &[u8],
        size: u64,
    ) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        apply(algorithm, base, patch, size, &mut out)?;
        Ok(out)
    }

    #[test]
    fn zstd_and_bsdiff_patches_rebuild_the_new_content() {
        let old = noise(300_000, 1);
        let new = edited(&old);
        let size = new.len() as u64;
        let zstd = zstd_patch(&old, &new);
        assert!(
            zstd.len() < 1000,
            "a small edit makes a small patch: {}",
            zstd.len()
        );
        assert_eq!(
            applied(PatchAlgorithm::Zstd, &old, &zstd, size).unwrap(),
            new
        );
        let bsdiff = bsdiff_patch(&old, &new);
        assert!(bsdiff.len() < 1000, "{}", bsdiff.len());
        assert_eq!(
            applied(PatchAlgorithm::Bsdiff, &old, &bsdiff, size).unwrap(),
            new
        );
        let compact = wavecast_delta::bsdiff_zstd_patch(&old, &new).unwrap();
        assert!(
            compact.len() < bsdiff.len(),
            "{} {}",
            compact.len(),
            bsdiff.len()
        );
        assert_eq!(
            applied(PatchAlgorithm::BsdiffZstd, &old, &compact, size).unwrap(),
            new
        );
    }

    #[test]
    fn a_patch_against_the_wrong_base_or_size_fails_or_differs() {
        let old = noise(100_000, 2);
        let new = edited(&old);
        let other = noise(100_000, 3);
        let size = new.len() as u64;
        let zstd = zstd_patch(&old, &new);
        assert!(
            applied(PatchAlgorithm::Zstd, &other, &zstd, size).is_ok_and(|out| out != new)
                || applied(PatchAlgorithm::Zstd, &other, &zstd, size).is_err()
        );
        let bsdiff = bsdiff_patch(&old, &new);
        assert_ne!(
            applied(PatchAlgorithm::Bsdiff, &other, &bsdiff, size).unwrap(),
            new
        );
        // An output past the declared size is refused, not truncated.
        assert!(applied(PatchAlgorithm::Bsdiff, &old, &bsdiff, size - 1).is_err());
        assert!(applied(PatchAlgorithm::Zstd, &old, &zstd, size - 1).is_err());
        assert!(applied(PatchAlgorithm::Zstd, &old, b"not a patch", size).is_err());
        assert!(applied(PatchAlgorithm::Bsdiff, &old, b"not a patch", size).is_err());
    }

    #[test]
    fn file_copies_decompress_and_garbage_does_not() {
        let content = noise(50_000, 4);
        let copy = file_copy(&content);
        let mut out = Vec::new();
        decompress(&copy[..], &mut out).unwrap();
        assert_eq!(out, content);
        let mut out = Vec::new();
        assert!(decompress(&copy[..copy.len() / 2], &mut out).is_err() || out != content);
        assert!(decompress(&b"garbage"[..], &mut Vec::new()).is_err());
    }

    #[test]
    fn a_patch_declaring_a_window_past_the_default_limit_decodes() {
        // Decoders accept a 2^27 window by default. A frame without a content size
        // declares its window, here 2^28, which only a raised limit accepts.
        let old = noise(1 << 20, 5);
        let new = edited(&old);
        let mut encoder =
            zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 3, &old).unwrap();
        encoder.set_parameter(CParameter::WindowLog(28)).unwrap();
        encoder
            .set_parameter(CParameter::EnableLongDistanceMatching(true))
            .unwrap();
        encoder.write_all(&new).unwrap();
        let patch = encoder.finish().unwrap();
        let mut default_limits = zstd::stream::read::Decoder::with_ref_prefix(&patch[..], &old)
            .unwrap()
            .single_frame();
        assert!(
            io::copy(&mut default_limits, &mut io::sink()).is_err(),
            "the test needs a window past the default limit"
        );
        let mut out = Vec::new();
        apply(
            PatchAlgorithm::Zstd,
            &old,
            &patch,
            new.len() as u64,
            &mut out,
        )
        .unwrap();
        assert!(out == new);
    }
}
