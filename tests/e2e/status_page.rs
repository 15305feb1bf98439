//! The rollout simulator and the site's status page through the real CLI: the CSV of
//! `wavecast simulate`, and `index.html` as headless Chromium renders it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use jiff::Timestamp;
use wavecast_tests::{ProcessGroup, Sandbox, sample_release};

/// Every subprocess here is killed after this long.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A sandbox with `stable` holding 1.0.0 at 100 % and 1.1.0 on a 3-day ramp started at
/// 2026-11-21T00:00:00Z, and `beta` holding 1.1.0 at 30 %.
fn published() -> Sandbox {
    let mut sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    let r2 = sample_release(&sandbox.path("release-1.1"), "1.1");
    sandbox
        .env
        .insert("WAVECAST_NOW".into(), "2026-11-20T00:00:00Z".into());
    sandbox
        .publish(
            &r1,
            "1.0.0",
            &["--notes", "First <script>alert(1)</script>"],
        )
        .success();
    sandbox
        .env
        .insert("WAVECAST_NOW".into(), "2026-11-21T00:00:00Z".into());
    sandbox
        .publish(&r2, "1.1.0", &["--ramp", "3d", "--notes", "Faster startup"])
        .success();
    sandbox
        .publish(&r2, "1.1.0", &["--channel", "beta", "--rollout", "30%"])
        .success();
    sandbox
}

/// Runs `command` with stdout into `stdout`, killing it after [`TIMEOUT`]. It runs in
/// a process group of its own, and whatever it leaves there (Chromium's helpers) is
/// stopped when it exits.
fn run_bounded(command: &mut Command, stdout: &Path) -> Output {
    let mut process = ProcessGroup::spawn(
        command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(stdout).unwrap())
            .stderr(Stdio::piped()),
    )
    .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    // Read stderr meanwhile, so a chatty run never blocks on a full pipe.
    let mut pipe = process.leader().stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut stderr = Vec::new();
        let _ = pipe.read_to_end(&mut stderr);
        stderr
    });
    let finished = process.wait_for_exit(TIMEOUT);
    let status = process.stop().expect("stop the process group");
    let stderr = reader.join().expect("read stderr");
    assert!(finished, "{command:?} did not finish within {TIMEOUT:?}");
    Output {
        status,
        stdout: Vec::new(),
        stderr,
    }
}

fn chromium(profile: &Path) -> Command {
    let mut command = Command::new("chromium");
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

#[test]
fn simulate_prints_csv_shares_that_ramp_up_and_add_up() {
    let sandbox = published();
    let run = sandbox
        .wavecast(
            [
                "simulate",
                "--channel",
                "stable",
                "--clients",
                "20000",
                "--poll",
                "6h",
                "--csv",
                "--site",
            ],
            [sandbox.site()],
        )
        .success();
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("time,1.0.0,1.1.0"), "{}", run.stdout);
    let rows: Vec<(String, f64, f64)> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            (
                fields[0].to_owned(),
                fields[1].parse().unwrap(),
                fields[2].parse().unwrap(),
            )
        })
        .collect();
    // From the ramp's start until it has finished plus one poll: 3 days and 6 hours.
    assert_eq!(rows.len(), 79, "{}", run.stdout);
    assert_eq!(rows[0].0, "2026-11-21T00:00:00Z");
    assert_eq!(rows[78].0, "2026-11-24T06:00:00Z");
    for (time, old, new) in &rows {
        assert!((old + new - 100.0).abs() < 0.01, "{time}: {old} + {new}");
    }
    assert!(
        rows.windows(2).all(|pair| pair[0].2 <= pair[1].2),
        "the ramping version only grows"
    );
    assert_eq!((rows[0].1, rows[0].2), (100.0, 0.0));
    assert_eq!(rows[78].2, 100.0);
    let half_way = rows[39].2;
    assert!((43.0..57.0).contains(&half_way), "day 1.5: {half_way}");
    assert!(
        run.stderr.contains("peak/mean"),
        "rates on stderr: {}",
        run.stderr
    );

    // The table and the SVG.
    let svg = sandbox.path("stable.svg");
    let table = sandbox
        .wavecast(
            ["simulate", "--clients", "2000", "--step", "12h", "--site"],
            [
                sandbox.site().as_os_str(),
                "--svg".as_ref(),
                svg.as_os_str(),
            ],
        )
        .success();
    assert!(table.stdout.contains("peak/mean"), "{}", table.stdout);
    assert!(table.stdout.contains("100.0%"), "{}", table.stdout);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(chart.matches("<polyline").count(), 2);

    let missing = sandbox.wavecast(
        ["simulate", "--channel", "nightly", "--site"],
        [sandbox.site()],
    );
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no channel `nightly`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn the_status_page_renders_in_headless_chromium() {
    let sandbox = published();
    let index = sandbox.site().join("index.html");
    let html = std::fs::read_to_string(&index).expect("publishing writes index.html");
    assert!(!html.contains("<script>alert"), "manifest text is escaped");

    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", index.display());
    let dom_file = sandbox.path("dom.html");
    let dump = run_bounded(
        chromium(profile.path()).arg("--dump-dom").arg(&url),
        &dom_file,
    );
    assert!(
        dump.status.success(),
        "chromium --dump-dom failed (apt-get install chromium): {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    for expected in [
        "Channel stable",
        "Channel beta",
        "1.0.0",
        "1.1.0",
        "<svg",
        "<polyline",
        "First &lt;script&gt;alert(1)&lt;/script&gt;",
        "Faster startup",
        "ramp 0%@0s,100%@3d",
    ] {
        assert!(dom.contains(expected), "the DOM lacks {expected:?}");
    }
    assert!(
        !dom.contains("<script>alert"),
        "no script element of the notes made it into the DOM"
    );

    let png = sandbox.path("status.png");
    let shot = run_bounded(
        chromium(profile.path())
            .arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1200,2000")
            .arg(&url),
        &sandbox.path("screenshot.log"),
    );
    assert!(
        shot.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 2000));
    assert!(
        bytes.len() > 30_000,
        "a {} byte screenshot is too plain to hold the page",
        bytes.len()
    );
    if let Ok(dir) = std::env::var("WAVECAST_KEEP_SCREENSHOT") {
        std::fs::copy(&png, Path::new(&dir).join("status.png")).unwrap();
    }
}

