//! Where the binaries under test are.

use std::path::PathBuf;

/// `RDOCK_BIN_DIR`, else the cargo target directory the test executable was
/// built in (`target/debug/deps/<test>` → `target/debug`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RDOCK_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find the running test executable: {e}"));
    let deps = exe
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent", exe.display()));
    match deps.parent() {
        Some(dir) if deps.ends_with("deps") => dir.to_path_buf(),
        _ => deps.to_path_buf(),
    }
}

/// The path of binary `name`; fails the test with a hint when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} does not exist: run `cargo build --workspace` first (or set RDOCK_BIN_DIR)",
            path.display()
        );
    }
    path
}
