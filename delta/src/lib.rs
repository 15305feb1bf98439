//! The encodings of wavecast's differential updates: file copies and binary patches.
//!
//! The publisher encodes with these functions and the client decodes with the same
//! crate, so both sides always agree byte for byte. Decoders take untrusted input:
//! they bound their output and return errors, never panic, on malformed patches.
//!
//! # File copies
//!
//! Every distinct file content is stored once at `blobs/<content-blake3>.zst`
//! ([`compress_copy`]): one standard zstd frame (magic number, content size in the
//! header, no checksum, no dictionary), compressed at the publisher's level (default
//! [`DEFAULT_COPY_LEVEL`], 12) with zstd's parameters for that level. Files larger than [`LARGE_COPY`] (32 MiB) use
//! at most level [`LARGE_COPY_LEVEL`] (12) with long-distance matching and a 2^27 window
//! ([`LARGE_COPY_WINDOW_LOG`]), since level 19 runs at about 2 MB/s per core. Every
//! window log is at most 27, so `zstd -d` and any decoder with default limits reads
//! them; the client decodes one frame, reads at most `packed_size` bytes, stops past
//! `size` bytes of output and checks the content's blake3.
//!
//! ## `zstd` patches ([`zstd_patch`], [`apply_zstd_patch`])
//!
//! One standard zstd frame of the new content, compressed with the old content as a
//! *raw-content reference prefix* (`ZSTD_CCtx_refPrefix`, as `zstd --patch-from`):
//!
//! * level [`PATCH_LEVEL`] (19);
//! * window log `W` = [`patch_window_log`]: the bit length of `old.len() + new.len()`
//!   (so the window spans the whole base from anywhere in the target), at least 10
//!   and at most [`MAX_WINDOW_LOG`] (30);
//! * long-distance matching on; content size in the frame header; no checksum (the
//!   client checks blake3); no dictionary id;
//! * encoder-only: blocks of at most 128 KiB - 1 byte, which keeps zstd 1.5.7's block
//!   pre-splitter off (it splits long matches across extra blocks: patches 15 % to
//!   30 % larger).
//!
//! To decode, a client creates a zstd decompression context, references the **whole
//! old content** as its prefix (`ZSTD_DCtx_refPrefix`, raw content; in Rust
//! `zstd::stream::read::Decoder::with_ref_prefix(patch, old)` or
//! `zstd_safe::DCtx::ref_prefix`), raises the window limit to at least `W`
//! (`ZSTD_d_windowLogMax` = 31 is always enough; the default 27 is not for bases over
//! 64 MiB), decodes exactly one frame, and stops past the target's `size`. The same
//! bytes decode with `zstd -d --long=31 --patch-from=OLD PATCH`.
//!
//! ## `bsdiff` patches ([`bsdiff_patch`], [`apply_bsdiff_patch`])
//!
//! A bsdiff 4 file (`BSDIFF40` header, then bzip2-compressed control, diff and extra
//! blocks) from `qbsdiff::Bsdiff` with exact-match skipping off (`small_match(0)`,
//! about 1 % smaller than the default) and no parallel split (which would cost 20 %
//! more bytes), bzip2 level 6. Clients apply it with
//! `qbsdiff::Bspatch::new(patch)?.apply(old, out)` after checking that
//! `hint_target_size()` equals the target's size; the stock `bspatch` also reads it.
//!
//! ## `bsdiff-zstd` ([`bsdiff_zstd_patch`], [`apply_bsdiff_zstd_patch`])
//!
//! The same
//! instructions as the bsdiff patch, re-encoded without bsdiff's fixed costs (8-byte
//! integers, a diff block as long as the copied data, three bzip2 streams): on the
//! typescript 5.9.2 → 5.9.3 files it is 40 % to 80 % smaller than bsdiff and smaller
//! than `xdelta3 -9` (`_tsc.js`: 372 bytes against bsdiff 628, xdelta3 484), and
//! 6 % smaller than bsdiff on the esbuild binary. One zstd frame (level 19, window log
//! the bit length of the payload, at least 10 and at most 27, content size in the
//! header, no checksum) holding, with LEB128 varints and zigzag for signed values:
//!
//! ```text
//! new_size  n  add[n]  copy[n]  zigzag(seek)[n]
//! runs  (zeros len byte[len])[runs]      the diff bytes of all adds, zero runs elided
//! extra bytes                            exactly sum(copy) bytes, to the end
//! ```
//!
//! Applied like bsdiff: with `o` = 0, for each entry i, append `old[o + j] + diff`
//! (wrapping) for `j < add[i]`, then `copy[i]` bytes of extra, then `o += add[i] +
//! seek[i]`. `sum(add) + sum(copy)` must equal `new_size`, and every read of `old`
//! must fall inside it.

