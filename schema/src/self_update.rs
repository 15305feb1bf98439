//! Whether a client must, may or cannot replace its own executable: a pure function
//! of the manifest's floor, the running version and the build offered.

use semver::Version;

/// What a client should do about its own executable, from [`client_update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientUpdate {
    /// The client meets the manifest's `min_client_version`, and no newer build is
    /// offered for its platform.
    UpToDate,
    /// The client meets the floor and a newer build is offered: it may update itself
    /// on request (`wavecast-update self-update`).
    Available,
    /// The client is below the floor and a build at or above it is offered: it must
    /// update itself before it acts on the manifest.
    Required,
    /// The client is below the floor and no build for its platform reaches it: it
    /// can only stop with an error and be updated by other means.
    Unavailable,
}

impl ClientUpdate {
    /// `up_to_date`, `available`, `required` or `unavailable`, for JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "up_to_date",
            Self::Available => "available",
            Self::Required => "required",
            Self::Unavailable => "unavailable",
        }
    }

    /// Whether the client should download the offered build ([`Self::Available`] or
    /// [`Self::Required`]).
    pub fn installs(self) -> bool {
        matches!(self, Self::Available | Self::Required)
    }
}

/// Decides what a client running `running` does about itself, given the manifest's
/// `min_client_version` (`floor`) and the version of the updater build offered for its
/// platform, if any (see [`crate::Manifest::updater`]).
///
/// ```
/// use wavecast_schema::{ClientUpdate, client_update};
///
/// let version = |text: &str| text.parse::<semver::Version>().unwrap();
/// let (floor, running) = (version("0.9.0"), version("0.8.0"));
/// assert_eq!(client_update(&floor, &running, Some(&version("0.9.1"))), ClientUpdate::Required);
/// assert_eq!(client_update(&floor, &running, Some(&version("0.8.5"))), ClientUpdate::Unavailable);
/// ```
pub fn client_update(
    floor: &Version,
    running: &Version,
    offered: Option<&Version>,
) -> ClientUpdate {
    let newer = offered.filter(|offered| *offered > running);
    if running >= floor {
        return if newer.is_some() {
            ClientUpdate::Available
        } else {
            ClientUpdate::UpToDate
        };
    }
    match newer {
        Some(offered) if offered >= floor => ClientUpdate::Required,
        _ => ClientUpdate::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_of_floor_running_and_offer() {
        use ClientUpdate::{Available, Required, Unavailable, UpToDate};
        // (floor, running, offered, expected)
        let table = [
            ("0.1.0", "0.1.0", None, UpToDate),
            ("0.1.0", "0.2.0", None, UpToDate),
            ("0.1.0", "0.2.0", Some("0.2.0"), UpToDate),
            ("0.1.0", "0.2.0", Some("0.1.5"), UpToDate),
            ("0.1.0", "0.2.0", Some("0.3.0"), Available),
            ("0.2.0", "0.2.0", Some("0.3.0-rc.1"), Available),
            ("0.9.0", "0.1.0", Some("0.9.0"), Required),
            ("0.9.0", "0.1.0", Some("1.0.0"), Required),
            ("0.9.0", "0.1.0", Some("0.9.0-rc.1"), Unavailable),
            ("0.9.0", "0.1.0", Some("0.5.0"), Unavailable),
            ("0.9.0", "0.1.0", Some("0.1.0"), Unavailable),
            ("0.9.0", "0.1.0", None, Unavailable),
        ];
        for (floor, running, offered, expected) in table {
            let offered = offered.map(|text: &str| text.parse::<Version>().unwrap());
            let got = client_update(
                &floor.parse().unwrap(),
                &running.parse().unwrap(),
                offered.as_ref(),
            );
            assert_eq!(
                got, expected,
                "floor {floor}, running {running}, offered {offered:?}"
            );
            assert_eq!(got.installs(), matches!(expected, Available | Required));
        }
    }
}
