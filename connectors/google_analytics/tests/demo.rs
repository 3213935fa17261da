//! The `[sources.*]` table `kpipe demo` runs GA4 with, against the simulator's default
//! properties (`Ga4Api::default()`): refresh-token credentials the simulator accepts, and the
//! demo's four weeks. Shapes as in `shared/apis/ga4.md` §3–§7.

mod common;

use std::sync::Arc;

use kpipe_core::{BuildContext, DateWindow};
use kpipe_sim::platform::ga4::Ga4Api;
use kpipe_sim::{AuthConfig, SimConfig, SimServer};
use kpipe_testkit::pull;

use common::{day, expected};

/// The demo's source table, `{base_url}` and `{token_url}` standing for the simulator's.
const DEMO_SOURCE: &str = r#"
[sources.web_analytics]
type = "google_analytics"
property_ids = ["123456789", "987654321"]
client_id = "sim-client"
client_secret = "sim-secret"
refresh_token = "sim-refresh-token"
base_url = "{base_url}"
token_url = "{token_url}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_table_pulls_the_default_properties() {
    let api = Ga4Api::default();
    let sim = SimServer::start(
        SimConfig::new(2026).with_auth(AuthConfig::required()).with_platform(Arc::new(api.clone())),
    )
    .await
    .expect("the simulator");
    let text = DEMO_SOURCE.replace("{base_url}", sim.base_url()).replace("{token_url}", sim.token_url());
    let mut doc: toml::Table = toml::from_str(&text).expect("TOML");
    let Some(toml::Value::Table(mut sources)) = doc.remove("sources") else { panic!("no sources") };
    let Some(toml::Value::Table(mut table)) = sources.remove("web_analytics") else { panic!("no source") };
    assert_eq!(
        table.remove("type").and_then(|t| t.as_str().map(str::to_owned)).as_deref(),
        Some("google_analytics")
    );
    let cx = BuildContext { source_name: "web_analytics".into(), config_dir: std::env::temp_dir() };
    let source = match kpipe_connector_google_analytics::factory().build(table, &cx) {
        Ok(s) => s,
        Err(e) => panic!("the demo table does not build: {e}"),
    };
    let window = DateWindow::new(day("2026-10-01"), day("2026-10-28")).expect("a window");
    let pulled = pull(source.as_ref(), window).await;
    pulled.expect_ok("demo");
    pulled.totals().assert_eq(&expected(&api, 2026, window, &["123456789", "987654321"]), "demo");
    // One batch of the day reports per property; and the periods the four weeks touch (5 weeks
    // and October, two groups of date ranges, 4 period reports each: 8 reports in 2 batches)
    // per property.
    assert_eq!(pulled.telemetry.as_ref().map(|t| t.requests), Some(2 + 2 * 2));
    eprintln!("{} day rows, {} period rows", pulled.rows.len(), pulled.period_rows.len());
    assert_eq!(
        pulled.period_rows.iter().map(|r| r.request.period).collect::<std::collections::BTreeSet<_>>().len(),
        6
    );
}
