//! The source: configuration checks and the pull loop over slices of the window.

use std::sync::atomic::{AtomicBool, Ordering};

use kpipe_core::{
    Additivity, BuildContext, ConfigError, DateWindow, Emitter, MetricOrigin, PullRequest, RequestEstimate,
    RequestTelemetry, Source, SourceError, StreamCatalog, StreamInfo,
};
use kpipe_http::ApiRequest;

use crate::config::{
    DEFAULT_LEAD_STAGES, DEFAULT_SOURCE_PROPERTY, HubSpotConfig, OAUTH_BURST_PER_TEN_SECONDS, PortalTier,
    SEARCH_RATE_LIMIT, ten_second_limit,
};
use crate::hub::{AuthKind, Hub, Limits};
use crate::normalize::ContactSettings;
use crate::portal::Portal;
use crate::streams::Context;
use crate::streams::crm::{self, CONTACTS, DEALS, FEEDBACK, Pipelines};
use crate::streams::marketing::{EMAILS, EmailStream, FORMS, FormStream};
use crate::tally::{Measure, Tally};

/// Days per slice: each slice is tallied and written whole, then declared complete, so that a
/// pull stopped by the daily limit still publishes the slices it finished.
pub const SLICE_DAYS: u64 = 31;

const STREAMS: [StreamInfo; 5] = [
    StreamInfo {
        name: CONTACTS,
        description: "Contacts created per day (hubspot.contacts_created) and leads, by original source",
    },
    StreamInfo {
        name: DEALS,
        description: "Deals created, deals closed won and their revenue, per pipeline and day",
    },
    StreamInfo { name: FORMS, description: "Form submissions per form and day" },
    StreamInfo {
        name: EMAILS,
        description: "Marketing emails delivered, opened, clicked, bounced, unsubscribed, per email and day",
    },
    StreamInfo {
        name: FEEDBACK,
        description: "Feedback survey responses per survey and day: NPS buckets, CSAT satisfied, responses",
    },
];

/// Which streams a source pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Streams {
    pub(crate) contacts: bool,
    pub(crate) deals: bool,
    pub(crate) forms: bool,
    pub(crate) emails: bool,
    pub(crate) feedback: bool,
}

impl Streams {
    fn from_config(names: Option<&[String]>) -> Result<Streams, ConfigError> {
        let Some(names) = names else {
            return Ok(Streams { contacts: true, deals: true, forms: true, emails: true, feedback: true });
        };
        if names.is_empty() {
            return Err(ConfigError::new(
                "streams",
                "name at least one stream, or leave `streams` out for all",
            ));
        }
        let mut streams =
            Streams { contacts: false, deals: false, forms: false, emails: false, feedback: false };
        for (i, name) in names.iter().enumerate() {
            let slot = match name.as_str() {
                CONTACTS => &mut streams.contacts,
                DEALS => &mut streams.deals,
                FORMS => &mut streams.forms,
                EMAILS => &mut streams.emails,
                FEEDBACK => &mut streams.feedback,
                other => {
                    let known: Vec<&str> = STREAMS.iter().map(|s| s.name).collect();
                    return Err(ConfigError::new(
                        format!("streams[{i}]"),
                        format!("unknown stream {other:?}; expected one of {}", known.join(", ")),
                    ));
                }
            };
            if std::mem::replace(slot, true) {
                return Err(ConfigError::new(format!("streams[{i}]"), format!("{name:?} is named twice")));
            }
        }
        Ok(streams)
    }

