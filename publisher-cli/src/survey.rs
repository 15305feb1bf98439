//! What `verify` and `mirror` report about the site they read: its problems and
//! warnings, and the failure when it has problems.

use anyhow::bail;
use wavecast_publisher::verify::Survey;

use crate::output;

/// The problem and warning lines, on stderr.
pub(crate) fn report_survey(survey: &Survey, json: bool) {
    if json {
        return;
    }
    for problem in &survey.problems {
        output::problem(&format!("{}: {}", problem.path, problem.problem));
    }
    for warning in &survey.warnings {
        output::warn(warning);
    }
}

/// `1 channel`, `2 channels`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// An error counting the problems, if the survey found any: the run then exits 1.
pub(crate) fn fail_on_problems(survey: &Survey) -> anyhow::Result<()> {
    match survey.problems.len() {
        0 => Ok(()),
        1 => bail!("1 problem found in the site"),
        count => bail!("{count} problems found in the site"),
    }
}
