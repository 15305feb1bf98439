//! The C ABI (`ffi/`): `tests/c/update.c`, compiled with `cc` against the generated
//! header and `libwavecast_ffi` (built by `cargo build --workspace --lib`), run
//! step by step against nginx as a C application would run: linked to the shared
//! library for every step, and to the static one for a failing init.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use wavecast_tests::{
    Nginx, Run, Sandbox, assert_same_tree, binary, pseudo_random, sample_release,
};

/// How the C program is linked to the library.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// To `libwavecast_ffi.so`, found at run time through the rpath.
    Shared,
    /// To `libwavecast_ffi.a`, with the system libraries rustc names for it
    /// (`--print native-static-libs` on linux-gnu).
    Static,
}

/// Compiles the C program into the sandbox, linked to the library built next to
/// the test binary.
fn compile(sandbox: &Sandbox, link: Link) -> PathBuf {
    let library_dir = binary("libwavecast_ffi.so").parent().unwrap().to_owned();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let program = sandbox.path(&format!("update-{link:?}"));
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(workspace.join("ffi/include"))
        .arg(workspace.join("tests/c/update.c"))
        .arg("-o")
        .arg(&program);
    match link {
        Link::Shared => cc
            .arg("-L")
            .arg(&library_dir)
            .arg(format!("-Wl,-rpath,{}", library_dir.display()))
            .args(["-lwavecast_ffi", "-lpthread"]),
        Link::Static => cc.arg(library_dir.join("libwavecast_ffi.a")).args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ]),
    };
    Run::from_output(cc.output().expect("run cc")).success();
    program
}

/// Runs the C program with `args`.
fn run(program: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the C program");
    Run::from_output(output)
}

/// The JSON document on the line `label {...}` of `stdout`.
fn document(stdout: &str, label: &str) -> Value {
    let prefix = format!("{label} ");
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{stdout}"));
    serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))
}

/// Checks the `progress PHASE DONE TOTAL` lines: phases in order, bytes done and
/// total never decreasing, done never above total, and the last line at its
/// total. Returns that total.
fn check_progress(stdout: &str) -> u64 {
    const PHASES: [&str; 4] = ["checking", "downloading", "assembling", "switching"];
    let lines: Vec<(usize, u64, u64)> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("progress "))
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let phase = PHASES.iter().position(|phase| *phase == fields[0]).unwrap();
            (
                phase,
                fields[1].parse().unwrap(),
                fields[2].parse().unwrap(),
            )
        })
        .collect();
    assert!(lines.len() > 3, "{stdout}");
    assert_eq!(lines[0], (0, 0, 0), "{stdout}");
    for pair in lines.windows(2) {
        let ((phase, done, total), (next_phase, next_done, next_total)) = (pair[0], pair[1]);
        assert!(
            phase <= next_phase && done <= next_done && total <= next_total,
            "{stdout}"
        );
    }
    assert!(
        lines.iter().all(|(_, done, total)| done <= total),
        "{stdout}"
    );
    let (phase, done, total) = *lines.last().unwrap();
    assert_eq!((phase, done), (3, total), "{stdout}");
    assert!(total > 0, "{stdout}");
    total
}

