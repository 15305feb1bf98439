//! After a switch: the health check, the trial of an unconfirmed release, and the
//! way back (rollback) when either fails.
//!
//! Every switch of `ROOT/current` by an install (a new release, or a kept tree switched
//! to again) starts a [`Trial`](crate::store::state::Trial): the release is *unconfirmed* until the application
//! says it works (`wavecast-update confirm`). A launcher records each start of the
//! application (`wavecast-update launched`); a release still unconfirmed after more
//! launches than the configured limit is rolled back to the release the trial
//! remembers, the last one that was running before it. That is the boot counting of
//! greenboot or Mender's commit step, for applications.
//!
//! A configured [`HealthCheck`] runs right after the switch (`sh -c COMMAND` in the
//! new release tree, in its own process group, killed as a group when it times out).
//! A check that fails or times out switches `current` back at once.
//!
//! Any rollback marks the release it leaves as a [`BadRelease`] (unless the person
//! asking for it says otherwise), which the decision then skips
//! ([`wavecast_schema::decide_skipping`]) until a newer release appears. The order is
//! crash-safe: `current` is switched back first and the state saved after, so a crash
//! in between leaves the old release current and, at worst, the bad one unmarked; it
//! is then installed and checked again.

use std::io;
use std::path::Path;

use jiff::Timestamp;
use semver::Version;

use crate::install::commit::switch_current;
use crate::install::error::Error as InstallError;
use crate::lifecycle::command::HealthCheckReport;
use crate::lifecycle::command::{Shell, run_shell};
use crate::lifecycle::error::Result;
use crate::lifecycle::prune::PrunedRelease;
use crate::store::config::HealthCheck;
use crate::store::current::CurrentRelease;
use crate::store::current::trial_of;
use crate::store::root::{InstallRoot, sync_dir};
use crate::store::state::{BadReason, BadRelease, InstalledRelease, State};

/// Set to `1` in a health check's environment. `wavecast-update confirm` and
/// `launched` do nothing inside a check: the root is locked while it runs, and a
/// check is not a launch.
pub const HEALTH_CHECK_VARIABLE: &str = "WAVECAST_HEALTH_CHECK";

/// What [`Updater::confirm`](crate::Updater::confirm) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmReport {
    /// The current release, now confirmed.
    pub release: CurrentRelease,
    /// How many launches it had while unconfirmed; `None` when it was confirmed
    /// already.
    pub launches: Option<u32>,
}

/// What [`Updater::launched`](crate::Updater::launched) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchOutcome {
    /// The current release is confirmed: nothing is counted.
    Confirmed,
    /// The launch was counted, and the release may keep running.
    Counted {
        /// Launches since the switch, this one included.
        launches: u32,
        /// The most it may have unconfirmed; `0` when there is no limit.
        limit: u32,
    },
    /// More launches than allowed, but no release to roll back to: the current one
    /// keeps running.
    NoFallback {
        /// Launches since the switch, this one included.
        launches: u32,
        /// The most it may have unconfirmed.
        limit: u32,
    },
    /// More launches than allowed: `current` was switched back to `to` and the
    /// release marked bad. The launcher should start `current` (now `to`).
    RolledBack {
        /// Launches since the switch, this one included.
        launches: u32,
        /// The most it may have unconfirmed.
        limit: u32,
        /// The release now current.
        to: CurrentRelease,
        /// The release trees the prune after the rollback deleted.
        pruned: Vec<PrunedRelease>,
    },
}

/// What [`Updater::rollback`](crate::Updater::rollback) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackReport {
    /// The release that was current.
    pub from: CurrentRelease,
    /// The release now current.
    pub to: CurrentRelease,
    /// Whether `from` was marked bad.
    pub marked_bad: bool,
    /// The release trees the prune after the rollback deleted.
    pub pruned: Vec<PrunedRelease>,
    /// The slot switched back to, when the image slots followed: the other slot held
    /// `to`'s image.
    pub image: Option<crate::lifecycle::slots::SlotActivation>,
}

