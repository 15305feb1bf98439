//! The HTTP settings every download of site files shares, in the client and in the
//! publisher's `verify` and `mirror`.

use std::time::Duration;

/// How long to wait to establish a connection (DNS, TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any single read may wait for data, headers or body. It restarts with each
/// read, so large downloads on slow links are fine while stalled hosts are not.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// An agent for reading a site: connect and per-read timeouts, statuses returned
/// rather than raised (404 means "absent" to callers), and no content encoding asked
/// for or undone, because every byte is hashed as stored.
pub fn agent(user_agent: &str) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .timeout_recv_response(Some(READ_TIMEOUT))
        .http_status_as_error(false)
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .user_agent(user_agent)
        .build();
    ureq::Agent::new_with_config(config)
}
