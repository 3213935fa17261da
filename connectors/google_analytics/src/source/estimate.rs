//! What a pull would cost, from the configuration alone: the same queue as the pull (each span
//! of days, for each property, one `batchRunReports` per five reports; then, for each property,
//! the period reports of the weeks and months the window touches, four periods to a report and
//! five reports to a `batchRunReports`), counted instead of sent. A report larger than a page
//! (`page_size` rows) takes one `runReport` more per page, which only its `rowCount` tells. The
//! property quota is counted in tokens, which Google charges per request by its size: most cost
//! under ten.

use kpipe_core::{DateWindow, QuotaCost, RequestEstimate};

use super::pull::period_batches;
use super::{GoogleAnalyticsSource, MAX_BATCH};

/// Tokens per property per day of a standard property (Analytics 360: 2,000,000).
const STANDARD_DAILY_TOKENS: u64 = 200_000;

impl GoogleAnalyticsSource {
    /// The requests of pulling `windows`, one pull each.
    pub(super) fn estimate(&self, windows: &[DateWindow]) -> RequestEstimate {
        let batches = self.specs.len().div_ceil(MAX_BATCH) as u64;
        let properties = self.properties.len() as u64;
        let mut per_property = 0u64;
        for window in windows {
            per_property += window.slices(u64::from(self.days_per_request)).len() as u64 * batches;
            per_property += period_batches(*window, self.period_specs.len()) as u64;
        }
        let mut estimate = RequestEstimate::exactly(0);
        estimate.add(per_property * properties, None);
        let mut estimate = estimate
            .note(format!(
                "a report of more than {} rows for a span takes one request more per page",
                self.page_size
            ))
            .note(format!(
                "tokens: at least one per request against the {STANDARD_DAILY_TOKENS} of a standard property; \
                 most requests cost under 10, more with rows and days"
            ));
        estimate.pace = Some(self.rate_limit.pace());
        estimate.daily_quota = Some(QuotaCost {
            limit: STANDARD_DAILY_TOKENS,
            unit: "tokens",
            per: "property",
            min: per_property,
            max: None,
        });
        estimate
    }
}

#[cfg(test)]
mod tests {
    use kpipe_core::{BuildContext, NaiveDate, Source};

    use super::super::GoogleAnalyticsSource;

    #[test]
    fn one_batch_per_span_and_property_for_up_to_five_reports() {
        let config = toml::from_str(
            r#"property_ids = ["1", "2"]
               client_id = "c"
               client_secret = "s"
               refresh_token = "r"
               days_per_request = 10
               [[reports]]
               name = "landing_pages"
               dimensions = ["landingPage"]
               metrics = ["sessions"]
               [[reports]]
               name = "devices"
               dimensions = ["deviceCategory"]
               metrics = ["sessions"]
               [[reports]]
               name = "countries"
               dimensions = ["country"]
               metrics = ["sessions"]"#,
        )
        .unwrap();
        let cx = BuildContext { source_name: "web".into(), config_dir: std::env::temp_dir() };
        let source = GoogleAnalyticsSource::build(config, &cx).unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let window = kpipe_core::DateWindow::new(d("2026-10-01"), d("2026-10-25")).unwrap();
        let e = source.estimate(&[window]);
        // 3 spans of 10 days, 2 properties, 6 reports in 2 batches; and the periods: the window
        // touches 4 weeks (2026-09-28 to 2026-10-25) and 1 month, two groups of ranges, each
        // asked by the 4 built-in period reports (no custom report has a unique metric): 8
        // reports in 2 batches per property.
        assert_eq!((e.min_requests, e.max_requests), (3 * 2 * 2 + 2 * 2, None));
        assert_eq!(e.daily_quota.map(|q| q.min), Some(6 + 2));
    }

    #[test]
    fn custom_reports_with_unique_metrics_add_period_reports() {
        let config = toml::from_str(
            r#"property_ids = ["1"]
               client_id = "c"
               client_secret = "s"
               refresh_token = "r"
               [[reports]]
               name = "devices"
               dimensions = ["deviceCategory"]
               metrics = ["sessions", "totalUsers"]"#,
        )
        .unwrap();
        let cx = BuildContext { source_name: "web".into(), config_dir: std::env::temp_dir() };
        let source = GoogleAnalyticsSource::build(config, &cx).unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 2026-10-28 to 2026-11-03: 2 weeks and 2 months, one group; 5 period reports, one batch.
        let window = kpipe_core::DateWindow::new(d("2026-10-28"), d("2026-11-03")).unwrap();
        assert_eq!(source.estimate(&[window]).min_requests, 1 + 1);
        // A year: 53 weeks and 12 months, 17 groups of 5 reports, 17 batches; 12 spans of days.
        let year = kpipe_core::DateWindow::new(d("2026-01-01"), d("2026-12-31")).unwrap();
        assert_eq!(source.estimate(&[year]).min_requests, 12 + 17);
    }
}