#![deny(missing_docs)]

use std::io::{self, Read};

use wavecast_schema::PatchAlgorithm;
use zstd::zstd_safe::{self, CParameter};

/// Default zstd level of file copies. Level 19 makes copies about 12 % smaller on
/// real releases but takes about 9 times as long (typescript 5.9.3: 3.74 MB in 1.3 s
/// at 12, 3.34 MB in 11.6 s at 19, one core); copies are only fetched for changed
/// files without a usable patch, so publishers may pick 19 (`--copy-level`).
pub const DEFAULT_COPY_LEVEL: i32 = 12;
/// Files larger than this (32 MiB) are compressed at [`LARGE_COPY_LEVEL`].
pub const LARGE_COPY: usize = 32 << 20;
/// zstd level of the copies of files larger than [`LARGE_COPY`]: level 19 would take
/// about 15 s per 32 MiB on one core; level 12 takes about 1.5 s, 10 % larger.
pub const LARGE_COPY_LEVEL: i32 = 12;
/// Window log of the copies of files larger than [`LARGE_COPY`], with long-distance
/// matching: 27, the largest that decoders accept by default.
pub const LARGE_COPY_WINDOW_LOG: u32 = 27;
/// zstd level of patches.
pub const PATCH_LEVEL: i32 = 19;
/// The largest window log a patch uses (decodable by 32-bit clients too).
pub const MAX_WINDOW_LOG: u32 = 30;
/// Encoder block limit: just under zstd's 128 KiB maximum, which turns off the block
/// pre-splitter of zstd 1.5.7 (it only splits full 128 KiB blocks). Decoders are not
/// affected.
const PATCH_MAX_BLOCK_SIZE: u32 = (128 << 10) - 1;

/// zstd's error code as an I/O error.
fn zstd_error(code: zstd_safe::ErrorCode) -> io::Error {
    io::Error::other(zstd_safe::get_error_name(code).to_owned())
}

/// Compresses `content` as one zstd frame with `parameters`, optionally against a
/// reference prefix.
fn zstd_encode(
    content: &[u8],
    prefix: Option<&[u8]>,
    parameters: &[CParameter],
) -> io::Result<Vec<u8>> {
    let mut cctx = zstd_safe::CCtx::try_create()
        .ok_or_else(|| io::Error::other("zstd could not allocate a compression context"))?;
    for parameter in parameters {
        cctx.set_parameter(*parameter).map_err(zstd_error)?;
    }
    cctx.set_parameter(CParameter::ContentSizeFlag(true))
        .map_err(zstd_error)?;
    cctx.set_parameter(CParameter::ChecksumFlag(false))
        .map_err(zstd_error)?;
    cctx.set_pledged_src_size(Some(content.len() as u64))
        .map_err(zstd_error)?;
    if let Some(prefix) = prefix {
        cctx.ref_prefix(prefix).map_err(zstd_error)?;
    }
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(content.len()));
    cctx.compress2(&mut out, content).map_err(zstd_error)?;
    Ok(out)
}

/// Reads one zstd frame from `decoder`, refusing more than `max_size` bytes of output.
fn read_bounded(mut decoder: impl Read, max_size: u64, what: &str) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder
        .by_ref()
        .take(max_size.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > max_size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} decodes to more than {max_size} bytes"),
        ));
    }
    Ok(out)
}

/// The standalone copy of a file's content (see the module documentation).
///
/// # Errors
///
/// zstd's, such as a failed allocation.
pub fn compress_copy(content: &[u8], level: i32) -> io::Result<Vec<u8>> {
    if content.len() > LARGE_COPY {
        zstd_encode(
            content,
            None,
            &[
                CParameter::CompressionLevel(level.min(LARGE_COPY_LEVEL)),
                CParameter::WindowLog(LARGE_COPY_WINDOW_LOG),
                CParameter::EnableLongDistanceMatching(true),
            ],
        )
    } else {
        zstd_encode(content, None, &[CParameter::CompressionLevel(level)])
    }
}

