/*!
The wavecast publisher: turns release folders into a signed static site.

# Brief overview

[`keys`] generates and loads minisign keys ([`keys::SigningKey`]); [`package`]
builds deterministic tar.gz module packages, their file indexes and each file's zstd
copy; [`delta`] builds binary patches from the files of earlier releases; [`publish`] adds
a release to a channel through a [`wavecast_site::Storage`], writing every blob before
the signed manifest that refers to them; [`rollout`] changes a live release's rollout
plan (share, ramp, rules, cap, pause, yank) and promotes releases between channels,
each change a new signed manifest with the next serial. [`verify`] checks a
whole site (signatures, expiry, every blob's size and hash) through a
[`verify::Source`] (a folder or an HTTP base URL), and [`mirror`] copies the blobs and
signed manifests clients need from one site to another, verifying them on the way;
[`push`] uploads a site folder to other storage (an S3 bucket), blobs first.
[`self_update`] offers builds of the client itself in a channel's manifest, each
checked to report the version offered ([`updater_version`]), and sets the
`min_client_version` below which clients update themselves first.
The `wavecast` binary is a thin
CLI over these.

```no_run
use wavecast_publisher::keys::{self, Password};
let generated = keys::generate("keys".as_ref(), Some(&Password::new("pw".into())), false)?;
println!("key id {}", generated.key_id);
# Ok::<(), wavecast_publisher::Error>(())
```
*/
#![deny(missing_docs)]

pub mod delta;
mod error;
pub mod keys;
pub mod mirror;
pub mod package;
mod pool;
pub mod publish;
pub mod push;
pub mod rollout;
pub mod self_update;
pub mod trust;
pub mod updater_version;
pub mod verify;

pub use error::{Error, Result};
