//! The conformance suite against the simulated LinkedIn Marketing API
//! (`kpipe_sim::platform::linkedin`), whose responses follow `shared/apis/linkedin.md`: ad
//! analytics elements with `pivotValues`/`dateRange` and money as decimal strings (§3.1),
//! cursor-paged campaigns and creatives (§4), day buckets of organization statistics (§3.4,
//! §3.5), the `{"status","code","message"}` envelope, and the daily limit's 429 `APPLICATION
//! DAY` without `Retry-After` (§6). Faults are injected on `/rest/adAnalytics`; the suite's
//! "page size" is both the listing page size and the days per analytics request (LinkedIn
//! does not page analytics: a request's date range is its page).

mod common;

use chrono::Datelike;
use kpipe_core::{ConnectorFactory, DateWindow};
use kpipe_sim::platform::linkedin::{self, LinkedInApi};
use kpipe_sim::{Fault, QuotaRule, SimConfig, SimServer};
use kpipe_testkit::{Auth, Harness, Setup, Totals};
use serde_json::json;

use common::{days_ago, window};

struct LinkedInHarness;

fn api() -> LinkedInApi {
    LinkedInApi::default()
}

impl Harness for LinkedInHarness {
    fn factory(&self) -> ConnectorFactory {
        kpipe_connector_linkedin::factory()
    }

    fn sim_config(&self, seed: u64) -> SimConfig {
        common::sim_config(seed, api())
    }

    fn source_config(&self, sim: &SimServer, setup: Setup) -> toml::Table {
        let extra = match setup.page_size {
            Some(size) => format!("page_size = {size}\ndays_per_request = {size}"),
            None => String::new(),
        };
        let mut table = common::source_table(sim, &api(), &extra);
        // The suite sets its own retry table.
        table.remove("retry");
        table
    }

    fn auth(&self) -> Auth {
        Auth::Refreshable
    }

    fn window(&self) -> DateWindow {
        // Recent days: organization statistics reach back 12 months from today.
        DateWindow::new(days_ago(10), days_ago(8)).expect("a window")
    }

    fn empty_window(&self) -> DateWindow {
        window("2019-06-01", "2019-06-07")
    }

    fn expected(&self, seed: u64, window: DateWindow) -> Totals {
        common::expected(&api(), seed, window)
    }

    fn data_path(&self) -> &str {
        "/rest/adAnalytics"
    }

    fn throttled(&self, seconds: u64) -> Fault {
        Fault::Respond(linkedin::throttled(Some(seconds)))
    }

    fn daily_cap(&self, limit: u64) -> Option<QuotaRule> {
        Some(linkedin::daily_quota(limit))
    }

    fn malformed_elements(&self, _sim: &SimServer) -> Option<Fault> {
        // The first analytics request is account 508000001 by campaign (§3.1 shapes).
        let day = self.window().start();
        let range = json!({"start": {"year": day.year(), "month": day.month(), "day": day.day()}});
        Some(Fault::respond(
            200,
            json!({"paging": {"start": 0, "count": 10, "links": []}, "elements": [
                {"pivotValues": ["urn:li:sponsoredCampaign:508000001001"], "dateRange": range,
                 "impressions": 120, "clicks": 3, "costInLocalCurrency": "1.5"},
                {"pivotValues": ["urn:li:sponsoredCampaign:508000001002"], "dateRange": range,
                 "impressions": "n/a", "clicks": 3, "costInLocalCurrency": "1.5"}
            ]}),
        ))
    }

    fn secrets(&self, _sim: &SimServer) -> Vec<String> {
        vec!["sim-secret".into(), "sim-refresh-token".into()]
    }
}

kpipe_testkit::conformance_suite!(LinkedInHarness);