#[test]
fn a_c_program_checks_installs_cancels_stages_and_applies_through_the_c_abi() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    let r2 = sample_release(&sandbox.path("r2"), "2");
    // Big enough to take several progress reports, and a cancel mid-download.
    std::fs::write(r2.join("share/big.bin"), pseudo_random(8 << 20, 2)).unwrap();
    let r3 = sample_release(&sandbox.path("r3"), "3");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let program = compile(&sandbox, Link::Shared);
    let root = sandbox.root();
    let step = |command: &str| run(&program, &[command.as_ref(), root.as_os_str()]);

    // A wrong key: init refuses the site with the library's message, causes and
    // hint, and writes nothing; the same with the static library.
    for program in [&program, &compile(&sandbox, Link::Static)] {
        let other = Sandbox::new();
        let refused = run(
            program,
            &[
                "init".as_ref(),
                other.root().as_os_str(),
                nginx.url().as_ref(),
                "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3".as_ref(),
            ],
        )
        .code(1);
        assert_eq!(refused.stdout, "not initialized\n");
        assert!(
            refused
                .stderr
                .starts_with("wavecast_init failed (status 1)\nerror: ")
                && refused.stderr.contains("\nhint: "),
            "{}",
            refused.stderr
        );
        assert!(!other.root().join(".wavecast/config.json").exists());
    }

    // Open fails with NOT_INITIALIZED, init, open; then open alone.
    let init = || {
        run(
            &program,
            &[
                "init".as_ref(),
                root.as_os_str(),
                nginx.url().as_ref(),
                sandbox.pubkey().as_os_str(),
            ],
        )
        .success()
    };
    assert_eq!(init().stdout, "not initialized\nopened\n");
    assert_eq!(init().stdout, "opened\n");

    let check = document(&step("check").success().stdout, "check");
    assert_eq!(check["decision"], "update", "{check}");
    assert_eq!(check["current"], Value::Null, "{check}");
    assert_eq!(check["target"], "1.0.0", "{check}");
    assert_eq!(check["channel"], "stable", "{check}");
    assert_eq!(check["mandatory"], false, "{check}");

    // Install 1.0.0 with progress.
    let install = step("install").success();
    check_progress(&install.stdout);
    let installed = document(&install.stdout, "installed");
    assert_eq!(installed["outcome"], "installed", "{installed}");
    assert_eq!(installed["version"], "1.0.0", "{installed}");
    assert_eq!(installed["previous"], Value::Null, "{installed}");
    assert_same_tree(&root.join("current"), &r1);
    assert_eq!(
        step("install").success().stdout.lines().last(),
        Some("nothing to install")
    );

    // 2.0.0, cancelled from another thread mid-download: 1.0.0 stays, nothing is
    // left half done, and the handle stays cancelled.
    sandbox.publish(&r2, "2.0.0", &[]).success();
    let cancelled = step("cancel").success();
    assert!(
        cancelled.stdout.ends_with("cancelled\nagain cancelled\n"),
        "{}",
        cancelled.stdout
    );
    assert!(
        cancelled.stdout.contains("progress downloading "),
        "{}",
        cancelled.stdout
    );
    assert_same_tree(&root.join("current"), &r1);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert!(status["interrupted"].is_null(), "{status}");
    assert!(status["staged"].is_null(), "{status}");

    // Staged beside the running 1.0.0, then applied.
    let stage = step("stage").success();
    assert!(check_progress(&stage.stdout) > 8 << 20, "{}", stage.stdout);
    let staged = document(&stage.stdout, "staged");
    assert_eq!(staged["version"], "2.0.0", "{staged}");
    assert_same_tree(&root.join("current"), &r1);
    let applied = document(&step("apply").success().stdout, "applied");
    assert_eq!(applied["version"], "2.0.0", "{applied}");
    assert_eq!(applied["previous"], "1.0.0", "{applied}");
    assert_eq!(applied["dir"], staged["dir"], "{applied}");
    assert_same_tree(&root.join("current"), &r2);
    assert_eq!(step("apply").success().stdout, "nothing to apply\n");

    // The new release is on trial: launches count until it is confirmed.
    let launched = document(&step("launched").success().stdout, "launched");
    assert_eq!(launched["outcome"], "counted", "{launched}");
    assert_eq!(launched["launches"], 1, "{launched}");
    assert_eq!(launched["release"]["version"], "2.0.0", "{launched}");
    assert_eq!(step("confirm").success().stdout, "confirmed\n");
    let launched = document(&step("launched").success().stdout, "launched");
    assert_eq!(launched["outcome"], "confirmed", "{launched}");
    assert_eq!(launched["applied"], Value::Null, "{launched}");

    // A launch applies a staged release first.
    sandbox.publish(&r3, "3.0.0", &[]).success();
    step("stage").success();
    assert_same_tree(&root.join("current"), &r2);
    let launched = document(&step("launched").success().stdout, "launched");
    assert_eq!(launched["applied"]["version"], "3.0.0", "{launched}");
    assert_eq!(launched["release"]["version"], "3.0.0", "{launched}");
    assert_eq!(launched["outcome"], "counted", "{launched}");
    assert_same_tree(&root.join("current"), &r3);
}

