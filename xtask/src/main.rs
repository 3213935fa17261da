//! `cargo xtask <chore>`: the one entry point for the project's chores.
//!
//! - `ci`: what `.ci/run` runs: fmt, clippy with `-D warnings`, the tests, cargo-deny.
//! - `bench [sink|http] [ARGS...]`: the benchmarks, in release mode; prints one line per run.
//!   Without a name, all of them with their default scenarios.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask ci | bench [sink|http] [ARGS...]");
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
    match args.first().map(String::as_str) {
        None => {
            bench_sink(&[])?;
            bench_http(&[])
        }
        Some("sink") => bench_sink(&args[1..]),
        Some("http") => bench_http(&args[1..]),
        Some(other) if other.starts_with("--") => bench_sink(args),
        Some(other) => Err(format!("unknown benchmark `{other}`; known: sink, http")),
    }
}

fn example(package: &str, name: &str, runs: Vec<Vec<String>>) -> Result<(), String> {
    cargo(&["build", "--release", "--locked", "-p", package, "--example", name])?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let exe = std::path::Path::new(&target).join("release/examples").join(name);
    for run in runs {
        let status = Command::new(&exe)
            .args(&run)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !status.success() {
            return Err(format!("{name} {} failed ({status})", run.join(" ")));
        }
    }
    Ok(())
}

/// Rows per second and peak memory of the Parquet sink.
fn bench_sink(rest: &[String]) -> Result<(), String> {
    let runs = if rest.is_empty() {
        ["1000000", "10000000"].iter().map(|n| vec!["--rows".to_owned(), (*n).to_owned()]).collect()
    } else {
        vec![rest.to_vec()]
    };
    example("kpipe-sink-parquet", "sink_bench", runs)
}

/// Share of a quota the rate limiter achieves against the simulator, and requests over it.
fn bench_http(rest: &[String]) -> Result<(), String> {
    example("kpipe-http", "quota_bench", vec![rest.to_vec()])
}
