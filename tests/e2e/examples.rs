//! The library's examples (`client/examples/`), built by `cargo build --examples`,
//! run as an application would run them: against nginx, on a root they create.

use std::process::{Command, Stdio};

use wavecast_tests::{Nginx, Run, Sandbox, assert_same_tree, binary, sample_release};

#[test]
fn the_check_and_install_example_initializes_installs_updates_and_stays_up_to_date() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (
        sample_release(&sandbox.path("r1"), "1"),
        sample_release(&sandbox.path("r2"), "2"),
    );
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let root = sandbox.root();
    let example = || {
        let output = Command::new(binary("examples/check_and_install"))
            .arg(&root)
            .arg(nginx.url())
            .arg(sandbox.pubkey())
            .stdin(Stdio::null())
            .output()
            .expect("run the example");
        Run::from_output(output)
    };

    // The first run initializes the root with InitOptions' defaults, then installs.
    let first = example().success();
    assert!(
        first.stdout.starts_with("installed 1.0.0 ("),
        "{}",
        first.stdout
    );
    assert!(
        first.stderr.contains("installing 1.0.0"),
        "{}",
        first.stderr
    );
    assert_same_tree(&root.join("current"), &r1);
    let config = sandbox.client(["config", "--json"]).success().json();
    assert_eq!(config["channel"], "stable", "{config}");

    sandbox.publish(&r2, "2.0.0", &[]).success();
    let second = example().success();
    assert!(
        second.stdout.starts_with("installed 2.0.0 ("),
        "{}",
        second.stdout
    );
    assert_same_tree(&root.join("current"), &r2);
    assert_eq!(example().success().stdout, "up to date\n");

    // Another root pinned to a wrong key: `init` refuses the site with the library's
    // error and hint, and writes no configuration.
    let other = Sandbox::new();
    let refused = Run::from_output(
        Command::new(binary("examples/check_and_install"))
            .arg(other.root())
            .arg(nginx.url())
            .arg("RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("error: ") && refused.stderr.contains("\nhint: "),
        "{}",
        refused.stderr
    );
    assert!(!other.root().join(".wavecast/config.json").exists());
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example =
        std::fs::read_to_string(workspace.join("client/examples/check_and_install.rs")).unwrap();
    let start = example
        .find("fn update(")
        .expect("the example has `fn update`");
    let end = start + example[start..].find("\n}\n").expect("`fn update` ends") + 3;
    let readme = std::fs::read_to_string(workspace.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{}```\n", &example[start..end])),
        "README.md's \"Embed the updater in an application\" no longer shows `fn update` of client/examples/check_and_install.rs as it is"
    );
}
