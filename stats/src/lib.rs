/*!
Adoption measured from a wavecast site's access logs, with no telemetry.

# Brief overview

Every update leaves a trace in the host's access log: the polled manifest, then
content-addressed blobs that each belong to one release (a delta pack to one release
from one other). This crate reads those logs back into counts:

- [`log`] parses one line of a format ([`LogFormat`]: nginx and Apache combined, S3
  server access logs, CloudFront standard logs) into a [`log::Request`]. Pure.
- [`SiteMap`] says what each requested path is (a channel's manifest, a release's
  document, a module's package, a pack from X to Y), from the site's manifests and
  release documents ([`SiteMap::load`] reads them through a
  [`wavecast_site::Storage`]).
- [`Tally`] follows each client (a keyed hash of address and user agent, never
  stored or printed) through polls and downloads and counts installs per release and
  origin, active clients, incomplete downloads and pack fallbacks per channel and
  time bucket; [`Tally::finish`] gives the [`Report`].
- [`read_log`] streams a log through a [`Tally`] line by line, in constant memory.
- [`Condition`] is an alert threshold (`incomplete>5%`) checked against a [`Report`].

```
use wavecast_stats::{LogFormat, log::LineParser, log::Parsed};
let mut parser = LineParser::new(LogFormat::Combined);
let line = r#"203.0.113.9 - - [05/Dec/2026:01:19:07 +0000] "GET /channels/stable.json HTTP/1.1" 304 0 "-" "wavecast-update/0.1.0""#;
let Ok(Parsed::Request(request)) = parser.parse(line) else { panic!() };
assert_eq!((request.path, request.status), ("/channels/stable.json", 304));
```
*/
#![deny(missing_docs)]

mod error;
pub mod log;
mod read;
mod report;
mod site_map;
mod tally;
mod threshold;

pub use error::{Error, Result};
pub use log::LogFormat;
pub use read::{LogRead, read_log};
pub use report::{Bucket, ChannelReport, Figures, InstallCount, Report, VersionCount};
pub use site_map::{ChannelId, ReleaseId, ReleaseInfo, Role, SiteMap, SiteObject};
pub use tally::Tally;
pub use threshold::{Breach, Condition, Metric};