/// Where and for what a health check runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckTarget<'a> {
    /// The install root, as `WAVECAST_ROOT`.
    pub(crate) root: &'a Path,
    /// The new release tree: the working directory, and `WAVECAST_RELEASE_DIR`.
    pub(crate) release_dir: &'a Path,
    /// `WAVECAST_VERSION`.
    pub(crate) version: &'a Version,
    /// `WAVECAST_PREVIOUS_VERSION`; empty when there was none.
    pub(crate) previous: Option<&'a Version>,
}

/// Runs `check` for `target` and waits for it, at most its timeout (see
/// [`run_shell`]). The paths it gets are absolute, whatever the root was given as.
///
/// # Errors
///
/// The I/O error when the temporary file cannot be made, `sh` cannot be started or
/// waited for.
pub(crate) fn run_health_check(
    check: &HealthCheck,
    target: &CheckTarget<'_>,
) -> io::Result<HealthCheckReport> {
    // The check runs elsewhere than this process: relative paths would not hold.
    let root = std::path::absolute(target.root)?;
    let release_dir = std::path::absolute(target.release_dir)?;
    let env = [
        ("WAVECAST_ROOT", root.into_os_string()),
        ("WAVECAST_RELEASE_DIR", release_dir.clone().into_os_string()),
        ("WAVECAST_VERSION", target.version.to_string().into()),
        (
            "WAVECAST_PREVIOUS_VERSION",
            target
                .previous
                .map(ToString::to_string)
                .unwrap_or_default()
                .into(),
        ),
        (HEALTH_CHECK_VARIABLE, "1".into()),
    ];
    run_shell(&Shell {
        command: &check.command,
        dir: &release_dir,
        env: &env,
        timeout: check.timeout,
    })
}

/// Whether `dir` holds a usable rollback target: recorded, on disk, not marked bad.
fn usable<'s>(root: &InstallRoot, state: &'s State, dir: &str) -> Option<&'s InstalledRelease> {
    state
        .installed_in(dir)
        .filter(|release| !state.is_bad(&release.version))
        .filter(|release| root.releases().join(&release.dir).is_dir())
}

/// The release `wavecast-update rollback` returns to: the newest one installed before
/// `current` (in installation order) whose tree is still on disk and that is not
/// marked bad.
pub(crate) fn previous_release<'s>(
    root: &InstallRoot,
    state: &'s State,
    current: &CurrentRelease,
) -> Option<&'s InstalledRelease> {
    let position = state
        .installed
        .iter()
        .rposition(|release| release.dir == current.dir)?;
    state.installed[..position]
        .iter()
        .rev()
        .find(|release| release.dir != current.dir && usable(root, state, &release.dir).is_some())
}

/// The release an unconfirmed `current` rolls back to: its trial's fallback when that
/// is still usable, else [`previous_release`].
pub(crate) fn fallback_release<'s>(
    root: &InstallRoot,
    state: &'s State,
    current: &CurrentRelease,
) -> Option<&'s InstalledRelease> {
    trial_of(state, current)
        .and_then(|trial| trial.fallback.as_deref())
        .and_then(|dir| usable(root, state, dir))
        .or_else(|| previous_release(root, state, current))
}

/// Switches `current` from `from` back to `to` (or, with `None`, removes `current`,
/// as before a first install), ends any trial, and marks `from` bad for `reason`
/// unless it is `None`. `current` is switched before the state is saved, so a crash
/// in between never leaves a release marked bad as the current one.
pub(crate) fn roll_back(
    root: &InstallRoot,
    state: &mut State,
    from: &CurrentRelease,
    to: Option<&str>,
    mark: Option<(BadReason, String)>,
    now: Timestamp,
) -> Result<()> {
    match to {
        Some(dir) => switch_current(root, dir)?,
        None => remove_current(root)?,
    }
    state.trial = None;
    if let Some((reason, detail)) = mark {
        state.mark_bad(BadRelease {
            version: from.version.clone(),
            dir: from.dir.clone(),
            reason,
            detail,
            marked_at: now,
        });
    }
    Ok(state.save(&root.state())?)
}