/// Decompresses a file copy of at most `max_size` bytes.
///
/// # Errors
///
/// The copy is not one valid zstd frame, or decodes to more than `max_size` bytes.
pub fn decompress_copy(copy: &[u8], max_size: u64) -> io::Result<Vec<u8>> {
    let mut decoder = zstd::stream::read::Decoder::new(copy)?.single_frame();
    decoder.window_log_max(31)?;
    read_bounded(decoder, max_size, "the file copy")
}

/// The window log of a zstd patch from `old_len` bytes to `new_len` bytes.
pub fn patch_window_log(old_len: usize, new_len: usize) -> u32 {
    let span = old_len as u64 + new_len as u64;
    (u64::BITS - span.leading_zeros()).clamp(10, MAX_WINDOW_LOG)
}

/// A zstd patch from `old` to `new` (see the module documentation).
///
/// # Errors
///
/// zstd's, such as a failed allocation.
pub fn zstd_patch(old: &[u8], new: &[u8]) -> io::Result<Vec<u8>> {
    zstd_encode(
        new,
        Some(old),
        &[
            CParameter::CompressionLevel(PATCH_LEVEL),
            CParameter::WindowLog(patch_window_log(old.len(), new.len())),
            CParameter::EnableLongDistanceMatching(true),
            CParameter::MaxBlockSize(PATCH_MAX_BLOCK_SIZE),
        ],
    )
}

/// Applies a zstd patch to `old`, the way clients do: the content it produces, of at
/// most `max_size` bytes.
///
/// # Errors
///
/// The patch is not a zstd frame made against `old`, or produces more than
/// `max_size` bytes.
pub fn apply_zstd_patch(old: &[u8], patch: &[u8], max_size: u64) -> io::Result<Vec<u8>> {
    let mut decoder = zstd::stream::read::Decoder::with_ref_prefix(patch, old)?.single_frame();
    decoder.window_log_max(31)?;
    read_bounded(decoder, max_size, "the zstd patch")
}

/// A bsdiff 4 patch from `old` to `new` (see the module documentation).
///
/// # Errors
///
/// qbsdiff's, in practice none: it writes to memory.
pub fn bsdiff_patch(old: &[u8], new: &[u8]) -> io::Result<Vec<u8>> {
    let mut patch = Vec::new();
    qbsdiff::Bsdiff::new(old, new)
        .small_match(0)
        .parallel_scheme(qbsdiff::ParallelScheme::Never)
        .compare(io::Cursor::new(&mut patch))?;
    Ok(patch)
}

/// Applies a bsdiff patch to `old`, the way clients do: the content it produces, of at
/// most `max_size` bytes.
///
/// # Errors
///
/// The patch is not a bsdiff 4 file, does not fit `old`, or declares more than
/// `max_size` bytes.
pub fn apply_bsdiff_patch(old: &[u8], patch: &[u8], max_size: u64) -> io::Result<Vec<u8>> {
    let patcher = qbsdiff::Bspatch::new(patch)?;
    let declared = patcher.hint_target_size();
    if declared > max_size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the bsdiff patch produces {declared} bytes, more than {max_size}"),
        ));
    }
    let mut out = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    patcher.apply(old, io::Cursor::new(&mut out))?;
    Ok(out)
}

/// Reads a LEB128 varint at `*at`.
fn read_varint(bytes: &[u8], at: &mut usize) -> io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*at)
            .ok_or_else(|| invalid("the patch is truncated"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(invalid("a number in the patch is too long"))
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// One bsdiff instruction: `add` bytes of old plus diff, `copy` bytes of extra, then
/// move the old position by `seek`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Control {
    add: u64,
    copy: u64,
    seek: i64,
}

/// bsdiff's 8-byte sign-magnitude integer.
fn bsdiff_int(bytes: &[u8]) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[..8]);
    let negative = raw[7] & 0x80 != 0;
    raw[7] &= 0x7f;
    let magnitude = i64::from_le_bytes(raw);
    if negative { -magnitude } else { magnitude }
}

/// A bsdiff 4 patch, decompressed.
struct BsdiffParts {
    new_size: u64,
    controls: Vec<Control>,
    diff: Vec<u8>,
    extra: Vec<u8>,
}