    fn names(&self) -> Vec<&'static str> {
        [
            (self.contacts, CONTACTS),
            (self.deals, DEALS),
            (self.forms, FORMS),
            (self.emails, EMAILS),
            (self.feedback, FEEDBACK),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// HubSpot property and stage names are lower-case letters, digits and `_` (custom stages are
/// numeric ids).
fn is_internal_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A configured HubSpot source.
#[derive(Debug)]
pub struct HubSpotSource {
    hub: Hub,
    pub(crate) streams: Streams,
    contacts: ContactSettings,
    pipelines: Option<Vec<String>>,
    page_size: u32,
    /// The limits it keeps to, for [`Source::estimate_requests`].
    pub(crate) limits: Limits,
    /// Whether the portal's unknown `timeZone` was reported already.
    zone_warned: AtomicBool,
}

impl Source for HubSpotSource {
    type Config = HubSpotConfig;
    const KIND: &'static str = "hubspot";
    const DESCRIPTION: &'static str =
        "HubSpot: leads, deals and revenue, form submissions, marketing email and feedback surveys";

    fn build(config: HubSpotConfig, _cx: &BuildContext) -> Result<Self, ConfigError> {
        let auth =
            match (&config.access_token, &config.client_id, &config.client_secret, &config.refresh_token) {
                (Some(_), None, None, None) => AuthKind::PrivateApp,
                (None, Some(_), Some(_), Some(_)) => AuthKind::OAuth,
                _ => {
                    return Err(ConfigError::new(
                        "access_token",
                        "give either a private app's `access_token`, or an OAuth app's `client_id`, \
                     `client_secret` and `refresh_token`",
                    ));
                }
            };
        if auth == AuthKind::PrivateApp && config.token_url.is_some() {
            return Err(ConfigError::new(
                "token_url",
                "only an OAuth app (`refresh_token`) uses a token URL",
            ));
        }
        let streams = Streams::from_config(config.streams.as_deref())?;
        let lead_stages = match &config.lead_lifecycle_stages {
            None => DEFAULT_LEAD_STAGES.map(str::to_owned).to_vec(),
            Some(stages) if stages.is_empty() => {
                return Err(ConfigError::new("lead_lifecycle_stages", "name at least one lifecycle stage"));
            }
            Some(stages) => {
                if let Some((i, bad)) = stages.iter().enumerate().find(|(_, s)| !is_internal_name(s)) {
                    return Err(ConfigError::new(
                        format!("lead_lifecycle_stages[{i}]"),
                        format!("{bad:?} is not a stage's internal name (e.g. `marketingqualifiedlead`)"),
                    ));
                }
                stages.clone()
            }
        };
        let source_property =
            config.lead_source_property.clone().unwrap_or_else(|| DEFAULT_SOURCE_PROPERTY.into());
        if !is_internal_name(&source_property) {
            return Err(ConfigError::new(
                "lead_source_property",
                format!("{source_property:?} is not a property name"),
            ));
        }
        let source_property = config.leads_by_source.unwrap_or(true).then_some(source_property);
        if let Some(pipelines) = &config.pipelines {
            if pipelines.is_empty() {
                return Err(ConfigError::new(
                    "pipelines",
                    "name at least one pipeline, or leave `pipelines` out for all",
                ));
            }
            if let Some(i) = pipelines.iter().position(|p| p.trim().is_empty()) {
                return Err(ConfigError::new(format!("pipelines[{i}]"), "a pipeline id cannot be empty"));
            }
        }
        let page_size = config.page_size.unwrap_or(u32::MAX);
        if page_size == 0 {
            return Err(ConfigError::new("page_size", "must be at least 1"));
        }
        if config.daily_limit == Some(0) {
            return Err(ConfigError::new("daily_limit", "must allow at least one request"));
        }
        let tier = config.portal_tier;
        let burst = config.rate_limit.unwrap_or_else(|| match auth {
            AuthKind::PrivateApp => ten_second_limit(tier.map_or(100, PortalTier::burst_per_ten_seconds)),
            AuthKind::OAuth => ten_second_limit(OAUTH_BURST_PER_TEN_SECONDS),
        });
        let daily = config.daily_limit.or(match auth {
            AuthKind::PrivateApp => tier.map(PortalTier::daily_requests),
            // HubSpot does not cap OAuth apps daily.
            AuthKind::OAuth => None,
        });
        let limits = Limits { burst, search: config.search_rate_limit.unwrap_or(SEARCH_RATE_LIMIT), daily };
        let hub = Hub::new(&config, auth, limits)?;
        Ok(HubSpotSource {
            hub,
            streams,
            contacts: ContactSettings { lead_stages, source_property },
            pipelines: config.pipelines,
            page_size,
            limits,
            zone_warned: AtomicBool::new(false),
        })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        let on = self.streams.names();
        STREAMS.iter().filter(|s| on.contains(&s.name)).cloned().collect()
    }

    /// Each stream with the measures it counts ([`Measure::stream`]), their metrics and levels.
    fn catalog() -> Vec<StreamCatalog> {
        STREAMS
            .iter()
            .map(|info| {
                let measures: Vec<Measure> =
                    Measure::ALL.into_iter().filter(|m| m.stream() == info.name).collect();
                let stream = StreamCatalog::new(info.clone())
                    .levels(measures.iter().map(|m| m.level()))
                    .metrics(measures.iter().map(|m| {
                        MetricOrigin::named(&m.metric(), Some(Additivity::Sum), m.platform_field())
                    }));
                // Contacts are broken down by their original source unless `leads_by_source` is
                // false.
                if info.name == CONTACTS { stream.dimensions(&["channel"]) } else { stream }
            })
            .collect()
    }

    async fn check(&self) -> Result<String, SourceError> {
        let portal = self.portal().await?;
        let cx = Context { hub: &self.hub, portal: &portal, page_size: 1 };
        let one = |path: &str| ApiRequest::get(path).query("limit", "1");
        let mut readable = Vec::new();
        let search = || serde_json::json!({"limit": 1, "properties": ["hs_object_id"]});
        if self.streams.contacts {
            self.hub.search("contacts", search()).await?;
            readable.push(CONTACTS.to_owned());
        }
        if self.streams.deals {
            let pipelines = self.pipelines(&cx).await?;
            readable.push(format!("{DEALS} ({} pipeline(s))", pipelines.labels.len()));
        }
        if self.streams.forms {
            self.hub.send(&one("marketing/v3/forms")).await?;
            readable.push(FORMS.to_owned());
        }
        if self.streams.emails {
            self.hub.send(&one("marketing/v3/emails")).await?;
            readable.push(EMAILS.to_owned());
        }
        if self.streams.feedback {
            self.hub.search("feedback_submissions", search()).await?;
            readable.push(FEEDBACK.to_owned());
        }
        Ok(format!(
            "portal {} ({}, {}): {} readable",
            portal.id,
            portal.zone(),
            portal.currency.as_str(),
            readable.join(", ")
        ))
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        let portal = self.portal().await?;
        let cx = Context { hub: &self.hub, portal: &portal, page_size: self.page_size };
        let pipelines = if self.streams.deals { Some(self.pipelines(&cx).await?) } else { None };
        let mut forms =
            if self.streams.forms { Some(FormStream::list(&cx, request.window, out).await?) } else { None };
        let mut emails = EmailStream::default();
        // Newest first: form submissions are listed newest first, and the newest days are the
        // ones a stop at the daily limit should keep.
        // The streams of a slice are read at once, each into a fork of `out`: the searches
        // share the portal's search limit and the other requests its burst limit, which one
        // stream at a time, waiting for each answer, would leave mostly unused. Each stream's
        // slice is tallied whole, then its rows are written under its name.
        for slice in request.window.slices(SLICE_DAYS).into_iter().rev() {
            let [mut contacts_out, mut deals_out, mut feedback_out, mut forms_out, mut emails_out] =
                [(); 5].map(|()| out.fork());
            let contacts_read = async {
                if self.streams.contacts {
                    let mut tally = Tally::default();
                    crm::contacts(&cx, &self.contacts, slice, &mut tally, &mut contacts_out).await?;
                    emit(&mut contacts_out, CONTACTS, tally, &portal).await?;
                }
                Ok::<(), SourceError>(())
            };
            let deals_read = async {
                if let Some(pipelines) = &pipelines {
                    let mut tally = Tally::default();
                    crm::deals(&cx, pipelines, slice, &mut tally, &mut deals_out).await?;
                    emit(&mut deals_out, DEALS, tally, &portal).await?;
                }
                Ok::<(), SourceError>(())
            };
            let feedback_read = async {
                if self.streams.feedback {
                    let mut tally = Tally::default();
                    crm::feedback(&cx, slice, &mut tally, &mut feedback_out).await?;
                    emit(&mut feedback_out, FEEDBACK, tally, &portal).await?;
                }
                Ok::<(), SourceError>(())
            };
            let forms_read = async {
                if let Some(forms) = &mut forms {
                    let mut tally = Tally::default();
                    forms.pull(&cx, slice, &mut tally, &mut forms_out).await?;
                    emit(&mut forms_out, FORMS, tally, &portal).await?;
                }
                Ok::<(), SourceError>(())
            };
            let emails_read = async {
                if self.streams.emails {
                    let mut tally = Tally::default();
                    emails.pull(&cx, slice, &mut tally, &mut emails_out).await?;
                    emit(&mut emails_out, EMAILS, tally, &portal).await?;
                }
                Ok::<(), SourceError>(())
            };
            let read = futures::join!(contacts_read, deals_read, feedback_read, forms_read, emails_read);
            for fork in [contacts_out, deals_out, feedback_out, forms_out, emails_out] {
                out.join(fork).await?;
            }
            let (contacts, deals, feedback, forms, emails) = read;
            contacts.and(deals).and(feedback).and(forms).and(emails)?;
            out.complete(slice).await?;
        }
        Ok(())
    }

    fn telemetry(&self) -> Option<RequestTelemetry> {
        Some(self.hub.telemetry())
    }

    fn estimate_requests(&self, windows: &[DateWindow]) -> Option<RequestEstimate> {
        Some(self.estimate(windows))
    }

    /// A private app's static token, or the OAuth refresh token's (which does not expire).
    fn token_facts(&self) -> Option<kpipe_core::TokenFacts> {
        self.hub.token_facts()
    }
}

impl HubSpotSource {
    /// The portal's id, zone and currency (`GET /account-info/v3/details`).
    async fn portal(&self) -> Result<Portal, SourceError> {
        let response = self.hub.send(&ApiRequest::get("account-info/v3/details")).await?;
        let portal = Portal::from_details(&response.body)?;
        if let Some(unknown) = portal.unknown_zone()
            && !self.zone_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                portal = %portal.id,
                time_zone = unknown,
                offset = %portal.zone(),
                "the portal's time zone is not an IANA zone: its days are cut at the fixed UTC offset \
                 the account details report, without daylight saving time"
            );
        }
        self.hub.usage().set_zone(portal.zone());
        self.hub.usage().set_portal(portal.id.as_str());
        tracing::debug!(portal = %portal.id, zone = %portal.zone(), "portal details read");
        Ok(portal)
    }

