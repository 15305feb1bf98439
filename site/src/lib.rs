/*!
The wavecast static site.

# Brief overview

A site is a tree of plain files that any static host can serve:

```text
channels/<channel>.json      signed manifest envelope, the only mutable files
blobs/<blake3>.tar.gz        module packages, immutable, content-addressed
blobs/<blake3>.json          file indexes, immutable, content-addressed
```

[`layout`] computes where each file goes, purely. A [`Storage`] moves bytes to and
from one kind of host; [`FsStorage`] is a local folder. Publishers write every blob
before the manifest that refers to it, so a reader always sees a complete release.

```
use wavecast_site::layout;
let channel = "stable".parse().unwrap();
assert_eq!(layout::channel_manifest(&channel).as_str(), "channels/stable.json");
```
*/
#![deny(missing_docs)]

mod error;
mod fs;
pub mod layout;
mod storage;

pub use error::{Error, Result};
pub use fs::FsStorage;
pub use storage::Storage;
