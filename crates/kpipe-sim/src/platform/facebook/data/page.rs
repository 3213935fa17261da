//! Facebook Pages and their daily insights: the metrics the simulator serves and their values.

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::FIRST_DAY;
use super::range::{between, largest_and_sum};
use crate::rng::{SimRng, hash_label};

/// A Facebook Page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPage {
    /// The numeric Page id.
    pub id: String,
    /// The Page name.
    pub name: String,
}

impl SimPage {
    /// A Page.
    #[must_use]
    pub fn new(id: &str, name: &str) -> Self {
        Self { id: id.to_owned(), name: name.to_owned() }
    }
}

/// A Page insights metric the simulator serves: its name and the `title` and `description`
/// the API sends along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageMetricDef {
    /// The metric name (`page_media_view`).
    pub name: &'static str,
    /// The `title` field.
    pub title: &'static str,
    /// The `description` field.
    pub description: &'static str,
}

/// The Page metrics the simulator knows (current and retired ones; which are retired is
/// configured).
pub const PAGE_METRICS: [PageMetricDef; 10] = [
    PageMetricDef {
        name: "page_media_view",
        title: "Daily Media Views",
        description: "Daily: The number of times your Page's content was played or displayed.",
    },
    PageMetricDef {
        name: "page_total_media_view_unique",
        title: "Daily Unique Media Viewers",
        description: "Daily: The number of people who saw your Page's content at least once.",
    },
    PageMetricDef {
        name: "page_impressions",
        title: "Daily Total Impressions",
        description: "Daily: The number of times any content from your Page or about your Page entered a \
                      person's screen.",
    },
    PageMetricDef {
        name: "page_post_engagements",
        title: "Daily Post Engagements",
        description: "Daily: The number of times people have engaged with your posts through reactions, \
                      comments, shares and more.",
    },
    PageMetricDef {
        name: "page_daily_follows",
        title: "Daily New Follows",
        description: "Daily: The number of times your Page was followed.",
    },
    PageMetricDef {
        name: "page_daily_follows_unique",
        title: "Daily New Followers",
        description: "Daily: The number of new people who followed your Page.",
    },
    PageMetricDef {
        name: "page_daily_unfollows_unique",
        title: "Daily Unfollows",
        description: "Daily: The number of people who unfollowed your Page.",
    },
    PageMetricDef {
        name: "page_follows",
        title: "Followers",
        description: "Lifetime: The total number of people who follow your Page.",
    },
    PageMetricDef {
        name: "page_views_total",
        title: "Daily Total views count per Page",
        description: "Daily: The number of times a Page's profile has been viewed by logged in and logged \
                      out people.",
    },
    PageMetricDef {
        name: "page_actions_post_reactions_total",
        title: "Daily total post reactions of a page.",
        description: "Daily: Total post reactions by type.",
    },
];

/// A Page insight value: a number, or an object of counts by type (reactions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageValue {
    /// A plain count.
    Count(u64),
    /// Counts by key, non-zero keys only (`{}` when empty).
    Breakdown(Vec<(String, u64)>),
}

#[derive(Debug, Clone, Copy)]
struct PageDayFigures {
    views: u64,
    viewers: u64,
    engagements: u64,
    follows: u64,
    followers_new: u64,
    unfollows: u64,
    profile_views: u64,
    reactions: [u64; 4],
}

fn page_day(seed: u64, page: &str, day: NaiveDate) -> PageDayFigures {
    let mut rng = SimRng::derive(seed, "facebook-page-day", hash_label(&format!("{page}/{day}")));
    let views = rng.range(200, 20_000);
    let viewers = views * rng.range(40, 90) / 100;
    let engagements = rng.range(10, 800);
    let follows = rng.range(0, 30);
    let followers_new = follows * rng.range(80, 101) / 100;
    let unfollows = rng.range(0, 6);
    let profile_views = rng.range(50, 2_000);
    let reactions = [rng.range(0, 120), rng.range(0, 30), rng.range(0, 8), rng.range(0, 3)];
    PageDayFigures {
        views,
        viewers,
        engagements,
        follows,
        followers_new,
        unfollows,
        profile_views,
        reactions,
    }
}

/// Followers at the end of `day`: a base plus every day's new followers minus unfollows.
fn followers(seed: u64, page: &str, day: NaiveDate) -> u64 {
    let mut total: u64 = 5_000;
    let mut d = FIRST_DAY;
    while d <= day {
        let f = page_day(seed, page, d);
        total = (total + f.followers_new).saturating_sub(f.unfollows);
        match d.checked_add_days(Days::new(1)) {
            Some(next) => d = next,
            None => break,
        }
    }
    total
}

