//! `cargo xtask <chore>`: the one entry point for the project's chores.
//!
//! - `ci`: what `.ci/run` runs: fmt, clippy with `-D warnings`, the tests, cargo-deny.
//! - `bench [sink] [--rows N]...`: the benchmarks, in release mode; prints one line per run.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask ci | bench [sink] [--rows N ...]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(&cargo).args(args).status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`cargo {}` failed ({status})", args.join(" "))) }
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
    // The README's test command.
    cargo(&["test", "--workspace", "--locked"])?;
    cargo(&["deny", "--offline", "check", "licenses", "bans", "sources"])
}

fn bench(args: &[String]) -> Result<(), String> {
    let (which, rest) = match args.first().map(String::as_str) {
        Some("sink") | None => ("sink", args.get(1..).unwrap_or_default()),
        Some(other) if other.starts_with("--") => ("sink", args),
        Some(other) => return Err(format!("unknown benchmark `{other}`; known: sink")),
    };
    debug_assert_eq!(which, "sink");
    cargo(&["build", "--release", "--locked", "-p", "kpipe-sink-parquet", "--example", "sink_bench"])?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let exe = std::path::Path::new(&target).join("release/examples/sink_bench");
    let runs: Vec<Vec<String>> = if rest.is_empty() {
        ["1000000", "10000000"].iter().map(|n| vec!["--rows".to_owned(), (*n).to_owned()]).collect()
    } else {
        vec![rest.to_vec()]
    };
    for run in runs {
        let status = Command::new(&exe)
            .args(&run)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !status.success() {
            return Err(format!("sink_bench {} failed ({status})", run.join(" ")));
        }
    }
    Ok(())
}