/// The instructions, diff bytes and extra bytes of a bsdiff 4 patch.
fn parse_bsdiff(patch: &[u8]) -> io::Result<BsdiffParts> {
    if patch.len() < 32 || &patch[..8] != b"BSDIFF40" {
        return Err(invalid("not a bsdiff 4 patch"));
    }
    let size = |at: usize| {
        usize::try_from(bsdiff_int(&patch[at..at + 8])).map_err(|_| invalid("bad bsdiff header"))
    };
    let (control_len, diff_len) = (size(8)?, size(16)?);
    let new_size = size(24)? as u64;
    let diff_start = 32usize
        .checked_add(control_len)
        .filter(|end| *end <= patch.len())
        .ok_or_else(|| invalid("bad bsdiff header"))?;
    let extra_start = diff_start
        .checked_add(diff_len)
        .filter(|end| *end <= patch.len())
        .ok_or_else(|| invalid("bad bsdiff header"))?;
    let unbzip = |bytes: &[u8]| -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        bzip2::read::BzDecoder::new(bytes)
            .take(new_size.saturating_mul(2).saturating_add(1 << 20))
            .read_to_end(&mut out)?;
        Ok(out)
    };
    let control_bytes = unbzip(&patch[32..diff_start])?;
    let diff = unbzip(&patch[diff_start..extra_start])?;
    let extra = unbzip(&patch[extra_start..])?;
    if control_bytes.len() % 24 != 0 {
        return Err(invalid("the bsdiff control block is cut short"));
    }
    let controls = control_bytes
        .chunks_exact(24)
        .map(|entry| {
            let (add, copy) = (bsdiff_int(&entry[..8]), bsdiff_int(&entry[8..16]));
            Ok(Control {
                add: u64::try_from(add).map_err(|_| invalid("negative bsdiff length"))?,
                copy: u64::try_from(copy).map_err(|_| invalid("negative bsdiff length"))?,
                seek: bsdiff_int(&entry[16..24]),
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok(BsdiffParts {
        new_size,
        controls,
        diff,
        extra,
    })
}

/// Re-encodes a bsdiff 4 patch as a `bsdiff-zstd` patch (see the module
/// documentation): the same instructions, without bsdiff's fixed costs.
///
/// # Errors
///
/// `bsdiff` is not a well-formed bsdiff 4 patch, or zstd failed.
pub fn reencode_bsdiff(bsdiff: &[u8]) -> io::Result<Vec<u8>> {
    let BsdiffParts {
        new_size,
        controls,
        diff,
        extra,
    } = parse_bsdiff(bsdiff)?;
    let mut payload = Vec::with_capacity(controls.len() * 6 + extra.len() + 64);
    write_varint(new_size, &mut payload);
    write_varint(controls.len() as u64, &mut payload);
    for control in &controls {
        write_varint(control.add, &mut payload);
    }
    for control in &controls {
        write_varint(control.copy, &mut payload);
    }
    for control in &controls {
        write_varint(
            ((control.seek << 1) ^ (control.seek >> 63)) as u64,
            &mut payload,
        );
    }
    let mut runs = Vec::new();
    let mut at = 0;
    while at < diff.len() {
        let zeros_start = at;
        while at < diff.len() && diff[at] == 0 {
            at += 1;
        }
        let bytes_start = at;
        while at < diff.len() && diff[at] != 0 {
            at += 1;
        }
        runs.push((bytes_start - zeros_start, bytes_start..at));
    }
    write_varint(runs.len() as u64, &mut payload);
    for (zeros, bytes) in runs {
        write_varint(zeros as u64, &mut payload);
        write_varint(bytes.len() as u64, &mut payload);
        payload.extend_from_slice(&diff[bytes]);
    }
    payload.extend_from_slice(&extra);
    let window_log = (usize::BITS - payload.len().leading_zeros()).clamp(10, 27);
    zstd_encode(
        &payload,
        None,
        &[
            CParameter::CompressionLevel(PATCH_LEVEL),
            CParameter::WindowLog(window_log),
        ],
    )
}

/// A `bsdiff-zstd` patch from `old` to `new`: [`bsdiff_patch`], re-encoded.
///
/// # Errors
///
/// The encoders'.
pub fn bsdiff_zstd_patch(old: &[u8], new: &[u8]) -> io::Result<Vec<u8>> {
    reencode_bsdiff(&bsdiff_patch(old, new)?)
}

/// Applies a `bsdiff-zstd` patch to `old`: the content it produces, of at most
/// `max_size` bytes.
///
/// # Errors
///
/// The patch is malformed, reads outside `old`, or produces more than `max_size`
/// bytes.
pub fn apply_bsdiff_zstd_patch(old: &[u8], patch: &[u8], max_size: u64) -> io::Result<Vec<u8>> {
    let mut decoder = zstd::stream::read::Decoder::new(patch)?.single_frame();
    decoder.window_log_max(27)?;
    // Varints take at most 1.5 bytes per byte of output (a zero run, a length and a
    // byte for every two diff bytes), plus the instructions: 8 times is a safe bound.
    let payload = read_bounded(
        decoder,
        max_size.saturating_mul(8).saturating_add(1024),
        "the patch",
    )?;
    let at = &mut 0;
    let new_size = read_varint(&payload, at)?;
    if new_size > max_size {
        return Err(invalid("the patch produces more than the expected size"));
    }
    let count = usize::try_from(read_varint(&payload, at)?)
        .ok()
        .filter(|count| *count <= payload.len())
        .ok_or_else(|| invalid("too many instructions"))?;
    let mut controls = vec![
        Control {
            add: 0,
            copy: 0,
            seek: 0
        };
        count
    ];
    for control in &mut controls {
        control.add = read_varint(&payload, at)?;
    }
    for control in &mut controls {
        control.copy = read_varint(&payload, at)?;
    }
    for control in &mut controls {
        let zigzag = read_varint(&payload, at)?;
        control.seek = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
    }
    let total = |part: fn(&Control) -> u64| {
        controls
            .iter()
            .try_fold(0u64, |sum, control| sum.checked_add(part(control)))
            .ok_or_else(|| invalid("the patch is too large"))
    };
    let (adds, copies) = (
        total(|control| control.add)?,
        total(|control| control.copy)?,
    );
    if adds.checked_add(copies) != Some(new_size) {
        return Err(invalid(
            "the instructions do not add up to the declared size",
        ));
    }
    // `adds` is at most `new_size`, itself at most `max_size`.
    let mut diff = Vec::with_capacity(adds as usize);
    let runs = read_varint(&payload, at)?;
    for _ in 0..runs {
        let zeros = read_varint(&payload, at)?;
        let len = read_varint(&payload, at)?;
        let end = (diff.len() as u64)
            .checked_add(zeros)
            .and_then(|end| end.checked_add(len))
            .filter(|end| *end <= adds)
            .ok_or_else(|| invalid("the diff runs past the instructions"))?;
        diff.resize(diff.len() + zeros as usize, 0);
        let bytes = payload
            .get(*at..*at + len as usize)
            .ok_or_else(|| invalid("the patch is truncated"))?;
        diff.extend_from_slice(bytes);
        *at += len as usize;
        debug_assert_eq!(diff.len() as u64, end);
    }
    diff.resize(adds as usize, 0);
    let extra = &payload[*at..];
    if extra.len() as u64 != copies {
        return Err(invalid("the extra bytes do not match the instructions"));
    }
    let mut out = Vec::with_capacity(new_size as usize);
    let (mut position, mut diff_at, mut extra_at) = (0i64, 0usize, 0usize);
    for control in &controls {
        let add = control.add as usize;
        let start = usize::try_from(position)
            .ok()
            .filter(|start| start.checked_add(add).is_some_and(|end| end <= old.len()))
            .ok_or_else(|| invalid("the patch reads outside the old file"))?;
        out.extend(
            old[start..start + add]
                .iter()
                .zip(&diff[diff_at..diff_at + add])
                .map(|(old, diff)| old.wrapping_add(*diff)),
        );
        diff_at += add;
        let copy = control.copy as usize;
        out.extend_from_slice(&extra[extra_at..extra_at + copy]);
        extra_at += copy;
        position = position
            .checked_add(control.add as i64)
            .and_then(|position| position.checked_add(control.seek))
            .ok_or_else(|| invalid("the patch seeks too far"))?;
    }
    Ok(out)
}

/// Builds a patch from `old` to `new` with `algorithm`.
///
/// # Errors
///
/// The encoder's.
pub fn make_patch(algorithm: PatchAlgorithm, old: &[u8], new: &[u8]) -> io::Result<Vec<u8>> {
    match algorithm {
        PatchAlgorithm::Zstd => zstd_patch(old, new),
        PatchAlgorithm::Bsdiff => bsdiff_patch(old, new),
        PatchAlgorithm::BsdiffZstd => bsdiff_zstd_patch(old, new),
    }
}

/// Applies a patch made by [`make_patch`].
///
/// # Errors
///
/// The decoder's: a malformed patch, a wrong base, an output over `max_size`.
pub fn apply_patch(
    algorithm: PatchAlgorithm,
    old: &[u8],
    patch: &[u8],
    max_size: u64,
) -> io::Result<Vec<u8>> {
    match algorithm {
        PatchAlgorithm::Zstd => apply_zstd_patch(old, patch, max_size),
        PatchAlgorithm::Bsdiff => apply_bsdiff_patch(old, patch, max_size),
        PatchAlgorithm::BsdiffZstd => apply_bsdiff_zstd_patch(old, patch, max_size),
    }
}

/// Files larger than this (1 GiB), old or new, get no patch: bsdiff's suffix array
/// alone would take several times their size in memory.
pub const MAX_PATCH_INPUT: u64 = 1 << 30;

/// Every algorithm a patch is tried with, in order of preference on equal sizes.
pub const ALGORITHMS: [PatchAlgorithm; 3] = [
    PatchAlgorithm::Zstd,
    PatchAlgorithm::Bsdiff,
    PatchAlgorithm::BsdiffZstd,
];

#[cfg(test)]
mod tests {
    use std::ops::Not;
    use std::path::{Path, PathBuf};

    use super::*;

    /// Deterministic text that compresses about as well as source code: lines of
    /// pseudo-random words.
    fn text(seed: u64, lines: usize) -> Vec<u8> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut out = Vec::new();
        for line in 0..lines {
            out.extend_from_slice(format!("{line:6}:").as_bytes());
            for _ in 0..8 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                out.extend_from_slice(format!(" w{:x}", (state >> 52) & 0xfff).as_bytes());
            }
            out.push(b'\n');
        }
        out
    }

    /// `old` with a few edits: a changed byte, an inserted and a removed line.
    fn edited(old: &[u8]) -> Vec<u8> {
        let mut new = old.to_vec();
        new[100] ^= 1;
        let middle = new.len() / 2;
        new.splice(middle..middle, b"an inserted line\n".iter().copied());
        new.drain(new.len() - 300..new.len() - 250);
        new
    }

    #[test]
    fn both_patch_algorithms_round_trip_and_beat_the_copy() {
        let old = text(1, 5000);
        let new = edited(&old);
        let copy = compress_copy(&new, DEFAULT_COPY_LEVEL).unwrap();
        assert_eq!(decompress_copy(&copy, new.len() as u64).unwrap(), new);
        for algorithm in ALGORITHMS {
            let patch = make_patch(algorithm, &old, &new).unwrap();
            assert!(
                patch.len() * 20 < copy.len(),
                "{algorithm:?}: {} vs a {}-byte copy",
                patch.len(),
                copy.len()
            );
            let rebuilt = apply_patch(algorithm, &old, &patch, new.len() as u64).unwrap();
            assert_eq!(rebuilt, new, "{algorithm:?}");
            // Output limits hold, and another base does not give the content back.
            assert!(apply_patch(algorithm, &old, &patch, new.len() as u64 - 1).is_err());
            let other = text(2, 5000);
            assert!(
                apply_patch(algorithm, &other, &patch, new.len() as u64)
                    .is_ok_and(|rebuilt| rebuilt == new)
                    .not(),
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn zstd_patches_are_plain_frames_with_the_documented_window() {
        let old = text(3, 20_000);
        let new = edited(&old);
        let patch = zstd_patch(&old, &new).unwrap();
        assert_eq!(
            zstd_safe::get_frame_content_size(&patch).ok(),
            Some(Some(new.len() as u64))
        );
        let log = patch_window_log(old.len(), new.len());
        assert!(1u64 << log > (old.len() + new.len()) as u64);
        assert_eq!(patch_window_log(10, 10), 10);
        assert_eq!(patch_window_log(usize::MAX / 2, 1), MAX_WINDOW_LOG);
        // The one-shot decoder with the prefix, as a client may do it.
        let mut dctx = zstd_safe::DCtx::create();
        dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(31))
            .unwrap();
        dctx.ref_prefix(&old).unwrap();
        let mut out = Vec::with_capacity(new.len());
        dctx.decompress(&mut out, &patch).unwrap();
        assert_eq!(out, new);
        // Without the prefix the frame does not decode.
        assert!(decompress_copy(&patch, new.len() as u64).is_err());
    }

    #[test]
    fn bsdiff_zstd_patches_round_trip_smaller_than_bsdiff() {
        let old = text(5, 20_000);
        let new = edited(&old);
        let bsdiff = bsdiff_patch(&old, &new).unwrap();
        let compact = reencode_bsdiff(&bsdiff).unwrap();
        assert!(
            compact.len() * 2 < bsdiff.len(),
            "{} vs bsdiff {}",
            compact.len(),
            bsdiff.len()
        );
        let size = new.len() as u64;
        assert_eq!(apply_bsdiff_zstd_patch(&old, &compact, size).unwrap(), new);
        assert!(apply_bsdiff_zstd_patch(&old, &compact, size - 1).is_err());
        assert!(apply_bsdiff_zstd_patch(&old[..old.len() / 2], &compact, size).is_err());
        // Binary content with scattered byte changes exercises the diff runs.
        let old: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut new = old.clone();
        for at in (0..new.len()).step_by(997) {
            new[at] = new[at].wrapping_add(3);
        }
        let compact = bsdiff_zstd_patch(&old, &new).unwrap();
        assert_eq!(
            apply_bsdiff_zstd_patch(&old, &compact, new.len() as u64).unwrap(),
            new
        );
    }

    #[test]
    fn malformed_bsdiff_zstd_patches_are_errors_not_panics() {
        let old = text(6, 2000);
        let new = edited(&old);
        let compact = bsdiff_zstd_patch(&old, &new).unwrap();
        let mut payload = zstd::stream::decode_all(compact.as_slice()).unwrap();
        let size = new.len() as u64;
        let mut state = 7u64;
        for round in 0..400 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let mut broken = payload.clone();
            let at = (state >> 33) as usize % broken.len();
            match round % 3 {
                0 => broken[at] ^= (state >> 8) as u8 | 1,
                1 => broken.truncate(at),
                _ => broken.insert(at, 0xff),
            }
            let frame = zstd::bulk::compress(&broken, 3).unwrap();
            // Anything but a panic; the caller checks the content's hash anyway.
            let _ = apply_bsdiff_zstd_patch(&old, &frame, size);
        }
        payload.clear();
        assert!(
            apply_bsdiff_zstd_patch(&old, &zstd::bulk::compress(&payload, 3).unwrap(), size)
                .is_err()
        );
        assert!(reencode_bsdiff(b"BSDIFF40").is_err());
    }

    /// Patch sizes on real release pairs: set `WAVECAST_CORPUS` to the folder that
    /// `shared/corpus/fetch.sh` filled and run with `--ignored --nocapture`.
    #[test]
    #[ignore = "needs the release corpus"]
    #[allow(clippy::print_stderr)]
    fn corpus_patch_sizes() {
        let corpus = PathBuf::from(std::env::var("WAVECAST_CORPUS").expect("WAVECAST_CORPUS"));
        let pairs = std::fs::read_to_string(corpus.join("pairs.tsv")).unwrap();
        for line in pairs.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let root = corpus.join("release").join(fields[0]);
            let (old_root, new_root) = (root.join(fields[1]), root.join(fields[2]));
            let mut totals = [0usize; 4];
            for path in files_under(&new_root, &new_root) {
                let (Ok(old), Ok(new)) = (
                    std::fs::read(old_root.join(&path)),
                    std::fs::read(new_root.join(&path)),
                ) else {
                    continue;
                };
                if old == new {
                    continue;
                }
                let zstd = zstd_patch(&old, &new).unwrap().len();
                let bsdiff = bsdiff_patch(&old, &new).unwrap();
                let compact = reencode_bsdiff(&bsdiff).unwrap().len();
                let best_today = zstd.min(bsdiff.len());
                eprintln!(
                    "{} {path}: zstd {zstd} bsdiff {} bsdiff-zstd {compact}",
                    fields[0],
                    bsdiff.len()
                );
                for (total, size) in
                    totals
                        .iter_mut()
                        .zip([zstd, bsdiff.len(), best_today, best_today.min(compact)])
                {
                    *total += size;
                }
            }
            eprintln!(
                "{}: zstd {} bsdiff {} best of both {} best with bsdiff-zstd {}",
                fields[0], totals[0], totals[1], totals[2], totals[3]
            );
        }
    }

    fn files_under(root: &Path, dir: &Path) -> Vec<String> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_under(root, &path));
            } else {
                files.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
        files
    }
}
