//! What makes the status page live: each channel's manifest embedded as data, and
//! one script that, when the page is viewed, computes from it what every release is
//! offered to now and moves the charts' "now" line, so a ramp advances on a page
//! nobody regenerated. The page is still one static file: without the script it
//! shows the same figures as of its generation.
//!
//! The script repeats the rollout arithmetic of `wavecast_schema` (a ramp's
//! threshold in whole basis points, `Share::threshold_at`, capped) and the wording
//! of [`offered_now`]; the end-to-end test of the page compares the two at several
//! times. `?at=2026-11-21T12:00:00Z` in the page's URL shows another moment.

use jiff::Timestamp;
use wavecast_schema::{BasisPoints, Manifest, Release, Share};

use crate::chart::escape;

/// The page's script. It reads the `<script type="application/json"
/// class="wavecast-manifest">` elements and fills in the `offered-now` and
/// `threshold-now` elements and the chart markers.
pub const SCRIPT: &str = r#"(function () {
  "use strict";
  var at = new URLSearchParams(window.location.search).get("at");
  var nowMs = at ? Date.parse(at) : Date.now();
  if (isNaN(nowMs)) { nowMs = Date.now(); }
  var now = Math.floor(nowMs / 1000);
  function seconds(text) { return Math.floor(Date.parse(text) / 1000); }
  function percent(bp) {
    var whole = Math.floor(bp / 100), hundredths = bp % 100;
    if (hundredths === 0) { return whole + "%"; }
    if (hundredths % 10 === 0) { return whole + "." + hundredths / 10 + "%"; }
    return whole + "." + (hundredths < 10 ? "0" : "") + hundredths + "%";
  }
  function floorDiv(a, b) {
    var q = Math.floor(a / b);
    while (q * b > a) { q -= 1; }
    while ((q + 1) * b <= a) { q += 1; }
    return q;
  }
  function rampAt(points, elapsed) {
    if (elapsed < 0 || elapsed < points[0].after_seconds) { return 0; }
    for (var i = 0; i + 1 < points.length; i += 1) {
      var from = points[i], to = points[i + 1];
      if (elapsed < to.after_seconds) {
        var span = to.after_seconds - from.after_seconds;
        var into = elapsed - from.after_seconds;
        return floorDiv(from.basis_points * span + (to.basis_points - from.basis_points) * into, span);
      }
    }
    return points[points.length - 1].basis_points;
  }
  function threshold(share, plan) {
    var value;
    if (share.ramp) {
      value = plan.started_at ? rampAt(share.ramp, now - seconds(plan.started_at)) : 0;
    } else {
      value = share.basis_points;
    }
    return plan.cap === undefined || plan.cap === null ? value : Math.min(value, plan.cap);
  }
  function offered(plan) {
    if (plan.yanked) { return "nobody (yanked)"; }
    if (plan.paused_at) { return "nobody new (paused)"; }
    var text = percent(threshold(plan, plan)) + " of clients";
    if (plan.ramp) { text += ", ramping to " + percent(plan.basis_points); }
    var rules = (plan.rules || []).length;
    if (rules > 0) { text += " when no rule matches (" + rules + " rule" + (rules === 1 ? "" : "s") + ")"; }
    return text;
  }
  var plans = {};
  document.querySelectorAll("script.wavecast-manifest").forEach(function (data) {
    var manifest = JSON.parse(data.textContent);
    manifest.releases.forEach(function (release) {
      plans[manifest.channel + " " + release.version] = release.rollout;
    });
  });
  document.querySelectorAll("[data-offered]").forEach(function (cell) {
    var plan = plans[cell.getAttribute("data-offered")];
    if (plan) { cell.textContent = offered(plan); }
  });
  document.querySelectorAll("[data-threshold]").forEach(function (cell) {
    var plan = plans[cell.getAttribute("data-threshold")];
    if (!plan) { return; }
    var rule = cell.getAttribute("data-rule");
    var share = rule === null ? plan : (plan.rules[Number(rule)] || {}).action;
    if (share && share.share) { share = share.share; }
    if (share && share.basis_points !== undefined) { cell.textContent = percent(threshold(share, plan)); }
  });
  document.querySelectorAll("g.marker").forEach(function (marker) {
    var first = Number(marker.getAttribute("data-first")), last = Number(marker.getAttribute("data-last"));
    var left = Number(marker.getAttribute("data-left")), width = Number(marker.getAttribute("data-width"));
    var inside = now >= first && now <= last;
    marker.setAttribute("visibility", inside ? "visible" : "hidden");
    if (!inside) { return; }
    var x = left + (now - first) / (last - first) * width;
    marker.querySelectorAll("line").forEach(function (line) {
      line.setAttribute("x1", x.toFixed(1)); line.setAttribute("x2", x.toFixed(1));
    });
    marker.querySelectorAll("text").forEach(function (text) { text.setAttribute("x", (x + 4).toFixed(1)); });
  });
  var asOf = document.getElementById("as-of");
  if (asOf) {
    var when = new Date(now * 1000).toISOString();
    asOf.setAttribute("datetime", when);
    asOf.textContent = when.slice(0, 10) + " " + when.slice(11, 16) + " UTC";
  }
})();
"#;

/// The `script-src` source of [`SCRIPT`] for the page's Content-Security-Policy:
/// `sha256-<base64>`, so that it is the one script that runs.
pub fn script_hash() -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SCRIPT.as_bytes()))
    )
}

/// The manifest of a channel as the page's data: its JSON in a script element the
/// browser does not run, with every `<` escaped (as `\u003c`, the same JSON) so no
/// string in it can end the element.
pub fn manifest_data(manifest: &Manifest) -> String {
    let json = String::from_utf8(manifest.to_json()).expect("JSON is UTF-8");
    format!(
        "<script type=\"application/json\" class=\"wavecast-manifest\" data-channel=\"{}\">{}</script>\n",
        escape(manifest.channel.as_str()),
        json.replace('<', "\\u003c")
    )
}

/// The key of a release in the script's table: `channel version`, escaped for an
/// attribute.
pub fn release_key(manifest: &Manifest, release: &Release) -> String {
    escape(&format!("{} {}", manifest.channel, release.version))
}

/// The threshold of `share` at `now` for a plan started at `started_at`, capped.
pub fn threshold(
    share: &Share,
    started_at: Option<Timestamp>,
    cap: Option<BasisPoints>,
    now: Timestamp,
) -> BasisPoints {
    let elapsed = started_at.map(|start| now.as_second() - start.as_second());
    let threshold = share.threshold_at(elapsed);
    cap.map_or(threshold, |cap| threshold.min(cap))
}

/// What the release's default share offers at `now`, in words: the text of the
/// page's "Offered now" column, which its script computes the same way.
pub fn offered_now(release: &Release, now: Timestamp) -> String {
    let plan = &release.rollout;
    if plan.yanked {
        return "nobody (yanked)".into();
    }
    if plan.paused_at.is_some() {
        return "nobody new (paused)".into();
    }
    let threshold = threshold(&plan.share, plan.started_at, plan.cap, now);
    let mut text = format!("{threshold} of clients");
    if plan.share.ramp.is_some() {
        text.push_str(&format!(", ramping to {}", plan.share.basis_points));
    }
    if !plan.rules.is_empty() {
        let count = plan.rules.len();
        text.push_str(&format!(
            " when no rule matches ({count} rule{})",
            if count == 1 { "" } else { "s" }
        ));
    }
    text
}
