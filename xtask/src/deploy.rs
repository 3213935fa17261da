//! `cargo xtask deploy-check [--debug]`: the recipes under `deploy/` checked with the tools that
//! read them: hadolint on the Dockerfile, kubernetes-validate on the manifests, and Airflow
//! running the DAG against `kpipe demo --serve` (`deploy/check/`). They run a release build of
//! kpipe; with `--debug`, the debug build, which the tests have built already.
//!
//! The Python tools live in a venv under `~/.cache/kpipe-deploy-check`, made anew when
//! `deploy/check/requirements.txt` differs from the copy kept beside it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{cargo, release_dir, workspace_root};

pub fn check(args: &[String]) -> Result<(), String> {
    let mut debug = false;
    for arg in args {
        match arg.as_str() {
            "--debug" => debug = true,
            other => {
                return Err(format!("unknown argument `{other}`; usage: cargo xtask deploy-check [--debug]"));
            }
        }
    }
    let root = workspace_root();
    let check = root.join("deploy/check");
    let venv = venv(&check.join("requirements.txt"))?;
    let kpipe = if debug {
        cargo(&["build", "--locked", "-p", "kpipe-cli"])?;
        release_dir().with_file_name("debug").join("kpipe")
    } else {
        cargo(&["build", "--release", "--locked", "-p", "kpipe-cli"])?;
        release_dir().join("kpipe")
    };
    let python = venv.join("bin/python");
    run(Command::new(venv.join("bin/hadolint")).arg("--no-color").arg(root.join("deploy/Dockerfile")))?;
    run(Command::new(&python).arg(check.join("check_manifests.py")).arg("--kpipe").arg(&kpipe))?;
    run(Command::new(&python).arg(check.join("check_dag.py")).arg("--kpipe").arg(&kpipe))?;
    eprintln!("deploy-check: the Dockerfile, the manifests and the Airflow DAG passed");
    Ok(())
}

/// The venv with `requirements` installed, made anew when they changed since the last install.
fn venv(requirements: &Path) -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set: it holds the venv's cache")?;
    let cache = PathBuf::from(home).join(".cache/kpipe-deploy-check");
    let venv = cache.join("venv");
    // Written after a successful install only, so an interrupted one is done again.
    let installed = cache.join("requirements.installed");
    let wanted =
        std::fs::read(requirements).map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    if std::fs::read(&installed).is_ok_and(|had| had == wanted) && venv.join("bin/python").exists() {
        return Ok(venv);
    }
    let started = std::time::Instant::now();
    let _ = std::fs::remove_file(&installed);
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements))?;
    std::fs::write(&installed, &wanted).map_err(|e| format!("cannot write {}: {e}", installed.display()))?;
    eprintln!("deploy-check: venv installed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(venv)
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    );
    eprintln!("$ {shown}");
    let status = command.status().map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{shown}` failed ({status})")) }
}
