/*!
The wavecast publisher: turns release folders into a signed static site.

# Brief overview

The operations: [`publish`] adds a release to a channel through a
[`wavecast_site::Storage`], writing every blob before the signed manifest that refers
to them; [`rollout`] changes a live release's rollout (share, ramp, rules, cap,
pause, yank) and promotes releases between channels; [`self_update`] offers builds of
the client itself, each checked to report the version offered ([`updater_version`])
and weighed for the debug info it carries ([`debug_info`]).
[`verify`] checks a whole site (signatures, expiry, every blob's size and hash)
through a [`verify::Source`] (a folder, an HTTP base URL or a [`wavecast_site::Storage`]);
[`retire`] takes releases off a channel and [`gc`] deletes the blobs no live release
refers to once they are older than a grace period; [`mirror`] copies the
blobs and signed manifests clients need from one site to another, verifying them on
the way, and [`push`] uploads a site folder to other storage (an S3 bucket), blobs
first.

Below them, what they share: [`channel`] is the round every change to a channel
makes (read and verify its manifest, make its successor with the next serial,
validate, sign under the site's newest root, write), [`rollout_plan`] the pure edits
of a rollout plan, [`client_floor`] the `min_client_version` below which clients
update themselves first, and [`pages`] what GitHub Pages needs of a site. Below
those, the building blocks: [`trust`] reads and extends the site's chain of roots,
[`keys`] generates and loads minisign keys ([`keys::SigningKey`]), [`package`] builds
deterministic tar.zst (or tar.gz) module packages and their file indexes, [`copies`] each file's
zstd copy and the copy packs made of them, [`earlier`] reads the earlier releases a
publish builds on, [`delta`] finds each changed file's counterparts and builds binary
patches from them, and [`pack`] puts patches and copies together into delta packs.
Every module returns this crate's [`Error`], which names none of them.

A module uses modules below it, never above, so no two depend on each other
(`scripts/check-modules.py` checks it). The library never prints, prompts or parses
arguments: the `wavecast` binary (crate `wavecast-publisher-cli`) is a client of it,
and hands it a key's password through the closure [`keys::SigningKey::load`] takes.

```no_run
use wavecast_publisher::keys::{self, Password};
let generated = keys::generate("keys".as_ref(), Some(&Password::new("pw".into())), false)?;
println!("key id {}", generated.key_id);
# Ok::<(), wavecast_publisher::Error>(())
```
*/
#![deny(missing_docs)]

pub mod channel;
pub mod client_floor;
pub mod copies;
pub mod debug_info;
pub mod delta;
pub mod earlier;
mod error;
pub mod gc;
pub mod keys;
pub mod mirror;
pub mod pack;
pub mod package;
pub mod pages;
mod platform;
mod pool;
pub mod publish;
pub mod push;
mod reported_version;
pub mod retire;
pub mod rollout;
pub mod rollout_plan;
pub mod root_draft;
pub mod self_update;
pub mod sign;
pub mod trust;
pub mod updater_version;
pub mod verify;

pub use error::{Error, Result};
