//! The run summary per stream with the quota each platform says is left, and `kpipe plan`'s
//! estimate held against the requests a run then sends, against the four simulated platform
//! APIs (kpipe-sim serves them with their real wire shapes). The quota figures follow what the
//! APIs document: HubSpot's `X-HubSpot-RateLimit-*` headers (shared/apis/hubspot.md §8), Meta's
//! usage headers (shared/apis/facebook.md §6) and GA4's `propertyQuota`
//! (shared/apis/ga4.md §3); LinkedIn sends none (shared/apis/linkedin.md §6).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use kpipe_cli::demo_apis::DemoApis;
use kpipe_sim::platform::hubspot::{self, HubSpotApi};
use kpipe_sim::{AuthConfig, SimConfig, SimServer};
use serde_json::Value;

const FROM: &str = "2026-10-01";
const TO: &str = "2026-10-03";

/// Runs the binary off the test's threads, so the simulators keep answering.
async fn kpipe(dir: &Path, args: Vec<String>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpipe"));
    cmd.args(args).current_dir(dir).env_remove("RUST_LOG");
    tokio::task::spawn_blocking(move || cmd.output()).await.expect("joined").expect("kpipe runs")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn source<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no source {name} in {doc}"))
}

fn number(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_estimates_the_run_and_the_summary_has_streams_and_quota_left() {
    let apis = DemoApis::start().await.expect("the simulators start");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = common::write(
        dir.path(),
        "kpipe.toml",
        &format!("[pipeline]\noutput = \"out\"\n{}", apis.sources_toml()),
    );
    let config = config.display().to_string();

    // The plan, before anything was pulled: an estimate per source and no ledger yet.
    let out = kpipe(dir.path(), args(&["plan", "-c", &config, "--from", FROM, "--to", TO, "--json"])).await;
    assert!(out.status.success(), "{}", common::text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");

    let summary_path = dir.path().join("summary.json");
    let out = kpipe(
        dir.path(),
        args(&[
            "run",
            "-c",
            &config,
            "--from",
            FROM,
            "--to",
            TO,
            "--summary-json",
            &summary_path.display().to_string(),
        ]),
    )
    .await;
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    let summary = json_file(&summary_path);

    for name in ["linkedin_ads", "facebook_ads", "hubspot_crm", "web_analytics"] {
        let planned = source(&plan, name);
        let ran = source(&summary, name);
        assert_eq!(ran["status"], "succeeded", "{name}: {ran}");
        let estimate = &planned["estimate"];
        let sent = number(&ran["http"]["requests"]);
        let min = number(&estimate["min_requests"]);
        assert!(min > 0 && sent >= min, "{name}: {sent} requests sent, the plan said at least {min}");
        if let Some(max) = estimate["max_requests"].as_u64() {
            assert!(sent <= max, "{name}: {sent} requests sent, the plan said at most {max}");
        }
        // The simulated accounts are small enough for every listing and report to fit one
        // page: then the least the plan announces is exactly what the run sends. HubSpot's
        // forms and emails are only known once listed, so it gets a lower bound.
        if name != "hubspot_crm" {
            assert_eq!(sent, min, "{name}: the plan's estimate {estimate}");
        }
        assert!(estimate["pace"]["requests"].as_u64().is_some_and(|n| n > 0), "{name}: {estimate}");

        // Every row is counted for one of the source's streams, and each stream was pulled for
        // the three days and has its cursors at the last of them.
        let streams = ran["streams"].as_object().unwrap_or_else(|| panic!("{name}: no streams"));
        let rows: u64 = streams.values().map(|s| number(&s["rows_written"])).sum();
        assert_eq!(rows, number(&ran["rows_written"]), "{name}: {ran}");
        // GA4 asks for a span's reports of several streams in one batch, which counts for the
        // source only; its later pages would count for their report's stream.
        let labelled: u64 = streams.values().map(|s| number(&s["requests"])).sum();
        assert!(labelled <= sent, "{name}: {labelled} of {sent} requests by stream");
        assert!(labelled > 0 || name == "web_analytics", "{name}: no request counted by stream");
        for (stream, figures) in streams {
            if number(&figures["rows_written"]) == 0 {
                continue; // a quarantine-only stream
            }
            assert_eq!(number(&figures["days_pulled"]), 3, "{name}/{stream}");
            let cursors = figures["cursors"].as_object().expect("cursors");
            assert!(!cursors.is_empty() && cursors.values().all(|d| d == TO), "{name}/{stream}: {figures}");
            let ledger = number(&figures["ledger_final"]) + number(&figures["ledger_provisional"]);
            assert_eq!(ledger, 3, "{name}/{stream}: {figures}");
        }
    }

    let linkedin = source(&summary, "linkedin_ads");
    for stream in ["ad_analytics", "organization_followers", "organization_shares"] {
        assert!(number(&linkedin["streams"][stream]["rows_written"]) > 0, "{stream}: {linkedin}");
        assert!(number(&linkedin["streams"][stream]["requests"]) > 0, "{stream}: {linkedin}");
    }
    assert_eq!(linkedin["quota_left"], serde_json::json!({}), "LinkedIn reports no quota");
    assert!(text.contains("quota left: unknown"), "{text}");

    let facebook = source(&summary, "facebook_ads");
    let usage = &facebook["quota_left"]["101000000000001"]["used_percent"];
    assert!(usage.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)), "{facebook}");
    assert!(number(&facebook["streams"]["page_insights"]["rows_written"]) > 0, "{facebook}");

    let hubspot = source(&summary, "hubspot_crm");
    let portals = hubspot["quota_left"].as_object().expect("HubSpot's quota left");
    assert!(
        portals.values().any(|q| q["window_requests"].as_u64().is_some()),
        "the burst window's remainder: {hubspot}"
    );
    for stream in ["contacts", "deals", "forms", "emails", "feedback"] {
        assert!(number(&hubspot["streams"][stream]["requests"]) > 0, "{stream}: {hubspot}");
    }

    let ga4 = source(&summary, "web_analytics");
    for property in ["123456789", "987654321"] {
        let left = &ga4["quota_left"][property];
        assert!(left["daily_tokens"].as_u64().is_some_and(|t| t < 200_000), "{property}: {ga4}");
        assert!(left["hourly_tokens"].as_u64().is_some(), "{property}: {ga4}");
    }
    assert!(text.contains("tokens left today"), "{text}");

    // The plan after the run: the ledger's days per account, and the cursors.
    let out = kpipe(dir.path(), args(&["plan", "-c", &config, "--from", FROM, "--to", TO, "--json"])).await;
    assert!(out.status.success(), "{}", common::text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");
    let facebook = source(&plan, "facebook_ads");
    // Pulled more than 28 days after them, the three days are final for every account.
    assert_eq!(facebook["accounts"]["101000000000001"]["final_days"], 3, "{facebook}");
    assert_eq!(facebook["cursors"]["ads_insights"]["101000000000002"], TO, "{facebook}");
    assert_eq!(facebook["skipped"], "every day is final");
    let hubspot = source(&plan, "hubspot_crm");
    let accounts = hubspot["accounts"].as_object().expect("accounts");
    assert!(accounts.values().all(|a| a["provisional_days"] == 3), "HubSpot restates any day: {hubspot}");
    let out = kpipe(dir.path(), args(&["plan", "-c", &config, "--from", FROM, "--to", TO])).await;
    let table = common::text(&out);
    assert!(table.contains("days with rows per account") && table.contains("written through"), "{table}");
    apis.shutdown().await;
}

/// A private app's token: HubSpot tells it the portal's daily remainder too.
const PRIVATE_APP_TOKEN: &str = "pat-na1-00000000-0000-4000-8000-000000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubspot_private_app_sees_its_daily_requests_left() {
    let api = HubSpotApi { private_app_tokens: vec![PRIVATE_APP_TOKEN.to_owned()], ..HubSpotApi::default() };
    let auth = AuthConfig { static_tokens: vec![PRIVATE_APP_TOKEN.to_owned()], ..hubspot::auth_config() };
    let sim = SimServer::start(SimConfig::new(11).with_auth(auth).with_platform(Arc::new(api)))
        .await
        .expect("the simulator starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = common::write(
        dir.path(),
        "kpipe.toml",
        &format!(
            "[pipeline]\noutput = \"out\"\n\n[sources.crm]\ntype = \"hubspot\"\naccess_token = \"{PRIVATE_APP_TOKEN}\"\n\
             base_url = \"{}\"\nstreams = [\"deals\", \"forms\"]\nportal_tier = \"professional\"\n",
            sim.base_url()
        ),
    );
    let config = config.display().to_string();
    let out = kpipe(dir.path(), args(&["plan", "-c", &config, "--from", FROM, "--to", TO, "--json"])).await;
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");
    let quota = &source(&plan, "crm")["estimate"]["daily_quota"];
    assert_eq!(
        (quota["limit"].as_u64(), quota["unit"].as_str()),
        (Some(625_000), Some("requests")),
        "{quota}"
    );

    let summary_path = dir.path().join("summary.json");
    let summary_arg = summary_path.display().to_string();
    let out = kpipe(
        dir.path(),
        args(&["run", "-c", &config, "--from", FROM, "--to", TO, "--summary-json", &summary_arg]),
    )
    .await;
    assert!(out.status.success(), "{}", common::text(&out));
    let summary = json_file(&summary_path);
    let crm = source(&summary, "crm");
    let sent = number(&crm["http"]["requests"]);
    let left = crm["quota_left"].as_object().and_then(|m| m.values().next()).expect("a portal's quota");
    assert_eq!(left["daily_requests_limit"], 625_000, "{crm}");
    // The simulator counts every request of the day, these included: what is left is at most
    // the allowance less the requests sent before the last answer.
    let daily = number(&left["daily_requests"]);
    assert!(daily < 625_000 && daily >= 625_000 - sent, "{daily} left after {sent} requests: {crm}");
    assert!(common::text(&out).contains("of 625000 requests left today"), "{}", common::text(&out));
    sim.shutdown().await;
}
