//! `kpipe run` killed with SIGKILL at several points of a pull from the simulated platform APIs
//! (LinkedIn, Facebook, HubSpot, Google Analytics, as `kpipe demo` serves them), then run again:
//! the output is exactly the dataset of an uninterrupted run, with no duplicate and no missing
//! day, and no staged file left behind.

use std::path::Path;
use std::time::Duration;

use kpipe_cli::demo;
use kpipe_cli::demo_apis::DemoApis;
use kpipe_sink_parquet::Storage;

use crate::support::{Row, kill_after, run, text};

fn dataset(output: &Path) -> Vec<Row> {
    crate::support::dataset(&Storage::local(output))
}

async fn run_to_the_end(config: &Path) {
    let config = config.to_path_buf();
    let out = tokio::task::spawn_blocking(move || run(&[], &config)).await.expect("joined");
    assert_eq!(out.status.code(), Some(0), "the run after the kills failed: {}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_rerun_to_exactly_the_uninterrupted_dataset() {
    let apis = DemoApis::start().await.expect("the simulators start");
    let sources = apis.sources_toml();

    let reference = tempfile::tempdir().expect("a temp dir");
    let reference_config = demo::prepare_with(reference.path(), &sources).expect("a config");
    run_to_the_end(&reference_config).await;
    let expected = dataset(reference.path());
    assert!(expected.len() > 5_000, "{} rows", expected.len());
    for platform in ["linkedin_ads", "facebook_ads", "hubspot_crm", "web_analytics", "marketing_sheet"] {
        assert!(expected.iter().any(|r| r.0 == platform), "no rows of {platform}");
    }

    let killed = tempfile::tempdir().expect("a temp dir");
    let config = demo::prepare_with(killed.path(), &sources).expect("a config");
    let mut interrupted = 0;
    for delay_ms in [100, 400, 900, 1_600] {
        let local = Storage::local(killed.path());
        if kill_after(&[], &config, Duration::from_millis(delay_ms), &local, &expected).await {
            interrupted += 1;
        }
    }
    assert!(interrupted > 0, "every kill came after the run had finished: nothing was tested");
    run_to_the_end(&config).await;
    assert_eq!(dataset(killed.path()), expected);
    // Staging leftovers of the killed runs are cleaned by the next run of the same source.
    let staged = kpipe_sink_parquet::read::parquet_files(&killed.path().join("metrics")).expect("listable");
    assert!(staged.iter().all(|p| !p.to_string_lossy().contains("staging")));
    let staging = killed.path().join(".kpipe/staging");
    let left: Vec<_> = kpipe_sink_parquet::read::parquet_files(&staging).expect("listable");
    assert!(left.is_empty(), "staged files left: {left:?}");
    apis.shutdown().await;
}
