//! The canonical metric vocabulary: one table that connectors, the KPI stage and the docs read.

use std::fmt;

/// How values of a metric combine across days and entities (docs/kpis.md, rule 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Additivity {
    /// Values add up across days and entities (impressions, clicks, spend).
    Sum,
    /// Counts unique people: a period's value must come from the API at that period, never a sum.
    Unique,
    /// A level at a point in time (followers): a period takes its last value.
    Snapshot,
}

/// The unit of a metric value; the `unit` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A number of things or events.
    Count,
    /// Money; the row carries an ISO 4217 `currency`.
    Currency,
    /// A duration in seconds.
    Seconds,
    /// A fraction (0.25 = 25%).
    Ratio,
    /// A score on a scale the metric documents.
    Score,
}

impl Unit {
    /// Every unit.
    pub const ALL: [Unit; 5] = [Unit::Count, Unit::Currency, Unit::Seconds, Unit::Ratio, Unit::Score];

    /// The name written to the `unit` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Currency => "currency",
            Unit::Seconds => "seconds",
            Unit::Ratio => "ratio",
            Unit::Score => "score",
        }
    }

    /// The unit named `name`, if any.
    pub fn from_name(name: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == name)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// The canonical name, as written to the `metric` column.
    pub name: &'static str,
    /// The unit of its values.
    pub unit: Unit,
    /// How its values combine.
    pub additivity: Additivity,
    /// What it counts, for people.
    pub description: &'static str,
}

macro_rules! vocabulary {
    ($($variant:ident => $name:literal, $unit:ident, $add:ident, $desc:literal;)*) => {
        /// A canonical metric. The order is the order of [`Metric::ALL`] and of the docs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Metric {
            $(#[doc = $desc] $variant,)*
        }

        /// The vocabulary, in [`Metric`] order.
        pub const METRICS: &[MetricDef] = &[
            $(MetricDef { name: $name, unit: Unit::$unit, additivity: Additivity::$add, description: $desc },)*
        ];

        impl Metric {
            /// Every canonical metric.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];
        }
    };
}

vocabulary! {
    Impressions => "impressions", Count, Sum, "Times an ad, post or page was shown on screen.";
    Reach => "reach", Count, Unique, "Unique people who saw the content at least once in the row's period.";
    Clicks => "clicks", Count, Sum, "Clicks of any kind on the content.";
    LinkClicks => "link_clicks", Count, Sum, "Clicks that led to a destination outside the platform (landing page clicks).";
    Engagements => "engagements", Count, Sum, "Interactions of any kind, as the platform totals them.";
    Likes => "likes", Count, Sum, "Likes and reactions.";
    Comments => "comments", Count, Sum, "Comments.";
    Shares => "shares", Count, Sum, "Shares, reposts and retweets.";
    VideoViews => "video_views", Count, Sum, "Video views as the platform defines a view.";
    Followers => "followers", Count, Snapshot, "Followers at the end of the day (a snapshot: a period takes its last value).";
    FollowerGains => "follower_gains", Count, Sum, "Followers gained during the day: the net change (follows minus unfollows, negative on days with more unfollows) where the platform reports a net change, the new follows where it reports only those.";
    Mentions => "mentions", Count, Sum, "Mentions of the organization or page.";
    Posts => "posts", Count, Sum, "Posts published.";
    Spend => "spend", Currency, Sum, "Amount spent, in the account currency.";
    Conversions => "conversions", Count, Sum, "Conversions attributed to the content or campaign.";
    Leads => "leads", Count, Sum, "Leads generated (lead forms, new CRM leads).";
    Revenue => "revenue", Currency, Sum, "Revenue attributed (closed-won deal amounts, purchase revenue).";
    Sessions => "sessions", Count, Sum, "Website sessions.";
    EngagedSessions => "engaged_sessions", Count, Sum, "Sessions that lasted 10 s or more, converted, or had 2 or more page views.";
    SessionDurationSeconds => "session_duration_seconds", Seconds, Sum, "Total duration of the sessions, in seconds.";
    Users => "users", Count, Unique, "Unique active users in the row's period.";
    NewUsers => "new_users", Count, Unique, "Unique users who visited for the first time in the row's period.";
    ReturningUsers => "returning_users", Count, Unique, "Unique users who had visited before, in the row's period.";
    PageViews => "page_views", Count, Sum, "Page or screen views.";
    FormSubmissions => "form_submissions", Count, Sum, "Form submissions (sign-ups, gated downloads, contact forms).";
    EmailsDelivered => "emails_delivered", Count, Sum, "Marketing emails delivered.";
    EmailsOpened => "emails_opened", Count, Sum, "Marketing emails opened.";
    EmailsClicked => "emails_clicked", Count, Sum, "Marketing emails with at least one click.";
    DealsCreated => "deals_created", Count, Sum, "Deals created.";
    DealsWon => "deals_won", Count, Sum, "Deals closed as won.";
    NpsPromoters => "nps_promoters", Count, Sum, "Survey responses scoring 9 or 10.";
    NpsPassives => "nps_passives", Count, Sum, "Survey responses scoring 7 or 8.";
    NpsDetractors => "nps_detractors", Count, Sum, "Survey responses scoring 0 to 6.";
    CsatSatisfied => "csat_satisfied", Count, Sum, "Survey responses that answered satisfied.";
    SurveyResponses => "survey_responses", Count, Sum, "Survey responses received.";
    InvitesSent => "invites_sent", Count, Sum, "Connection invitations sent (social selling).";
    InvitesAccepted => "invites_accepted", Count, Sum, "Connection invitations accepted (social selling).";
    Replies => "replies", Count, Sum, "Replies received to outreach messages (social selling).";
    Interested => "interested", Count, Sum, "Prospects who said they were interested (social selling).";
}

impl Metric {
    /// The vocabulary entry.
    pub fn def(self) -> &'static MetricDef {
        &METRICS[self as usize]
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The unit of its values.
    pub fn unit(self) -> Unit {
        self.def().unit
    }

    /// How its values combine.
    pub fn additivity(self) -> Additivity {
        self.def().additivity
    }

    /// The canonical metric called `name`, if any.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|m| m.name() == name)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_the_enum_agree() {
        assert_eq!(Metric::ALL.len(), METRICS.len());
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
            assert_eq!(Metric::from_name(m.name()), Some(*m));
        }
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for def in METRICS {
            assert!(seen.insert(def.name), "{} twice", def.name);
            assert!(def.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", def.name);
        }
    }

    #[test]
    fn additivity_follows_the_kpi_rules() {
        for unique in [Metric::Reach, Metric::Users, Metric::NewUsers, Metric::ReturningUsers] {
            assert_eq!(unique.additivity(), Additivity::Unique);
        }
        assert_eq!(Metric::Followers.additivity(), Additivity::Snapshot);
        assert_eq!(Metric::Spend.unit(), Unit::Currency);
        assert_eq!(Metric::Revenue.unit(), Unit::Currency);
        assert_eq!(Metric::SessionDurationSeconds.unit(), Unit::Seconds);
        assert_eq!(Metric::ALL.len(), 39);
    }
}