/// Removes the `current` symlink: the root then runs nothing, as before its first
/// install.
fn remove_current(root: &InstallRoot) -> Result<()> {
    let path = root.current();
    let remove_error = |source| InstallError::Release {
        action: "remove",
        path: path.clone(),
        source,
    };
    match std::fs::remove_file(&path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(remove_error(error).into());
        }
        _ => {}
    }
    Ok(sync_dir(root.path()).map_err(remove_error)?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use std::time::Duration;

    use crate::lifecycle::command::tests::{NEWLINE, shell};
    use crate::lifecycle::command::{HEALTH_OUTPUT_LIMIT, HealthStatus};
    use crate::store::config::HealthConfig;

    use super::*;
    use crate::store::current::{read_pointer, start_trial};

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    /// An absolute root, which a check gets as it is.
    const ROOT: &str = if cfg!(windows) {
        r"C:\the\root"
    } else {
        "/the/root"
    };

    fn run(command: &str, timeout: Duration, dir: &Path) -> HealthCheckReport {
        let check = HealthCheck {
            command: command.into(),
            timeout,
        };
        let (new, old) = (version("1.1.0"), version("1.0.0"));
        let target = CheckTarget {
            root: Path::new(ROOT),
            release_dir: dir,
            version: &new,
            previous: Some(&old),
        };
        run_health_check(&check, &target).unwrap()
    }

    #[test]
    fn a_check_runs_in_the_release_tree_with_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("VERSION"), b"good").unwrap();
        let report = run(
            shell(
                "echo \"$WAVECAST_VERSION from $WAVECAST_PREVIOUS_VERSION in $WAVECAST_RELEASE_DIR, root $WAVECAST_ROOT, check $WAVECAST_HEALTH_CHECK\"; grep -q good VERSION",
                "echo %WAVECAST_VERSION% from %WAVECAST_PREVIOUS_VERSION% in %WAVECAST_RELEASE_DIR%, root %WAVECAST_ROOT%, check %WAVECAST_HEALTH_CHECK%& for /f %l in (VERSION) do @if not %l==good exit 1",
            ),
            Duration::from_secs(10),
            dir.path(),
        );
        assert_eq!(report.status, HealthStatus::Passed, "{report:?}");
        assert_eq!(
            report.output,
            format!(
                "1.1.0 from 1.0.0 in {}, root {ROOT}, check 1{NEWLINE}",
                dir.path().display()
            )
        );
        assert!(report.describe().starts_with("passed in "));
    }

    #[test]
    fn a_failing_check_reports_its_status_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(
            shell(
                "echo out; echo err >&2; exit 3",
                "echo out& echo err>&2& exit 3",
            ),
            Duration::from_secs(10),
            dir.path(),
        );
        assert_eq!(report.status, HealthStatus::Exited(3));
        assert_eq!(report.output, format!("out{NEWLINE}err{NEWLINE}"));
        assert_eq!(report.describe(), "exited with status 3");
        // Signals are Unix's alone.
        #[cfg(unix)]
        {
            let report = run("kill -TERM $$", Duration::from_secs(10), dir.path());
            assert_eq!(report.status, HealthStatus::Signaled(libc::SIGTERM));
            assert!(!report.status.passed());
        }
    }

    #[test]
    fn only_the_end_of_a_long_output_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(
            shell(
                "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done",
                "for /L %i in (0,1,1999) do @echo line-%i",
            ),
            Duration::from_secs(10),
            dir.path(),
        );
        assert_eq!(report.status, HealthStatus::Passed);
        assert_eq!(report.output.len() as u64, HEALTH_OUTPUT_LIMIT);
        assert!(
            report.output.ends_with(&format!("line-1999{NEWLINE}")),
            "{}",
            report.output
        );
        assert!(report.output_bytes > HEALTH_OUTPUT_LIMIT);
    }

    #[test]
    fn a_check_that_hangs_is_killed_with_everything_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let report = run(
            shell(
                "sleep 30 & echo $! > background.pid; sleep 30",
                "start /B ping -n 30 127.0.0.1 >background.txt& ping -n 30 127.0.0.1 >NUL",
            ),
            Duration::from_secs(2),
            dir.path(),
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{report:?}");
        assert_eq!(report.status, HealthStatus::TimedOut);
        assert_eq!(
            report.describe(),
            "timed out after 2s (its processes were killed)"
        );
        // The background process is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(running) = background_process(dir.path()) {
            assert!(Instant::now() < deadline, "{running}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How the background `sleep` of the hanging check in `dir` shows it still runs,
    /// or `None` once it is gone (or a zombie waiting for init to reap it).
    #[cfg(unix)]
    fn background_process(dir: &Path) -> Option<String> {
        let pid = std::fs::read_to_string(dir.join("background.pid")).unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
        let gone = stat.as_deref().map_or(true, |stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        });
        (!gone).then(|| format!("process {pid} still runs: {stat:?}"))
    }

    /// How the background `ping` of the hanging check in `dir` shows it still runs,
    /// or `None` once it is gone: its output file, open while it runs, cannot be
    /// opened without sharing until then.
    #[cfg(windows)]
    fn background_process(dir: &Path) -> Option<String> {
        use std::os::windows::fs::OpenOptionsExt as _;
        let path = dir.join("background.txt");
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(0)
            .open(&path);
        opened
            .err()
            .map(|error| format!("`{}` is still open: {error}", path.display()))
    }

    fn installed(version_text: &str, dir: &str) -> InstalledRelease {
        InstalledRelease {
            version: version(version_text),
            dir: dir.into(),
            installed_at: Timestamp::UNIX_EPOCH,
            modules: BTreeMap::new(),
        }
    }

    fn current(version_text: &str, dir: &str) -> CurrentRelease {
        CurrentRelease {
            version: version(version_text),
            dir: dir.into(),
        }
    }

    #[test]
    fn a_trial_falls_back_to_the_last_confirmed_release() {
        let mut state = State::generate().unwrap();
        let (one, two, three) = (
            current("1.0.0", "a"),
            current("1.1.0", "b"),
            current("1.2.0", "c"),
        );
        start_trial(&mut state, &one, None, Timestamp::UNIX_EPOCH);
        assert_eq!(state.trial.as_ref().unwrap().fallback, None);
        state.trial = None; // 1.0.0 confirmed
        start_trial(&mut state, &two, Some(&one), Timestamp::UNIX_EPOCH);
        assert_eq!(state.trial.as_ref().unwrap().fallback.as_deref(), Some("a"));
        // 1.1.0 was never confirmed: 1.2.0 falls back past it, to 1.0.0.
        start_trial(&mut state, &three, Some(&two), Timestamp::UNIX_EPOCH);
        let trial = state.trial.clone().unwrap();
        assert_eq!(
            (trial.dir.as_str(), trial.fallback.as_deref()),
            ("c", Some("a"))
        );
        assert!(trial_of(&state, &three).is_some());
        assert!(trial_of(&state, &two).is_none());
    }

    #[test]
    fn rollback_targets_skip_bad_missing_and_later_releases() {
        let temp = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(temp.path());
        let mut state = State::generate().unwrap();
        for (text, dir) in [
            ("1.0.0", "a"),
            ("1.1.0", "b"),
            ("1.2.0", "c"),
            ("1.3.0", "d"),
            ("1.4.0", "e"),
        ] {
            state.record_install(installed(text, dir));
            if dir != "c" {
                std::fs::create_dir_all(root.releases().join(dir)).unwrap();
            }
        }
        state.mark_bad(BadRelease {
            version: version("1.1.0"),
            dir: "b".into(),
            reason: BadReason::RolledBack,
            detail: String::new(),
            marked_at: Timestamp::UNIX_EPOCH,
        });
        let on = |text, dir| {
            previous_release(&root, &state, &current(text, dir)).map(|release| release.dir.clone())
        };
        // 1.2.0's tree is gone and 1.1.0 is bad: 1.3.0 goes back to 1.0.0.
        assert_eq!(on("1.3.0", "d").as_deref(), Some("a"));
        assert_eq!(on("1.4.0", "e").as_deref(), Some("d"));
        assert_eq!(on("1.0.0", "a"), None, "nothing before the first");
        assert_eq!(on("9.0.0", "unrecorded"), None);

        // A trial's fallback wins while it is usable.
        start_trial(
            &mut state,
            &current("1.4.0", "e"),
            Some(&current("1.0.0", "a")),
            Timestamp::UNIX_EPOCH,
        );
        let fallback = |state: &State| {
            fallback_release(&root, state, &current("1.4.0", "e"))
                .map(|release| release.dir.clone())
        };
        assert_eq!(fallback(&state).as_deref(), Some("a"));
        std::fs::remove_dir(root.releases().join("a")).unwrap();
        assert_eq!(fallback(&state).as_deref(), Some("d"));
    }

    #[test]
    fn a_rollback_switches_first_then_marks_the_release_bad() {
        let temp = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(temp.path());
        std::fs::create_dir_all(root.meta()).unwrap();
        for dir in ["1.0.0-000000000000", "1.1.0-111111111111"] {
            std::fs::create_dir_all(root.releases().join(dir)).unwrap();
        }
        switch_current(&root, "1.1.0-111111111111").unwrap();
        let mut state = State::generate().unwrap();
        let from = current("1.1.0", "1.1.0-111111111111");
        start_trial(
            &mut state,
            &from,
            Some(&current("1.0.0", "1.0.0-000000000000")),
            Timestamp::UNIX_EPOCH,
        );
        roll_back(
            &root,
            &mut state,
            &from,
            Some("1.0.0-000000000000"),
            Some((BadReason::Unconfirmed, "not confirmed".into())),
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(
            read_pointer(&root.current()).unwrap().as_deref(),
            Some("releases/1.0.0-000000000000")
        );
        let saved = State::load(&root.state()).unwrap().unwrap();
        assert_eq!(saved, state);
        assert!(saved.trial.is_none() && saved.is_bad(&version("1.1.0")));
        assert_eq!(saved.bad_releases[0].reason, BadReason::Unconfirmed);

        // With nowhere to go, `current` is removed: the root is as before its first install.
        roll_back(
            &root,
            &mut state,
            &current("1.0.0", "1.0.0-000000000000"),
            None,
            None,
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        assert!(std::fs::symlink_metadata(root.current()).is_err());
        assert!(!state.is_bad(&version("1.0.0")), "no mark was asked for");
    }

    #[test]
    fn old_configs_get_the_default_health_settings_and_a_zero_timeout_is_refused() {
        let config: HealthConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, HealthConfig::default());
        assert_eq!(config.health_check(), None);
        let config: HealthConfig =
            serde_json::from_str(r#"{"check": "true", "timeout": "1m"}"#).unwrap();
        assert_eq!(
            config.health_check(),
            Some(HealthCheck {
                command: "true".into(),
                timeout: Duration::from_secs(60)
            })
        );
        assert_eq!(config.max_unconfirmed_launches, 3);
        let error = serde_json::from_str::<HealthConfig>(r#"{"timeout": "0s"}"#).unwrap_err();
        assert!(error.to_string().contains("longer than 0s"), "{error}");
    }
}
