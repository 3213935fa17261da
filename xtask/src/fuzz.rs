//! `cargo xtask fuzz [--target NAME]... [--inputs N] [--seconds S] [--quick]`: the parsers'
//! fuzz targets (`crates/kpipe-fuzz`) in release mode, 1,000,000 inputs each by default;
//! `--quick` (CI's pass) runs the debug build for about a minute in all.

use super::{cargo, release_dir};

/// Targets `kpipe-fuzz` runs; `--quick` shares its minute among them.
const TARGETS: usize = 8;

/// About a minute in all, for CI.
const QUICK_SECONDS: f64 = 60.0;

pub fn fuzz(args: &[String]) -> Result<(), String> {
    let mut pass: Vec<String> = Vec::new();
    let mut quick = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--target" | "--inputs" | "--seconds" | "--seed" | "--crash-dir" => {
                let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
                pass.push(arg.clone());
                pass.push(value.clone());
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: cargo xtask fuzz [--target NAME]... [--inputs N] \
                     [--seconds S] [--quick]"
                ));
            }
        }
    }
    if quick {
        let targets = pass.iter().filter(|a| *a == "--target").count();
        let share = QUICK_SECONDS / if targets == 0 { TARGETS } else { targets } as f64;
        // A time budget per target and no input count: the minute is spent whatever the rate.
        pass.extend(["--seconds".into(), format!("{share:.1}"), "--inputs".into(), u64::MAX.to_string()]);
    }
    // The quick pass is a time budget, so the debug build the tests already made serves (CI
    // then builds nothing in release); full passes want release speed.
    let exe = if quick {
        cargo(&["build", "--locked", "-p", "kpipe-fuzz"])?;
        release_dir().with_file_name("debug").join("kpipe-fuzz")
    } else {
        cargo(&["build", "--release", "--locked", "-p", "kpipe-fuzz"])?;
        release_dir().join("kpipe-fuzz")
    };
    eprintln!("$ {} {}", exe.display(), pass.join(" "));
    let status = std::process::Command::new(&exe)
        .args(&pass)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if status.success() { Ok(()) } else { Err(format!("kpipe-fuzz found crashes or failed ({status})")) }
}
