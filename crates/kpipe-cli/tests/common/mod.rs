//! What the tests that drive the `kpipe` binary share.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `kpipe args` in `dir`, without the caller's `RUST_LOG`.
pub fn kpipe(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run kpipe: {e}"))
}

/// Standard output then standard error.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Writes `content` to `dir/name`, creating directories.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// A configuration with one files source reading `data/*.csv` into `out`, then `extra`.
pub fn config(extra: &str) -> String {
    format!(
        "[pipeline]\noutput = \"out\"\n\n[sources.sheet]\ntype = \"files\"\nkind = \"metrics\"\npath = \"data/*.csv\"\n{extra}"
    )
}
