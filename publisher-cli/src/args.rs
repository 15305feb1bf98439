//! The flags several subcommands share, and what they stand for: the site (a folder
//! and its signing keys, or a bucket), the channel, the rollout plan, durations and
//! the clock.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use clap::builder::FalseyValueParser;
use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_publisher::channel::Signing;
use wavecast_publisher::keys::Signers;
use wavecast_publisher::rollout_plan::{self, CapChange, RolloutChange};
use wavecast_schema::{BasisPoints, ChannelName, Ramp, Rule, Share};
use wavecast_site::s3::{self, Credentials, S3Location};
use wavecast_site::{FsStorage, S3Storage};

use crate::output::{self, UsageError};
use crate::secret_keys;

/// The site and how to sign its manifests: shared by every command that writes one.
#[derive(Debug, Args)]
pub(crate) struct SiteArgs {
    /// The site folder (`publish` creates it if missing).
    #[arg(long, value_name = "SITE")]
    pub(crate) site: PathBuf,
    /// A minisign secret key that signs the manifest: a release key of the site's
    /// newest root. Repeat it when the root asks for several (k of n).
    #[arg(
        long = "key",
        value_name = "KEY",
        required_unless_present = "sign_later"
    )]
    keys: Vec<PathBuf>,
    /// Sign later, where the release keys are: check and make the change, write the
    /// manifest unsigned to channels/<channel>.json.unsigned, and stop. Nothing is
    /// live, and no other change to the channel is made, until `wavecast sign`
    /// signs it with a threshold of release keys and publishes it.
    #[arg(long, conflicts_with = "keys")]
    pub(crate) sign_later: bool,
    /// Read the keys' password from this file instead of WAVECAST_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// How long the signed manifest stays valid: `30d`, `12h`, `2w`.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
    pub(crate) expires_in: SignedDuration,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    umask: UmaskArg,
}

impl SiteArgs {
    /// The site folder, written as `--respect-umask` says.
    pub(crate) fn storage(&self) -> FsStorage {
        self.umask.storage(&self.site)
    }

    /// The `--key`s, loaded and decrypted, or none with `--sign-later`.
    pub(crate) fn signers(&self) -> anyhow::Result<Signers> {
        if self.sign_later {
            return Ok(Signers::later());
        }
        secret_keys::load_signers(&self.keys, self.password_file.as_deref())
    }

    /// Where the change to `channel` went: the live manifest, or with `--sign-later`
    /// the pending one, for the `--json` documents.
    pub(crate) fn manifest_path(&self, channel: &ChannelName) -> PathBuf {
        let path = if self.sign_later {
            wavecast_site::layout::pending_manifest(channel)
        } else {
            wavecast_site::layout::channel_manifest(channel)
        };
        self.site.join(path.as_str())
    }

    /// After the result line, with `--sign-later`: that nothing is live yet, and what
    /// to run next.
    pub(crate) fn report_pending(&self, channel: &ChannelName) {
        if self.sign_later {
            output::result(
                &format!(
                    "not live yet: channels/{channel}.json.unsigned waits for `wavecast sign --site {} --key KEY` with a threshold of release keys",
                    self.site.display()
                ),
                self.json,
            );
        }
    }

    /// How a change made at `now` is signed: by `signers`, valid for `--expires-in`.
    pub(crate) fn signing<'a>(&self, signers: &'a Signers, now: Timestamp) -> Signing<'a> {
        Signing {
            signers,
            now,
            expires_in: self.expires_in,
        }
    }
}

/// `--respect-umask`: shared by every command that writes a site folder.
#[derive(Debug, Args)]
pub(crate) struct UmaskArg {
    /// Let the umask restrict the site's files and new folders. By default they are
    /// 0644 and 0755 whatever the umask, so that a web server running as another user
    /// (www-data, nobody) can read them; with this flag and umask 077 they are 0600
    /// and 0700, and the server needs the publisher's user or group.
    #[arg(long, env = "WAVECAST_RESPECT_UMASK", value_parser = FalseyValueParser::new())]
    respect_umask: bool,
}

impl UmaskArg {
    /// The site folder `folder`, written as this flag says.
    pub(crate) fn storage(&self, folder: impl Into<PathBuf>) -> FsStorage {
        FsStorage::new(folder).respect_umask(self.respect_umask)
    }
}