/// The text of the page's "Offered now" cell of `key` (`channel version`) in `dom`.
fn offered_cell(dom: &str, key: &str) -> String {
    let start = format!("data-offered=\"{key}\">");
    let at = dom
        .find(&start)
        .unwrap_or_else(|| panic!("no cell for {key}"))
        + start.len();
    dom[at..].split("</td>").next().unwrap().to_owned()
}

/// Where the "now" line of stable's chart is drawn in `dom`, or `None` when hidden.
fn now_marker(dom: &str) -> Option<f64> {
    let stable = &dom[dom.find("id=\"channel-stable\"").expect("stable's section")..];
    let marker = &stable[stable.find("<g class=\"marker\"").expect("a marker")..];
    let marker = &marker[..marker.find("</g>").unwrap()];
    if marker.contains("visibility=\"hidden\"") {
        return None;
    }
    let x1 = &marker[marker.find("x1=\"").unwrap() + 4..];
    Some(x1[..x1.find('"').unwrap()].parse().unwrap())
}

/// `index.html` as headless Chromium renders it at `url`.
fn rendered(sandbox: &Sandbox, profile: &Path, url: &str) -> String {
    let dom_file = sandbox.path("dom.html");
    let dump = run_bounded(chromium(profile).arg("--dump-dom").arg(url), &dom_file);
    assert!(
        dump.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    std::fs::read_to_string(&dom_file).unwrap()
}

/// The page is written once, when 1.1.0's 3-day ramp starts; viewed at other times
/// (`?at=`, and the real clock without it) its script computes what is offered then,
/// exactly as the Rust rollout code does.
#[test]
fn the_status_page_computes_offered_now_when_viewed() {
    let sandbox = published();
    let index = sandbox.site().join("index.html");
    let before = std::fs::read(&index).unwrap();
    let manifest = sandbox.manifest("stable");
    let ramping = manifest.release(&"1.1.0".parse().unwrap()).unwrap();
    let steady = manifest.release(&"1.0.0".parse().unwrap()).unwrap();
    let html = String::from_utf8(before.clone()).unwrap();
    assert!(
        html.contains("data-offered=\"stable 1.1.0\">0% of clients, ramping to 100%<"),
        "as written, at the ramp's start"
    );
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", index.display());
    let mut seen = Vec::new();
    let mut markers = Vec::new();
    for at in [
        "2026-11-20T12:00:00Z",
        "2026-11-21T07:13:20Z",
        "2026-11-22T12:00:00Z",
        "2026-11-23T23:59:59Z",
        "2026-11-25T00:00:00Z",
    ] {
        let now: Timestamp = at.parse().unwrap();
        let dom = rendered(&sandbox, profile.path(), &format!("{url}?at={at}"));
        let offered = offered_cell(&dom, "stable 1.1.0");
        assert_eq!(
            offered,
            wavecast_site::live::offered_now(ramping, now),
            "the page and the Rust rollout code disagree at {at}"
        );
        assert_eq!(
            offered_cell(&dom, "stable 1.0.0"),
            wavecast_site::live::offered_now(steady, now)
        );
        assert_eq!(offered_cell(&dom, "beta 1.1.0"), "30% of clients");
        assert!(
            dom.contains(&format!("datetime=\"{}\"", at.replace('Z', ".000Z"))),
            "the page says when its figures are for"
        );
        seen.push(offered);
        markers.push(now_marker(&dom));
    }
    // The "now" line of stable's chart moves with the time: hidden before
    // the simulation starts and after it ends (a poll after the ramp), further right
    // in between.
    assert_eq!((markers[0], markers[4]), (None, None), "{markers:?}");
    let shown: Vec<f64> = markers[1..4].iter().map(|x| x.expect("shown")).collect();
    assert!(
        shown.windows(2).all(|pair| pair[0] < pair[1]),
        "{markers:?}"
    );
    assert_eq!(
        seen[..3],
        [
            "0% of clients, ramping to 100%",
            "10.03% of clients, ramping to 100%",
            "50% of clients, ramping to 100%"
        ]
    );
    assert_eq!(seen[4], "100% of clients, ramping to 100%");

    // Without `?at=`, the browser's clock.
    let dom = rendered(&sandbox, profile.path(), &url);
    assert_eq!(
        offered_cell(&dom, "stable 1.1.0"),
        wavecast_site::live::offered_now(ramping, Timestamp::now())
    );
    assert_eq!(
        std::fs::read(&index).unwrap(),
        before,
        "the page was not rewritten"
    );
}
