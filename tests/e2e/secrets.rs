//! Secrets never leak: neither the key password nor the secret key shows in any
//! output of `wavecast`, whether the command succeeds or fails, nor anywhere on the
//! site; the secret key file is owner-only and encrypted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use wavecast_tests::{Run, Sandbox, sample_release};

/// The password keys are generated with: distinctive, so any echo of it is found.
const PASSWORD: &str = "leak-canary 7f3a9c correct horse";
/// A password that is not the key's, tried on publish.
const WRONG_PASSWORD: &str = "wrong-canary 51d0e2 battery staple";

/// Runs `wavecast` with `args` and `WAVECAST_KEY_PASSWORD=password`, and keeps the run
/// under `label`.
fn run(
    sandbox: &mut Sandbox,
    runs: &mut Vec<(String, Run)>,
    label: &str,
    password: &str,
    args: &[String],
) {
    sandbox
        .env
        .insert("WAVECAST_KEY_PASSWORD".into(), password.into());
    runs.push((label.to_owned(), sandbox.wavecast(args, [] as [&str; 0])));
}

/// Ways `secret` could appear in text: hex, and base64 at each of the three
/// alignments it could have inside a longer encoded blob (without the characters
/// that also depend on the neighbouring bytes).
fn encodings(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut out = vec![hex.to_uppercase(), hex];
    for shift in 0..3 {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(secret);
        let text = STANDARD.encode(&shifted);
        let start = if shift == 0 { 0 } else { 4 };
        out.push(text[start..text.len() - 4].to_owned());
    }
    out
}

/// The base64 line of a minisign secret key file, decoded.
fn key_file_bytes(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .nth(1)
        .expect("a minisign key has a base64 line");
    STANDARD.decode(line).unwrap()
}

/// Checks that the secret key at `path` is owner-only and encrypted with `PASSWORD`,
/// and returns what must never be printed: the key file's base64 line and the
/// encodings of the decrypted Ed25519 secret.
fn check_key_file(path: &Path) -> Vec<String> {
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}: {mode:o}", path.display());
    // minisign's layout: signature algorithm `Ed`, key derivation `Sc` (scrypt; an
    // unencrypted key has two zero bytes), checksum `B2`, salt, limits, then the key
    // id, secret key and checksum, encrypted.
    let stored = key_file_bytes(path);
    assert_eq!(&stored[..6], b"EdScB2", "{}", path.display());
    let decrypted = minisign::SecretKey::from_file(path, Some(PASSWORD.to_owned()))
        .expect("the key opens with its password")
        .to_bytes();
    // The key id (8 bytes) comes after 54 bytes of header; the secret seed follows.
    let seed = &decrypted[62..94];
    assert_ne!(&stored[62..94], seed, "the secret is stored encrypted");
    let encoded = STANDARD.encode(&decrypted);
    assert!(
        encodings(seed).iter().any(|text| encoded.contains(text)),
        "the encodings find the seed in the decrypted key's base64"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut secrets = encodings(seed);
    secrets.extend(encodings(&decrypted[54..]));
    secrets.push(text.lines().nth(1).unwrap().to_owned());
    secrets
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn passwords_and_secret_keys_never_leak() {
    let mut sandbox = Sandbox::new();
    sandbox.env.insert("RUST_BACKTRACE".into(), "1".into());
    let dir = sandbox.dir.path().to_owned();
    let path = |relative: &str| dir.join(relative).to_str().unwrap().to_owned();
    let release = sample_release(&dir.join("release"), "1");
    let release = release.to_str().unwrap();
    std::fs::write(path("password.txt"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(path("wrong.txt"), format!("{WRONG_PASSWORD}\n")).unwrap();
    let args = |args: &[&str]| args.iter().map(|arg| (*arg).to_owned()).collect::<Vec<_>>();
    let publish = |site: &str, key: &str, version: &str, folder: &str, extra: &[&str]| {
        let (site, key) = (path(site), path(key));
        let mut all = args(&[
            "publish",
            folder,
            "--version",
            version,
            "--site",
            &site,
            "--key",
            &key,
        ]);
        all.extend(args(extra));
        all
    };
    let mut runs = Vec::new();

    // Keys: one with the password from the environment, one from a file (with the
    // wrong password in the environment, so the key only opens if the file was used).
    let keygen = args(&["keygen", "--out", &path("env")]);
    run(&mut sandbox, &mut runs, "keygen (env)", PASSWORD, &keygen);
    let keygen = args(&[
        "keygen",
        "--out",
        &path("file"),
        "--password-file",
        &path("password.txt"),
    ]);
    run(
        &mut sandbox,
        &mut runs,
        "keygen (file)",
        WRONG_PASSWORD,
        &keygen,
    );
    let mut secrets = check_key_file(&dir.join("env/wavecast.key"));
    secrets.extend(check_key_file(&dir.join("file/wavecast.key")));

    // The right password, from the environment and from a file.
    let first = publish("site-env", "env/wavecast.key", "1.0.0", release, &[]);
    run(&mut sandbox, &mut runs, "publish", PASSWORD, &first);
    let from_file = publish(
        "site-file",
        "file/wavecast.key",
        "1.0.0",
        release,
        &["--password-file", &path("password.txt"), "--json"],
    );
    run(
        &mut sandbox,
        &mut runs,
        "publish (file)",
        WRONG_PASSWORD,
        &from_file,
    );
    // The wrong password, from a file and from the environment.
    let wrong_file = publish(
        "site-env",
        "env/wavecast.key",
        "1.1.0",
        release,
        &["--password-file", &path("wrong.txt")],
    );
    run(
        &mut sandbox,
        &mut runs,
        "publish (wrong file)",
        PASSWORD,
        &wrong_file,
    );
    let wrong_env = publish("site-env", "env/wavecast.key", "1.1.0", release, &[]);
    run(
        &mut sandbox,
        &mut runs,
        "publish (wrong env)",
        WRONG_PASSWORD,
        &wrong_env,
    );
    // Failures with the right password: a missing release folder, a version that
    // exists.
    let missing = path("missing");
    let no_folder = publish("site-env", "env/wavecast.key", "1.2.0", &missing, &[]);
    run(
        &mut sandbox,
        &mut runs,
        "publish (no folder)",
        PASSWORD,
        &no_folder,
    );
    let exists = publish(
        "site-env",
        "env/wavecast.key",
        "1.0.0",
        release,
        &["--json"],
    );
    run(
        &mut sandbox,
        &mut runs,
        "publish (exists)",
        PASSWORD,
        &exists,
    );

    let codes: Vec<(&str, i32)> = runs
        .iter()
        .map(|(label, run)| (label.as_str(), run.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("keygen (env)", 0),
            ("keygen (file)", 0),
            ("publish", 0),
            ("publish (file)", 0),
            ("publish (wrong file)", 2),
            ("publish (wrong env)", 2),
            ("publish (no folder)", 2),
            ("publish (exists)", 2),
        ],
        "{runs:#?}"
    );
    let forbidden: Vec<&str> = [PASSWORD, WRONG_PASSWORD]
        .into_iter()
        .chain(secrets.iter().map(String::as_str))
        .collect();
    for (label, run) in &runs {
        for secret in &forbidden {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{label} printed a secret ({secret}):\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
    for site in ["site-env", "site-file"] {
        for file in files_under(&dir.join(site)) {
            let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
            for secret in &forbidden {
                assert!(!text.contains(secret), "{} holds a secret", file.display());
            }
        }
    }
}
