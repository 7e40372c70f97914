//! The binary refuses settings it cannot use with one line and exit code 2.
//! (Also makes `cargo test --workspace` build the binary for the e2e tests.)

use std::process::Command;

#[test]
fn a_bad_subnet_is_one_line_and_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_rdock-netd"))
        .args(["--config", "/dev/null", "--subnet", "10.0.0.0/33"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("invalid subnet \"10.0.0.0/33\""), "{err}");
}
