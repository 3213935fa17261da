//! The simulated properties' event data: one fact per property, day and cell (channel and
//! source / medium, device, country, new or returning), seeded, and the catalogue of the
//! dimensions and metrics the simulator can report on.

use chrono::NaiveDate;

use crate::rng::{SimRng, hash_label};

/// A GA4 property the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimProperty {
    /// The numeric property id (`properties/{id}`).
    pub id: String,
    /// The property's currency (`metadata.currencyCode` of its reports).
    pub currency: String,
    /// Its reporting time zone (`metadata.timeZone`), in which report dates are.
    pub time_zone: String,
    /// How busy it is: sessions per cell and day are drawn below `40 * traffic`.
    pub traffic: u64,
}

impl SimProperty {
    /// A property with this id, currency, time zone and traffic.
    #[must_use]
    pub fn new(id: &str, currency: &str, time_zone: &str, traffic: u64) -> Self {
        Self { id: id.to_owned(), currency: currency.to_owned(), time_zone: time_zone.to_owned(), traffic }
    }
}

/// The traffic sources: default channel group, session source, session medium.
pub const CHANNELS: [(&str, &str, &str); 9] = [
    ("Organic Search", "google", "organic"),
    ("Organic Search", "bing", "organic"),
    ("Direct", "(direct)", "(none)"),
    ("Paid Search", "google", "cpc"),
    ("Paid Social", "linkedin", "paid_social"),
    ("Organic Social", "linkedin.com", "referral"),
    ("Email", "hubspot", "email"),
    ("Referral", "partner.example.com", "referral"),
    ("Unassigned", "(not set)", "(not set)"),
];

/// `deviceCategory` values.
pub const DEVICES: [&str; 3] = ["desktop", "mobile", "tablet"];

/// `country` and `countryId` values.
pub const COUNTRIES: [(&str, &str); 3] = [("United States", "US"), ("Germany", "DE"), ("France", "FR")];

/// The dimensions the simulator can break reports down by.
pub const DIMENSIONS: [&str; 9] = [
    "date",
    "sessionDefaultChannelGroup",
    "sessionSource",
    "sessionMedium",
    "sessionSourceMedium",
    "deviceCategory",
    "country",
    "countryId",
    "newVsReturning",
];

/// A metric's `metricHeaders[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `TYPE_INTEGER`.
    Integer,
    /// `TYPE_FLOAT`.
    Float,
    /// `TYPE_SECONDS`.
    Seconds,
    /// `TYPE_CURRENCY`: major units of the report's currency.
    Currency,
}

impl MetricType {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Integer => "TYPE_INTEGER",
            Self::Float => "TYPE_FLOAT",
            Self::Seconds => "TYPE_SECONDS",
            Self::Currency => "TYPE_CURRENCY",
        }
    }
}

/// The metrics the simulator can report, with their types. `keyEvents` is sent as
/// `TYPE_FLOAT`, which public fixtures show next to `TYPE_INTEGER` (the notes leave it open).
pub const METRICS: [(&str, MetricType); 14] = [
    ("sessions", MetricType::Integer),
    ("engagedSessions", MetricType::Integer),
    ("userEngagementDuration", MetricType::Seconds),
    ("screenPageViews", MetricType::Integer),
    ("keyEvents", MetricType::Float),
    ("eventCount", MetricType::Integer),
    ("purchaseRevenue", MetricType::Currency),
    ("newUsers", MetricType::Integer),
    ("totalUsers", MetricType::Integer),
    ("activeUsers", MetricType::Integer),
    ("engagementRate", MetricType::Float),
    ("bounceRate", MetricType::Float),
    ("averageSessionDuration", MetricType::Seconds),
    ("screenPageViewsPerSession", MetricType::Float),
];