    /// The deal pipelines and their won stages (`GET /crm/v3/pipelines/deals`).
    async fn pipelines(&self, cx: &Context<'_>) -> Result<Pipelines, SourceError> {
        let response = cx.hub.send(&ApiRequest::get("crm/v3/pipelines/deals").stream(DEALS)).await?;
        let body: serde_json::Value = response.json()?;
        Pipelines::from_listing(&body, self.pipelines.clone())
    }
}

/// Writes a stream's tally of one slice under the stream's name.
async fn emit(out: &mut Emitter, stream: &str, tally: Tally, portal: &Portal) -> Result<(), SourceError> {
    out.set_stream(stream);
    out.emit_all(tally.rows(portal)).await
}

#[cfg(test)]
mod tests {
    use kpipe_core::DateWindow;

    use super::*;
    use chrono::NaiveDate;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn windows_are_sliced_into_months_at_most() {
        let window = DateWindow::new(day("2026-01-01"), day("2026-12-31")).unwrap();
        let parts = window.slices(SLICE_DAYS);
        assert_eq!(parts.len(), 12);
        assert_eq!(parts[0].end(), day("2026-01-31"));
        assert_eq!(parts.iter().map(DateWindow::num_days).sum::<u64>(), 365);
        assert_eq!(DateWindow::day(day("2026-10-01")).slices(SLICE_DAYS).len(), 1);
    }

    #[test]
    fn stream_names_are_checked() {
        assert_eq!(Streams::from_config(None).unwrap().names().len(), 5);
        let some = Streams::from_config(Some(&["forms".into(), "deals".into()])).unwrap();
        assert_eq!(some.names(), ["deals", "forms"]);
        assert_eq!(Streams::from_config(Some(&["tickets".into()])).unwrap_err().path, "streams[0]");
        assert!(Streams::from_config(Some(&["forms".into(), "forms".into()])).is_err());
        assert!(Streams::from_config(Some(&[])).is_err());
        assert!(is_internal_name("marketingqualifiedlead") && is_internal_name("1234567"));
        assert!(!is_internal_name("Lead") && !is_internal_name(""));
    }
}
