//! The `kpipe` binary as users and schedulers see it: exit codes, messages, files.

use std::path::{Path, PathBuf};
use std::process::Command;

mod catalog;
mod common;
mod report;

use common::{config, kpipe, text, write};

use kpipe_sink_parquet::read::{parquet_files, read_dir};

const METRICS_CSV: &str = "date,platform,account,level,entity,metric,value,currency\n\
    2026-03-01,linkedin,508,campaign,c1,spend,24.457317520310493,EUR\n\
    2026-03-01,linkedin,508,campaign,c1,impressions,1200,\n\
    2026-03-02,linkedin,508,campaign,c1,impressions,900,\n";

/// The metric rows below `dir/out/metrics`, as text, sorted.
fn metric_rows(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = read_dir(&dir.join("out/metrics"))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|s| format!("{:?}", s.row))
        .collect();
    rows.sort();
    rows
}

/// A metrics file of `lines` impression counts over March 2026: enough rows for a run to be
/// stopped half-way.
fn impressions_csv(lines: u32) -> String {
    let mut csv = String::from("date,platform,account,level,entity,metric,value,currency\n");
    for i in 0..lines {
        csv.push_str(&format!(
            "2026-03-{:02},linkedin,508,campaign,c{},impressions,{i},\n",
            1 + i % 28,
            i % 977
        ));
    }
    csv
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn expect_config_error(cfg: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", cfg);
    for command in ["run", "check"] {
        let out = kpipe(
            dir.path(),
            &[command, "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"]
                [..if command == "run" { 7 } else { 3 }],
        );
        assert_eq!(out.status.code(), Some(2), "{command}: {}", text(&out));
        let t = text(&out);
        assert!(t.contains("kpipe.toml: "), "{command}: the file is not named: {t}");
        assert!(t.contains(needle), "{command}: expected `{needle}` in: {t}");
        assert!(!dir.path().join("out").exists(), "{command}: something ran before the error");
    }
}

#[test]
fn a_missing_secret_names_the_key_and_the_variable() {
    expect_config_error(
        &config("").replace("path = \"data/*.csv\"", "path = \"${KPIPE_TEST_UNSET_SECRET}\""),
        "sources.sheet.path: environment variable KPIPE_TEST_UNSET_SECRET is not set",
    );
}

#[test]
fn an_unknown_key_names_the_key() {
    expect_config_error(&config("delimter = \";\"\n"), "sources.sheet.delimter: unknown field `delimter`");
    expect_config_error(
        &config("").replace("output =", "outptu ="),
        "pipeline.outptu: unknown field `outptu`",
    );
}

#[test]
fn a_rate_limit_of_zero_requests_names_the_key() {
    let linkedin = "\n[sources.li]\ntype = \"linkedin\"\naccount_ids = [\"508000001\"]\naccess_token = \"t\"\n\
                    rate_limit = { requests = 0, per_seconds = 1 }\n";
    expect_config_error(&config(linkedin), "sources.li.rate_limit.requests: is 0; expected 1 or more");
}

#[test]
fn a_secret_of_the_wrong_type_is_named_by_its_key_without_its_value() {
    let linkedin = "\n[sources.li]\ntype = \"linkedin\"\naccount_ids = [\"508000001\"]\nclient_id = \"c\"\n\
                    client_secret = 12345\nrefresh_token = \"r\"\n";
    expect_config_error(
        &config(linkedin),
        "sources.li.client_secret: invalid type: integer, expected a string",
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "kpipe.toml", &config(linkedin));
    let said = text(&kpipe(dir.path(), &["check", "-c", "kpipe.toml"]));
    assert!(!said.contains("12345"), "the value is shown: {said}");
}

/// A token endpoint that cannot be reached is named, with the cause, once.
#[test]
fn an_unreachable_token_endpoint_is_named_with_its_cause_once() {
    let port = closed_port();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    let linkedin = format!(
        "\n[sources.li]\ntype = \"linkedin\"\naccount_ids = [\"508000001\"]\nclient_id = \"c\"\n\
         client_secret = \"s\"\nrefresh_token = \"r\"\n\
         token_url = \"http://127.0.0.1:{port}/oauth/v2/accessToken?app=1\"\nbase_url = \"http://127.0.0.1:{port}\"\n"
    );
    write(dir.path(), "kpipe.toml", &config(&linkedin));
    let out = kpipe(dir.path(), &["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    let line =
        said.lines().find(|l| l.trim_start().starts_with("error: ")).unwrap_or_else(|| panic!("{said}"));
    let endpoint =
        format!("the token endpoint http://127.0.0.1:{port}/oauth/v2/accessToken could not be reached: ");
    assert!(line.contains(&endpoint), "{line}");
    assert!(line.contains("Connection refused"), "the cause is missing: {line}");
    assert_eq!(line.matches("could not be reached").count(), 1, "said twice: {line}");
}

/// `kpipe run` and `kpipe kpis` refused by the output's lock both exit 2 (nothing ran).
#[test]
fn a_held_lock_refuses_run_and_kpis_with_the_same_code() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config(""));
    let storage = kpipe_sink_parquet::Storage::local(dir.path().join("out"));
    let _held = kpipe_cli::lock::RunLock::acquire(&storage, std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    for args in [
        &["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"][..],
        &["kpis", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"][..],
    ] {
        let out = kpipe(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{}: {}", args[0], text(&out));
        assert!(text(&out).contains("another kpipe run is using"), "{}: {}", args[0], text(&out));
    }
}

/// `-v` and `-q` change what is logged: info by default off a terminal, debug with `-v`,
/// warnings only with `-q`.
#[test]
fn verbose_and_quiet_change_the_log_level() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config(""));
    let run = |flag: Option<&str>| {
        let mut args = vec!["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"];
        args.extend(flag);
        let out = kpipe(dir.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let default = run(None);
    assert!(default.contains(" INFO ") && !default.contains(" DEBUG "), "{default}");
    let verbose = run(Some("-v"));
    assert!(verbose.contains(" DEBUG "), "{verbose}");
    assert!(!verbose.contains("hyper") && !verbose.contains(" TRACE "), "{verbose}");
    let quiet = run(Some("-q"));
    assert!(!quiet.contains(" INFO "), "{quiet}");
}

/// A window in the future is refused before anything runs; one older than the platform keeps
/// data for is warned about.
#[test]
fn windows_in_the_future_are_refused_and_beyond_the_platforms_history_warned() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config(""));
    let out = kpipe(dir.path(), &["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2099-01-01"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--to 2099-01-01 is in the future"), "{}", text(&out));
    assert!(!dir.path().join("out/metrics").exists(), "nothing ran");

    let port = closed_port();
    let linkedin = format!(
        "\n[sources.li]\ntype = \"linkedin\"\naccount_ids = [\"508000001\"]\naccess_token = \"t\"\n\
         base_url = \"http://127.0.0.1:{port}\"\nretry = {{ max_attempts = 1 }}\n"
    );
    write(dir.path(), "kpipe.toml", &config(&linkedin));
    let out = kpipe(dir.path(), &["run", "-c", "kpipe.toml", "--from", "2001-01-01", "--to", "2001-01-02"]);
    assert!(text(&out).contains("LinkedIn keeps ad analytics for about ten years"), "{}", text(&out));
}

#[test]
fn an_unknown_type_lists_the_known_ones() {
    expect_config_error(
        &config("").replace("type = \"files\"", "type = \"linkdin\""),
        "sources.sheet.type: unknown connector type `linkdin`; known types: files",
    );
}

#[test]
fn a_bad_date_names_the_key() {
    expect_config_error(
        &config("start_date = \"2026-13-01\"\n"),
        "sources.sheet.start_date: `2026-13-01` is not a date; expected YYYY-MM-DD",
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "kpipe.toml", &config(""));
    let out = kpipe(dir.path(), &["run", "-c", "kpipe.toml", "--from", "01/03/2026"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--from"), "{}", text(&out));
}

#[test]
fn bad_rows_are_quarantined_and_the_run_is_partial() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(
        dir.path(),
        "data/m.csv",
        &format!(
            "{METRICS_CSV}2026-03-02,linkedin,508,campaign,c1,clicks,lots,\n2026-03-33,linkedin,508,campaign,c1,clicks,1,\n"
        ),
    );
    write(dir.path(), "kpipe.toml", &config(""));
    let out = kpipe(
        dir.path(),
        &[
            "run",
            "-c",
            "kpipe.toml",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--summary-json",
            "summary.json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(read_dir(&dir.path().join("out/metrics")).unwrap_or_else(|e| panic!("{e}")).len(), 3);

    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("summary.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary["status"], "partial");
    let sheet = &summary["sources"][0];
    assert_eq!(sheet["status"], "partial");
    assert_eq!(sheet["quarantined"], 2);
    assert_eq!(sheet["rows_written"], 3);
    assert_eq!(sheet["rows_by_metric"]["impressions"], 2);

    let qfile = PathBuf::from(sheet["quarantine_file"].as_str().unwrap_or_default());
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join(&qfile).canonicalize().unwrap_or(qfile))
            .unwrap_or_else(|e| panic!("{e}"))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}")))
            .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["location"].as_str().unwrap_or_default().ends_with("m.csv:5"), "{}", lines[0]);
    assert_eq!(lines[0]["reason"], "`value`: `lots` is not a decimal number");
    assert_eq!(lines[0]["raw"], "2026-03-02,linkedin,508,campaign,c1,clicks,lots,");
    assert_eq!(lines[0]["source"], "sheet");
    assert!(lines[1]["reason"].as_str().unwrap_or_default().contains("2026-03-33"));
}

#[test]
fn running_twice_yields_the_same_rows() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config(""));
    let rows = metric_rows;
    let args = ["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"];
    assert_eq!(kpipe(dir.path(), &args).status.code(), Some(0));
    let first = rows(dir.path());
    assert_eq!(first.len(), 3);
    assert_eq!(kpipe(dir.path(), &args).status.code(), Some(0));
    assert_eq!(rows(dir.path()), first, "a second run changed the data");
    let files = parquet_files(&dir.path().join("out/metrics")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 2, "{files:?}");
}

/// An output written in layout version 1 (`source=<s>/date=<d>/part-00000.parquet`) is moved to
/// version 2 by the next run, days outside its window included, and reads the same.
#[test]
fn a_run_moves_an_output_of_layout_version_1() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config(""));
    let rows = metric_rows;
    let all = ["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"];
    assert_eq!(kpipe(dir.path(), &all).status.code(), Some(0));
    let before = rows(dir.path());
    // What version 1 wrote: the same files under folder names.
    let out = dir.path().join("out");
    let mut moved = 0;
    for (tree, folder, sub) in [("metrics", "source=", "date="), ("kpis", "grain=", "period=")] {
        for file in parquet_files(&out.join(tree)).unwrap_or_else(|e| panic!("{e}")) {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let (key, day) =
                name.trim_end_matches(".parquet").split_once('.').unwrap_or_else(|| panic!("{name}"));
            let v1 = out.join(tree).join(format!("{folder}{key}")).join(format!("{sub}{day}"));
            std::fs::create_dir_all(&v1).unwrap_or_else(|e| panic!("{e}"));
            std::fs::rename(&file, v1.join("part-00000.parquet")).unwrap_or_else(|e| panic!("{e}"));
            moved += 1;
        }
    }
    assert!(moved > 2, "{moved}");

    let one_day = ["run", "-c", "kpipe.toml", "--from", "2026-03-02", "--to", "2026-03-02"];
    let run = kpipe(dir.path(), &one_day);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(rows(dir.path()), before, "the moved output reads differently");
    for tree in ["metrics", "kpis"] {
        for entry in std::fs::read_dir(out.join(tree)).unwrap_or_else(|e| panic!("{e}")) {
            let entry = entry.unwrap_or_else(|e| panic!("{e}"));
            assert!(entry.path().is_file(), "a folder is left in {tree}/: {}", entry.path().display());
        }
    }
    assert!(out.join("metrics/sheet.2026-03-01.parquet").is_file(), "a day outside the window is moved too");
    assert!(out.join("kpis/month.2026-03-01.parquet").is_file());
}

#[test]
fn a_failing_source_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(
        dir.path(),
        "kpipe.toml",
        &config("\n[sources.gone]\ntype = \"files\"\nkind = \"survey\"\npath = \"missing/*.csv\"\n"),
    );
    let out = kpipe(dir.path(), &["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("gone") && t.contains("failed") && t.contains("matches no file"), "{t}");
    assert_eq!(read_dir(&dir.path().join("out/metrics")).unwrap_or_else(|e| panic!("{e}")).len(), 3);
}

#[test]
fn connectors_are_listed() {
    let out = kpipe(Path::new("."), &["connectors"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("files "));
}

#[test]
fn check_reads_the_files_and_probes_the_output_without_leaving_anything() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config(""));
    let out = kpipe(dir.path(), &["check", "-c", "kpipe.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ok   sheet (files): 1 file(s) match"), "{}", text(&out));
    assert!(
        text(&out).contains("ok (listed, wrote, read back and removed a probe object)"),
        "{}",
        text(&out)
    );
    // The directory is created; the probe is gone.
    let left =
        kpipe_sink_parquet::Storage::local(dir.path().join("out")).list("").unwrap_or_else(|e| panic!("{e}"));
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn check_fails_for_an_output_that_cannot_be_written_naming_it_and_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config(""));
    // A regular file where the output directory should be.
    write(dir.path(), "out", "not a directory");
    let out = kpipe(dir.path(), &["check", "-c", "kpipe.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("kpipe.toml: pipeline.output = ") && said.contains("out"), "{said}");
    let out = kpipe(dir.path(), &["check", "-c", "kpipe.toml", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report["output"]["ok"], false, "{report}");
}

/// A run killed at any moment leaves under `metrics/` only complete files, each holding a whole
/// day as one run wrote it.
#[test]
fn a_killed_run_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", &impressions_csv(200_000));
    write(dir.path(), "kpipe.toml", &config(""));
    let args = ["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-28"];
    let metrics = dir.path().join("out/metrics");
    let check_complete = |when: &str| {
        for entry in walk(&dir.path().join("out/metrics")) {
            let name = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            assert!(
                name.starts_with("sheet.2026-03-") && name.ends_with(".parquet") && name.len() == 24,
                "{when}: unexpected file {}",
                entry.display()
            );
        }
        // Every file under metrics/ opens and reads to the end.
        read_dir(&metrics).unwrap_or_else(|e| panic!("{when}: {e}")).len()
    };
    for delay_ms in [5u64, 40, 120, 250] {
        kill_after(dir.path(), &args, delay_ms);
        // Before any run completed, each day is either absent or complete.
        check_complete(&format!("killed after {delay_ms} ms"));
    }
    assert_eq!(kpipe(dir.path(), &args).status.code(), Some(0));
    assert_eq!(check_complete("after a full run"), 200_000);
    // Killing a later run never loses or doubles what the full run published.
    for delay_ms in [5u64, 60, 200] {
        kill_after(dir.path(), &args, delay_ms);
        assert_eq!(check_complete(&format!("re-run killed after {delay_ms} ms")), 200_000);
    }
}

/// Starts `kpipe` with `args` and SIGKILLs it after `delay_ms`.
fn kill_after(dir: &Path, args: &[&str], delay_ms: u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn state_show_says_what_was_written_and_state_reset_forgets_days() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config(""));
    let args = ["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-02"];
    assert_eq!(kpipe(dir.path(), &args).status.code(), Some(0));
    let show = |dir: &Path| {
        let out = kpipe(dir, &["state", "show", "-c", "kpipe.toml", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    };
    let state = show(dir.path());
    assert_eq!(state[0]["source"], "sheet", "{state}");
    assert_eq!(state[0]["provisional_days"], 2, "{state}");
    assert_eq!(state[0]["days"][0]["from"], "2026-03-01", "{state}");
    assert_eq!(state[0]["days"][0]["to"], "2026-03-02", "{state}");
    let text_out = kpipe(dir.path(), &["state", "show", "-c", "kpipe.toml"]);
    assert!(text(&text_out).contains("2026-03-01..2026-03-02  provisional"), "{}", text(&text_out));

    let out = kpipe(
        dir.path(),
        &["state", "reset", "-c", "kpipe.toml", "--source", "sheet", "--from", "2026-03-02"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("forgot 1 written day(s)"), "{}", text(&out));
    let state = show(dir.path());
    assert_eq!(state[0]["provisional_days"], 1, "{state}");
    assert_eq!(state[0]["days"][0]["to"], "2026-03-01", "{state}");

    let out = kpipe(dir.path(), &["state", "reset", "-c", "kpipe.toml", "--source", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--source nope") && text(&out).contains("sheet"), "{}", text(&out));
}

/// SIGTERM (or Ctrl-C) stops `kpipe run` with a message and the signal's exit code, removes what
/// the interrupted sources staged and releases the lock; the next run completes.
#[test]
fn a_terminated_run_says_so_cleans_up_and_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", &impressions_csv(400_000));
    write(dir.path(), "small/m.csv", METRICS_CSV);
    write(
        dir.path(),
        "kpipe.toml",
        &config("\n[sources.small]\ntype = \"files\"\nkind = \"metrics\"\npath = \"small/*.csv\"\n"),
    );
    let args = ["run", "-c", "kpipe.toml", "--from", "2026-03-01", "--to", "2026-03-28"];
    let mut interrupted = false;
    for delay_ms in [150u64, 400, 60] {
        let child = Command::new(env!("CARGO_BIN_EXE_kpipe"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let pid = libc::pid_t::try_from(child.id()).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: signalling a child this test started and has not waited for.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        if out.status.code() == Some(0) {
            continue; // finished before the signal
        }
        assert_eq!(out.status.code(), Some(143), "{}", text(&out));
        assert!(text(&out).contains("SIGTERM received, stopping"), "{}", text(&out));
        // Each source is named with what it published; the large one was still pulling.
        let said = text(&out);
        let line = |name: &str| said.lines().find(|l| l.trim_start().starts_with(name)).map(str::to_owned);
        let sheet = line("sheet ").unwrap_or_else(|| panic!("no line for `sheet`:\n{said}"));
        assert!(sheet.contains("interrupted while pulling 2026-03-01..=2026-03-28"), "{said}");
        let small = line("small ").unwrap_or_else(|| panic!("no line for `small`:\n{said}"));
        assert!(
            ["published 2026-03-01..=2026-03-28 (3 rows)", "interrupted while pulling", "not started"]
                .iter()
                .any(|state| small.contains(state)),
            "{said}"
        );
        let staged = walk(&dir.path().join("out/.kpipe/staging"));
        assert!(staged.is_empty(), "left staged: {staged:?}");
        interrupted = true;
        break;
    }
    assert!(interrupted, "every run finished before its signal: nothing was tested");
    let again = kpipe(dir.path(), &args);
    assert_eq!(again.status.code(), Some(0), "the lock was released: {}", text(&again));
    assert_eq!(metric_rows(dir.path()).len(), 400_003);
}

/// `kpipe completions SHELL` prints a script each shell loads, naming every subcommand.
#[test]
fn completions_for_each_shell_name_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = kpipe(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        for subcommand in ["run", "backfill", "report", "catalog", "schedule", "completions"] {
            assert!(script.contains(subcommand), "{shell} completions lack `{subcommand}`");
        }
    }
    let out = kpipe(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

/// The man pages: one per visible subcommand, each with its exit codes.
#[test]
fn man_pages_are_written_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = kpipe(dir.path(), &["man", "--dir", "man"]);
    assert!(out.status.success(), "{}", text(&out));
    for page in ["kpipe.1", "kpipe-run.1", "kpipe-report.1", "kpipe-catalog.1", "kpipe-state-reset.1"] {
        let roff = std::fs::read_to_string(dir.path().join("man").join(page)).unwrap();
        assert!(roff.contains("Exit codes"), "{page} lacks the exit codes");
    }
    assert!(!dir.path().join("man/kpipe-man.1").exists(), "the hidden command has no page");
}