/// The type of metric `name`, if the simulator knows it.
#[must_use]
pub fn metric_type(name: &str) -> Option<MetricType> {
    METRICS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// One cell of a property on one day: a traffic source, device and country, and whether the
/// users are new or returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fact {
    pub(crate) date: NaiveDate,
    pub(crate) channel: usize,
    pub(crate) device: usize,
    pub(crate) country: usize,
    pub(crate) returning: bool,
    pub(crate) sessions: u64,
    pub(crate) engaged_sessions: u64,
    pub(crate) engagement_seconds: u64,
    pub(crate) page_views: u64,
    pub(crate) key_events: u64,
    pub(crate) event_count: u64,
    pub(crate) revenue_cents: u64,
    /// New users in a new cell, returning users in a returning one.
    pub(crate) users: u64,
}

impl Fact {
    /// The value of dimension `name` (one of [`DIMENSIONS`]).
    pub(crate) fn dimension(&self, name: &str) -> String {
        let (group, source, medium) = CHANNELS[self.channel];
        match name {
            "date" => self.date.format("%Y%m%d").to_string(),
            "sessionDefaultChannelGroup" => group.to_owned(),
            "sessionSource" => source.to_owned(),
            "sessionMedium" => medium.to_owned(),
            "sessionSourceMedium" => format!("{source} / {medium}"),
            "deviceCategory" => DEVICES[self.device].to_owned(),
            "country" => COUNTRIES[self.country].0.to_owned(),
            "countryId" => COUNTRIES[self.country].1.to_owned(),
            "newVsReturning" => if self.returning { "returning" } else { "new" }.to_owned(),
            _ => "(not set)".to_owned(),
        }
    }
}

/// Every non-empty cell of `property` on `day`, in a fixed order.
pub(crate) fn facts(seed: u64, property: &SimProperty, day: NaiveDate) -> Vec<Fact> {
    let mut out = Vec::new();
    let key = format!("{}/{day}", property.id);
    let mut index = 0u64;
    for channel in 0..CHANNELS.len() {
        for device in 0..DEVICES.len() {
            for country in 0..COUNTRIES.len() {
                for returning in [false, true] {
                    index += 1;
                    let mut rng = SimRng::derive(seed, "ga4-fact", hash_label(&key) ^ index);
                    // About a third of the cells are empty on a given day.
                    if rng.range(0, 3) == 0 {
                        continue;
                    }
                    out.push(fact(&mut rng, property.traffic, day, (channel, device, country, returning)));
                }
            }
        }
    }
    out
}

fn fact(rng: &mut SimRng, traffic: u64, date: NaiveDate, cell: (usize, usize, usize, bool)) -> Fact {
    let (channel, device, country, returning) = cell;
    let sessions = rng.range(1, 40 * traffic.max(1) + 1);
    let engaged_sessions = rng.range(0, sessions + 1);
    let engagement_seconds = engaged_sessions * rng.range(10, 240) + rng.range(0, sessions * 5 + 1);
    let page_views = sessions + rng.range(0, sessions * 3 + 1);
    let key_events = rng.range(0, engaged_sessions / 6 + 1);
    let event_count = page_views * 2 + rng.range(0, sessions * 4 + 1);
    let revenue_cents = (0..key_events).map(|_| rng.range(499, 25_000)).sum();
    let users = rng.range(1, sessions + 1);
    Fact {
        date,
        channel,
        device,
        country,
        returning,
        sessions,
        engaged_sessions,
        engagement_seconds,
        page_views,
        key_events,
        event_count,
        revenue_cents,
        users,
    }
}

/// Of a group's returning users on one day, the share (in thousandths) of those beyond its
/// largest cell who were not already counted in another of its cells: the same person comes back
/// through several channels, devices and countries.
pub const RETURNING_CELLS_KEPT_PERMILLE: u64 = 600;

/// Of a group's returning users over several days, the share (in thousandths) of those beyond its
/// busiest day who were not already counted on another day: people who return, return often.
pub const RETURNING_DAYS_KEPT_PERMILLE: u64 = 550;

/// Of a group's new users over several days, the share (in thousandths) of those beyond its
/// busiest day who were not already counted on another day: a person who first comes on a phone
/// and days later on a laptop is new on both days and, once the property's reporting identity
/// joins the devices, once over the span.
pub const NEW_DAYS_KEPT_PERMILLE: u64 = 970;

