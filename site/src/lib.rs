/*!
The wavecast static site.

# Brief overview

A site is a tree of plain files that any static host can serve:

```text
channels/<channel>.json      signed manifest envelope, the only mutable files
blobs/<blake3>.json          a release's document for one platform: modules, packs
blobs/<blake3>.tar.gz        module packages
blobs/<blake3>.json.zst      file indexes (zstd), named by the blake3 of their JSON
blobs/<blake3>.copies        copy packs: each module's zstd file copies, back to back
blobs/<blake3>.zst           an image module's package: the image's zstd copy
blobs/<blake3>.pack          delta packs: one earlier release to this one in a download
roots/<n>.json               chain of trust: who signs releases, who signs root n+1
index.html                   status page, regenerated after every channel change
stats.json                   adoption measured from access logs, if `wavecast stats --html` ran
```

[`layout`] computes where each file goes, purely. A [`Storage`] moves bytes to and
from one kind of host; [`FsStorage`] is a local folder; `s3::S3Storage` (feature `s3`) is an S3 bucket. [`status_page`] renders the
site's `index.html` from the channel manifests and release documents, with [`chart`]s of a simulated fleet
(and, given them, of the fleet measured from access logs) and the script of [`live`], which recomputes
what each release is offered to when the page is viewed. Publishers write every blob
before the manifest that refers to it, so a reader always sees a complete release.

```
use wavecast_site::layout;
let channel = "stable".parse().unwrap();
assert_eq!(layout::channel_manifest(&channel).as_str(), "channels/stable.json");
```
*/
#![deny(missing_docs)]

pub mod chart;
mod error;
mod fs;
#[cfg(feature = "http")]
pub mod http;
pub mod layout;
pub mod live;
mod markdown;
pub mod measured;
#[cfg(feature = "s3")]
pub mod s3;
pub mod status_page;
mod storage;
pub mod units;

pub use error::{Error, Result, S3Failure};
pub use fs::FsStorage;
#[cfg(feature = "s3")]
pub use s3::S3Storage;
pub use storage::Storage;
