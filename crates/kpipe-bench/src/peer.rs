//! The Python peer: a virtual environment with dlt installed from PyPI (pinned in
//! `peer/requirements.txt`), cached by the requirements' hash, and the script that pulls the
//! simulated Facebook insights with dlt's REST API source.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The pinned requirements.
pub const REQUIREMENTS: &str = include_str!("../peer/requirements.txt");

/// The dlt pipeline.
pub const SCRIPT: &str = include_str!("../peer/facebook_insights.py");

/// Why the peer cannot run: the scenario is reported as skipped with it.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No `$HOME` to cache the environment in.
    #[error("HOME is not set")]
    NoHome,
    /// A step failed.
    #[error("{step}: {detail}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// What went wrong (the tail of its output).
        detail: String,
    },
}

fn step(step: &'static str, detail: impl std::fmt::Display) -> PeerError {
    PeerError::Step { step, detail: detail.to_string() }
}

/// The last lines of a command's output, for an error message.
fn tail(output: &std::process::Output) -> String {
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// The Python interpreter of the cached environment, created (`python3 -m venv`, `pip install`)
/// if it is not there yet.
pub fn python() -> Result<PathBuf, PeerError> {
    let home = std::env::var_os("HOME").ok_or(PeerError::NoHome)?;
    let hash = Sha256::digest(REQUIREMENTS.as_bytes());
    let key: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let dir = Path::new(&home).join(".cache/kpipe-bench-venv").join(key);
    let python = dir.join("bin/python");
    let ready = dir.join(".installed");
    if ready.exists() && python.exists() {
        return Ok(python);
    }
    if dir.exists() {
        // A half-made environment from an interrupted install.
        std::fs::remove_dir_all(&dir).map_err(|e| step("remove a partial environment", e))?;
    }
    let parent = dir.parent().unwrap_or(&dir);
    std::fs::create_dir_all(parent).map_err(|e| step("create the cache directory", e))?;
    // pip reads its working directory: run in one that exists, whatever the caller's is.
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .current_dir(parent)
        .output()
        .map_err(|e| step("python3 -m venv", e))?;
    if !created.status.success() {
        return Err(step("python3 -m venv", tail(&created)));
    }
    let requirements = dir.join("requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS).map_err(|e| step("write requirements.txt", e))?;
    eprintln!("kpipe-bench: installing the Python peer (dlt) into {}", dir.display());
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .current_dir(&dir)
        .output()
        .map_err(|e| step("pip install", e))?;
    if !installed.status.success() {
        let detail = tail(&installed);
        let _ = std::fs::remove_dir_all(&dir);
        return Err(step("pip install", detail));
    }
    std::fs::write(&ready, REQUIREMENTS).map_err(|e| step("mark the environment ready", e))?;
    Ok(python)
}

/// dlt's row counts per table, from the script's last output line.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
pub struct PeerRows {
    /// Rows loaded per table (`ads_insights`, `ads_insights__actions`, ...).
    pub row_counts: std::collections::BTreeMap<String, u64>,
}

impl PeerRows {
    /// Reads the script's output: its last non-empty line is the JSON.
    pub fn parse(output: &str) -> Option<PeerRows> {
        output
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok())
    }

    /// Rows of the main table: one per ad and day.
    pub fn insights_rows(&self) -> u64 {
        self.row_counts.get("ads_insights").copied().unwrap_or(0)
    }

    /// Rows of every table.
    pub fn all_rows(&self) -> u64 {
        self.row_counts.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_json_line_holds_the_counts() {
        let out =
            "warning: something\n{\"row_counts\": {\"ads_insights\": 12, \"ads_insights__actions\": 30}}\n";
        let rows = PeerRows::parse(out).unwrap();
        assert_eq!((rows.insights_rows(), rows.all_rows()), (12, 42));
        assert!(PeerRows::parse("no json").is_none());
        assert!(REQUIREMENTS.contains("dlt[parquet]=="), "the peer is pinned");
    }
}
