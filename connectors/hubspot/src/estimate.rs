//! What a pull would cost, from the configuration alone: the same walk as the pull (the
//! portal, the deal pipelines, the forms, then each slice of days by stream), counted instead of
//! sent. HubSpot returns records, not daily figures, so how many pages a search or a listing
//! takes depends on how many records the days hold: most of the estimate is a lower bound.

use kpipe_core::{DateWindow, QuotaCost, RequestEstimate};

use crate::source::{HubSpotSource, SLICE_DAYS};

impl HubSpotSource {
    /// The requests of pulling `windows`, one pull each.
    pub(crate) fn estimate(&self, windows: &[DateWindow]) -> RequestEstimate {
        let streams = self.streams;
        let searches = u64::from(streams.contacts) + u64::from(streams.deals) + u64::from(streams.feedback);
        let mut estimate = RequestEstimate::exactly(0);
        for window in windows {
            let slices = window.slices(SLICE_DAYS).len() as u64;
            // The portal's details; the deal pipelines.
            estimate.add(1 + u64::from(streams.deals), Some(1 + u64::from(streams.deals)));
            // Each search pages through the slice's records, 200 a page at most.
            estimate.add(slices * searches, (searches == 0).then_some(0));
            if streams.forms {
                // The forms, then each form's submissions, newest first, 50 a page.
                estimate.add(1, None);
            }
            if streams.emails {
                // Each slice's list of emails with statistics, then each one's histogram; the
                // emails' names once.
                estimate.add(slices, None);
            }
        }
        let mut estimate = estimate.note(
            "searches take a page per 200 records of the slice, form submissions a page per 50, and \
             each email with statistics one request more",
        );
        estimate.pace = Some(self.limits.burst.pace());
        if searches > 0 {
            estimate = estimate.note(format!(
                "CRM search is limited to {} request(s) per {:.0}s on top",
                self.limits.search.requests,
                self.limits.search.per.as_secs_f64()
            ));
        }
        estimate.daily_quota = self.limits.daily.map(|limit| QuotaCost {
            limit,
            unit: "requests",
            per: "portal",
            min: estimate.min_requests,
            max: estimate.max_requests,
        });
        if estimate.daily_quota.is_none() {
            estimate = estimate.note("no daily limit known: OAuth apps have none, a private app's comes from portal_tier or daily_limit");
        }
        estimate
    }
}

#[cfg(test)]
mod tests {
    use kpipe_core::{BuildContext, NaiveDate, Source};

    use crate::HubSpotSource;

    fn source(extra: &str) -> HubSpotSource {
        let config = toml::from_str(&format!("access_token = \"pat-x\"\n{extra}")).unwrap();
        let cx = BuildContext { source_name: "crm".into(), config_dir: std::env::temp_dir() };
        HubSpotSource::build(config, &cx).unwrap()
    }

    #[test]
    fn searches_run_per_slice_and_the_daily_limit_is_the_tiers() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 62 days: two slices of 31.
        let window = kpipe_core::DateWindow::new(d("2026-09-01"), d("2026-11-01")).unwrap();
        let s = source("streams = [\"contacts\", \"deals\"]\nportal_tier = \"professional\"");
        let e = s.estimate(&[window]);
        // Details and pipelines, then two searches in each of the two slices.
        assert_eq!(e.min_requests, 2 + 2 * 2);
        let quota = e.daily_quota.as_ref().unwrap();
        assert_eq!((quota.limit, quota.min), (625_000, 6));
        let e = source("streams = [\"deals\"]\ndaily_limit = 100").estimate(&[window]);
        assert_eq!(e.daily_quota.map(|q| q.limit), Some(100));
        let no_tier = source("streams = [\"forms\"]").estimate(&[window]);
        assert_eq!((no_tier.min_requests, no_tier.max_requests), (2, None));
        assert!(no_tier.daily_quota.is_none());
    }
}