/// The value of `metric` for `page` on `day` (Pacific time), or `None` before the Page had
/// data or for a metric the simulator does not know.
#[must_use]
pub fn page_metric(seed: u64, page: &str, metric: &str, day: NaiveDate) -> Option<PageValue> {
    if day < FIRST_DAY {
        return None;
    }
    let f = page_day(seed, page, day);
    let count = match metric {
        "page_media_view" => f.views,
        "page_total_media_view_unique" => f.viewers,
        // The retired metric kept its old meaning: a little more than the media views.
        "page_impressions" => f.views + f.views / 10,
        "page_post_engagements" => f.engagements,
        "page_daily_follows" => f.follows,
        "page_daily_follows_unique" => f.followers_new,
        "page_daily_unfollows_unique" => f.unfollows,
        "page_follows" => followers(seed, page, day),
        "page_views_total" => f.profile_views,
        "page_actions_post_reactions_total" => {
            let keys = ["like", "love", "wow", "haha"];
            return Some(PageValue::Breakdown(
                keys.iter()
                    .zip(f.reactions)
                    .filter(|(_, n)| *n > 0)
                    .map(|(k, n)| ((*k).to_owned(), n))
                    .collect(),
            ));
        }
        _ => return None,
    };
    Some(PageValue::Count(count))
}

/// The Page metrics whose `period=week` value the simulator serves: unique people, not the sum
/// of the week's days.
pub const PAGE_WEEK_METRICS: [&str; 1] = ["page_total_media_view_unique"];

/// The `period=week` value of `metric` (one of [`PAGE_WEEK_METRICS`]) for `page` closing on
/// `last_day`: the people over the seven days ending that day (a rolling week, as the Graph API
/// gives one every day), between the largest of those days and their sum, below the sum when two
/// days or more had data. `None` before the Page had data.
#[must_use]
pub fn page_week_metric(seed: u64, page: &str, metric: &str, last_day: NaiveDate) -> Option<u64> {
    if !PAGE_WEEK_METRICS.contains(&metric) {
        return None;
    }
    let first_day = last_day.checked_sub_days(Days::new(6))?;
    let mut daily = Vec::with_capacity(7);
    let mut day = first_day;
    while day <= last_day {
        if let Some(PageValue::Count(n)) = page_metric(seed, page, metric, day) {
            daily.push(n);
        }
        day = day.checked_add_days(Days::new(1))?;
    }
    if daily.is_empty() {
        return None;
    }
    let (largest, sum) = largest_and_sum(daily);
    Some(between(seed, &format!("{page}/{metric}"), first_day, last_day, largest, sum))
}

/// Whether Pacific time is on daylight saving time at midnight starting `day`: from the second
/// Sunday of March (the switch is at 2 am, so that day still starts on standard time) to the
/// first Sunday of November (which starts on daylight time).
#[must_use]
pub fn pacific_dst_at_midnight(day: NaiveDate) -> bool {
    let nth_sunday = |month: u32, n: u32| {
        NaiveDate::from_weekday_of_month_opt(day.year(), month, Weekday::Sun, u8::try_from(n).unwrap_or(1))
    };
    match (nth_sunday(3, 2), nth_sunday(11, 1)) {
        (Some(start), Some(end)) => day > start && day <= end,
        _ => false,
    }
}

/// The `end_time` of the daily value of `day`: midnight Pacific ending that day, in UTC,
/// written like the Graph API (`2026-03-09T07:00:00+0000`).
#[must_use]
pub fn page_end_time(day: NaiveDate) -> String {
    let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
    let hour = if pacific_dst_at_midnight(next) { 7 } else { 8 };
    format!("{next}T{hour:02}:00:00+0000")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::facebook::data::fixtures::day;

    #[test]
    fn a_pages_weekly_unique_value_is_below_the_sum_of_its_days() {
        let sunday = day("2026-03-08");
        let week = page_week_metric(3, "200", "page_total_media_view_unique", sunday).unwrap();
        let daily: Vec<u64> = (0..7)
            .filter_map(|back| {
                match page_metric(
                    3,
                    "200",
                    "page_total_media_view_unique",
                    sunday - chrono::TimeDelta::days(back),
                ) {
                    Some(PageValue::Count(n)) => Some(n),
                    _ => None,
                }
            })
            .collect();
        let (largest, sum) = largest_and_sum(daily);
        assert!(week >= largest && week < sum, "{week} not in {largest}..{sum}");
        assert_eq!(page_week_metric(3, "200", "page_media_view", sunday), None);
        assert_eq!(page_week_metric(3, "200", "page_total_media_view_unique", day("2024-12-31")), None);
    }

    #[test]
    fn followers_move_with_gains_and_losses() {
        let d = day("2026-03-08");
        let before = followers(3, "200", d.pred_opt().unwrap());
        let f = page_day(3, "200", d);
        assert_eq!(followers(3, "200", d), before + f.followers_new - f.unfollows);
        assert_eq!(page_metric(3, "200", "page_follows", day("2024-12-31")), None);
    }

    /// shared/apis/facebook.md §4: `end_time` closes the day in Pacific time.
    #[test]
    fn end_times_follow_pacific_daylight_saving() {
        // 2026: daylight time from March 8 to November 1.
        assert_eq!(page_end_time(day("2026-03-07")), "2026-03-08T08:00:00+0000");
        assert_eq!(page_end_time(day("2026-03-08")), "2026-03-09T07:00:00+0000");
        assert_eq!(page_end_time(day("2026-10-31")), "2026-11-01T07:00:00+0000");
        assert_eq!(page_end_time(day("2026-11-01")), "2026-11-02T08:00:00+0000");
        assert_eq!(page_end_time(day("2024-06-26")), "2024-06-27T07:00:00+0000");
    }
}
