//! The binary refuses a config it cannot use with one line and exit code 2.
//! (Also makes `cargo test --workspace` build the binary for the e2e tests.)

use std::process::Command;

#[test]
fn a_missing_explicit_config_is_one_line_and_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_rdock-imaged"))
        .args(["--config", "/nonexistent/imaged.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rdock-imaged: config: read /nonexistent/imaged.toml"),
        "{err}"
    );
}

#[test]
fn a_malformed_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imaged.toml");
    std::fs::write(&path, "listen = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rdock-imaged"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imaged.toml"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