/// How to reach an S3-compatible store; credentials come from the standard AWS
/// environment variables and profile files.
#[derive(Debug, Args)]
pub(crate) struct S3Args {
    /// The S3 endpoint, for S3-compatible storage (path-style requests)
    /// [default: https://s3.<region>.amazonaws.com].
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The region requests are signed for [default: AWS_REGION, AWS_DEFAULT_REGION,
    /// or us-east-1].
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
}

impl S3Args {
    /// The store at `destination` (`s3://BUCKET/PREFIX`), with the environment's
    /// credentials. Bad locations and missing credentials are usage errors.
    pub(crate) fn storage(&self, destination: &str) -> anyhow::Result<S3Storage> {
        let location: S3Location = destination
            .parse()
            .map_err(|error| UsageError(format!("{error}")))?;
        let credentials = match Credentials::from_environment() {
            Ok(credentials) => credentials,
            Err(error @ wavecast_site::Error::NoCredentials { .. }) => {
                bail!(UsageError(error.to_string()))
            }
            Err(error) => return Err(error.into()),
        };
        let region = self
            .region
            .clone()
            .unwrap_or_else(s3::region_from_environment);
        Ok(
            S3Storage::new(location, self.endpoint.as_deref(), &region, credentials)
                .map_err(|error| UsageError(error.to_string()))?,
        )
    }
}

/// `--channel`.
#[derive(Debug, Args)]
pub(crate) struct ChannelArg {
    /// The channel.
    #[arg(long, default_value = "stable")]
    pub(crate) channel: ChannelName,
}

/// `--ramp`: shared by `publish`, `rollout` and `promote`.
#[derive(Debug, Args)]
pub(crate) struct RampArg {
    /// A time ramp instead of a fixed share, counted from now: points
    /// `SHARE@TIME` such as `1%@0h,5%@4h,25%@1d,100%@3d` (linear between points,
    /// never decreasing), or a duration such as `7d` for 0 % now to 100 % then.
    #[arg(long, value_name = "SPEC")]
    pub(crate) ramp: Option<Ramp>,
}

/// The default share of a new plan: `--rollout` or `--ramp`.
#[derive(Debug, Args)]
pub(crate) struct ShareArgs {
    /// Share of clients offered the release: `30%`, `30` or `0.5%` [default: 100%].
    #[arg(long, value_name = "PERCENT", conflicts_with = "ramp")]
    rollout: Option<BasisPoints>,
    #[command(flatten)]
    ramp: RampArg,
}

impl ShareArgs {
    /// The share these flags give, if any.
    pub(crate) fn share(&self) -> Option<Share> {
        share_from(self.rollout, self.ramp.ramp.as_ref())
    }
}

/// Rules and caps: shared by `publish`, `rollout` and `promote`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// A rollout rule, `NAME: CONDITION; CONDITION -> ACTION`; repeat it for more, the
    /// first rule that matches a client applies.
    ///
    /// Conditions: `from < V`, `from >= V` (the installed version; never matches a
    /// fresh install), `KEY = VALUE`, `KEY in A|B|C`, `KEY ^= PREFIX`, `KEY ~ REGEX`
    /// (attributes the client declares). Actions: `mandatory`, `exclude`, a share
    /// (`20%`) or a ramp (`1%@0h,100%@2d`; a ramp given here or with --ramp restarts
    /// the plan's clock, `started_at`, at the time of the command). Examples:
    /// `legacy: from < 2.0 -> mandatory`, `eu-canary: region = eu; tenant in
    /// acme|globex -> 1%@0h,100%@2d`, `lab: server_id ^= lab- -> exclude`.
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<Rule>,
    /// Make the update mandatory for clients below this version: adds the first
    /// rule `mandatory-below-V: from < V -> mandatory` (replacing an earlier one).
    #[arg(long, value_name = "VERSION", value_parser = wavecast_schema::parse_version)]
    min_version: Option<Version>,
    /// Cap the release at roughly N installs out of a fleet of --fleet M (an
    /// approximation: no server counts installs): a ceiling of floor(N * 10000 / M)
    /// basis points on every share; clients at or above it move back.
    ///
    /// The cap holds only as far as M is right and buckets spread evenly; it is a
    /// share of the fleet, not a count anyone enforces.
    #[arg(long, value_name = "N", requires = "fleet")]
    cap: Option<u64>,
    /// The fleet size the --cap count is a share of.
    #[arg(long, value_name = "M", requires = "cap")]
    fleet: Option<u64>,
}

impl PlanArgs {
    /// The change these flags make, with `share` as the new default share.
    pub(crate) fn change(
        &self,
        share: Option<Share>,
        clear_rules: bool,
        no_cap: bool,
    ) -> anyhow::Result<RolloutChange> {
        let rules = if clear_rules {
            Some(Vec::new())
        } else {
            (!self.rules.is_empty()).then(|| self.rules.clone())
        };
        let cap = match (self.cap, self.fleet) {
            (Some(installs), Some(fleet)) => {
                CapChange::Set(rollout_plan::fleet_cap(installs, fleet)?)
            }
            _ if no_cap => CapChange::Clear,
            _ => CapChange::Keep,
        };
        Ok(RolloutChange {
            share,
            rules,
            min_version: self.min_version.clone(),
            cap,
        })
    }
}

/// A fixed share (`--rollout`, or `rollout`'s PERCENT), else a ramp (`--ramp`).
pub(crate) fn share_from(percent: Option<BasisPoints>, ramp: Option<&Ramp>) -> Option<Share> {
    percent
        .map(Share::fixed)
        .or_else(|| ramp.cloned().map(Share::ramped))
}

/// The clock, or `WAVECAST_NOW` when set, to whole seconds (manifests need no more).
pub(crate) fn now() -> anyhow::Result<Timestamp> {
    let now = match std::env::var("WAVECAST_NOW") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("WAVECAST_NOW=`{text}` is not an RFC 3339 time"))?,
        Err(_) => Timestamp::now(),
    };
    Ok(Timestamp::from_second(now.as_second())?)
}

/// Parses a manifest lifetime such as `30d`, `12h` or `2w` (see
/// [`wavecast_schema::parse_duration`]); zero is refused.
pub(crate) fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    match wavecast_schema::parse_duration(text) {
        Ok(0) => Err(format!(
            "`{text}` is zero; a manifest must stay valid for some time"
        )),
        Ok(seconds) => i64::try_from(seconds)
            .map(SignedDuration::from_secs)
            .map_err(|_| format!("`{text}` is too long")),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            SignedDuration::from_hours(720)
        );
        assert_eq!(
            parse_duration("90m").unwrap(),
            SignedDuration::from_mins(90)
        );
        for bad in ["", "d", "30", "30y", "-1d", "0h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