/// The first fenced block in `lang` after `marker` in the README.
fn readme_block(marker: &str, lang: &str) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(workspace.join("README.md")).unwrap();
    let after = &readme[readme.find(marker).expect(marker)..];
    let fence = format!("```{lang}\n");
    let body = &after[after.find(&fence).expect(&fence) + fence.len()..];
    body[..body.find("\n```").unwrap()].to_owned()
}

/// `text` with `from` replaced by `to`, which must occur in it.
#[track_caller]
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the README's snippet lacks {from}");
    text.replace(from, to)
}

#[test]
fn the_readmes_python_and_csharp_programs_update_through_the_c_abi() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    let root = sandbox.root();
    let library = binary("libwavecast_ffi.so");

    // Python's ctypes, as the README shows it, with this library and root.
    let python = replaced(
        &readme_block("**Python** loads it with `ctypes`", "python"),
        "\"libwavecast_ffi.so\"",
        &format!("{:?}", library.display().to_string()),
    );
    let python = replaced(
        &python,
        "b\"/opt/myapp\"",
        &format!("{:?}.encode()", root.display().to_string()),
    );
    let script = sandbox.path("update.py");
    std::fs::write(&script, python).unwrap();
    let run = Run::from_output(
        Command::new("python3")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .expect("run python3"),
    )
    .success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"update"), "{}", run.stdout);
    assert_eq!(lines.last(), Some(&"1.0.0"), "{}", run.stdout);
    assert!(run.stdout.contains(" bytes\n"), "progress: {}", run.stdout);
    assert_same_tree(&root.join("current"), &r1);

    // C# through P/Invoke: the README's program, compiled with Mono's mcs.
    sandbox.publish(&r2, "2.0.0", &[]).success();
    let source = sandbox.path("Update.cs");
    std::fs::write(
        &source,
        readme_block("**C#** calls it through P/Invoke", "csharp"),
    )
    .unwrap();
    let program = sandbox.path("Update.exe");
    Run::from_output(
        Command::new("mcs")
            .arg(format!("-out:{}", program.display()))
            .arg(&source)
            .output()
            .expect("run mcs (scripts/install-deps.sh installs mono-mcs)"),
    )
    .success();
    let run = Run::from_output(
        Command::new("mono")
            .arg(&program)
            .arg(&root)
            .env("LD_LIBRARY_PATH", library.parent().unwrap())
            .stdin(Stdio::null())
            .output()
            .expect("run mono"),
    )
    .success();
    let documents: Vec<Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(documents.len(), 2, "{}", run.stdout);
    assert_eq!(documents[0]["decision"], "update", "{}", run.stdout);
    assert_eq!(documents[0]["target"], "2.0.0", "{}", run.stdout);
    assert_eq!(documents[1]["outcome"], "installed", "{}", run.stdout);
    assert_eq!(documents[1]["version"], "2.0.0", "{}", run.stdout);
    assert!(run.stderr.contains(" bytes\n"), "progress: {}", run.stderr);
    assert_same_tree(&root.join("current"), &r2);

    // Up to date now: the install finds nothing to do, and says nothing more.
    let again = Run::from_output(
        Command::new("mono")
            .arg(&program)
            .arg(&root)
            .env("LD_LIBRARY_PATH", library.parent().unwrap())
            .output()
            .expect("run mono"),
    )
    .success();
    assert_eq!(again.stdout.lines().count(), 1, "{}", again.stdout);
}