/// The distinct count of the union of parts whose own distinct counts have this `sum` and this
/// `max`, when `kept_permille` thousandths of the people beyond the largest part were not in it
/// or another part already. Never less than the largest part, never more than the sum, and
/// strictly less than the sum when two parts or more have people (`kept_permille < 1000`). It
/// grows with every part, so a group's count never exceeds the count of a group that holds it.
pub const fn union_count(sum: u64, max: u64, kept_permille: u64) -> u64 {
    let rest = sum.saturating_sub(max);
    max + rest * kept_permille / 1000
}

/// Sums of a group of facts on one day, and what the unique counts need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) sessions: u64,
    pub(crate) engaged_sessions: u64,
    pub(crate) engagement_seconds: u64,
    pub(crate) page_views: u64,
    pub(crate) key_events: u64,
    pub(crate) event_count: u64,
    pub(crate) revenue_cents: u64,
    pub(crate) new_users: u64,
    returning_sum: u64,
    returning_max: u64,
}

impl Totals {
    pub(crate) fn add(&mut self, f: &Fact) {
        self.sessions += f.sessions;
        self.engaged_sessions += f.engaged_sessions;
        self.engagement_seconds += f.engagement_seconds;
        self.page_views += f.page_views;
        self.key_events += f.key_events;
        self.event_count += f.event_count;
        self.revenue_cents += f.revenue_cents;
        if f.returning {
            self.returning_sum += f.users;
            self.returning_max = self.returning_max.max(f.users);
        } else {
            self.new_users += f.users;
        }
    }

    /// Returning users of the group on its day, each counted once: the largest cell's, and
    /// [`RETURNING_CELLS_KEPT_PERMILLE`] of the other cells'. Between the largest cell and the
    /// sum of the cells, and never more for a group than for a group that holds it.
    pub(crate) fn returning_users(&self) -> u64 {
        union_count(self.returning_sum, self.returning_max, RETURNING_CELLS_KEPT_PERMILLE)
    }
}

/// A running sum and maximum of one unique count over days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DaySeries {
    sum: u64,
    max: u64,
}

impl DaySeries {
    fn add(&mut self, value: u64) {
        self.sum += value;
        self.max = self.max.max(value);
    }

    fn union(&self, kept_permille: u64) -> u64 {
        union_count(self.sum, self.max, kept_permille)
    }
}

/// A group of facts over the days of a report's range: the additive metrics summed over the
/// days, the unique counts combined from each day's count (a report by `date` has one day per
/// group, whose counts are that day's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) sums: Totals,
    new_users: DaySeries,
    returning_users: DaySeries,
}

impl Span {
    /// Adds one day's totals of the group.
    pub(crate) fn add_day(&mut self, day: &Totals) {
        let s = &mut self.sums;
        s.sessions += day.sessions;
        s.engaged_sessions += day.engaged_sessions;
        s.engagement_seconds += day.engagement_seconds;
        s.page_views += day.page_views;
        s.key_events += day.key_events;
        s.event_count += day.event_count;
        s.revenue_cents += day.revenue_cents;
        self.new_users.add(day.new_users);
        self.returning_users.add(day.returning_users());
    }

    /// New users over the span ([`NEW_DAYS_KEPT_PERMILLE`] of those beyond the busiest day).
    pub(crate) fn new_users(&self) -> u64 {
        self.new_users.union(NEW_DAYS_KEPT_PERMILLE)
    }

    /// Returning users over the span ([`RETURNING_DAYS_KEPT_PERMILLE`] of those beyond the
    /// busiest day).
    pub(crate) fn returning_users(&self) -> u64 {
        self.returning_users.union(RETURNING_DAYS_KEPT_PERMILLE)
    }

    /// Users over the span, each counted once: the new ones and the returning ones.
    pub(crate) fn total_users(&self) -> u64 {
        self.new_users() + self.returning_users()
    }
}
