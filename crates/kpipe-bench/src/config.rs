//! The kpipe configuration of a scenario: the `[sources.*]` tables a user would write for the
//! real APIs, pointed at the simulators.

use std::fmt::Write as _;
use std::path::Path;

use crate::scenario::Plan;
use crate::serve::{CLIENT_ID, CLIENT_SECRET, Endpoints, REFRESH_TOKEN};

/// A configuration asked for a platform the simulators do not serve.
#[derive(Debug, thiserror::Error)]
#[error("the plan pulls {0} but the simulators serve no {0} API")]
pub struct MissingEndpoint(&'static str);

/// Without quotas, sources are paced only by how fast the pipeline goes.
const UNPACED: &str = "rate_limit = { requests = 100000, per_seconds = 1 }\n";

fn quoted(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// The configuration file's text: output under `output`, the plan's sources at `endpoints`.
///
/// Each source is configured to keep to the limits the simulator enforces (the published
/// ones in the quota scenario): pacing, largest pages. With
/// [`Plan::connector_defaults`], LinkedIn and Facebook sources get the required keys only.
pub fn kpipe_toml(plan: &Plan, endpoints: &Endpoints, output: &Path) -> Result<String, MissingEndpoint> {
    let mut toml = format!(
        "[pipeline]\noutput = \"{}\"\nlookback_days = {}\n",
        output.display().to_string().replace('\\', "\\\\"),
        plan.days
    );
    let oauth = oauth_lines;
    if plan.connector_defaults {
        required_keys_only(&mut toml, plan, endpoints)?;
    } else {
        tuned_sources(&mut toml, plan, endpoints)?;
    }
    if let Some(p) = &plan.hubspot {
        if endpoints.hubspot.len() as u64 != p.portals {
            return Err(MissingEndpoint("HubSpot"));
        }
        for (n, endpoint) in endpoints.hubspot.iter().enumerate() {
            // The connector's defaults for an OAuth app are HubSpot's published limits.
            let _ = writeln!(toml, "\n[sources.hubspot_portal_{:02}]\ntype = \"hubspot\"", n + 1);
            oauth(&mut toml, endpoint);
        }
    }
    if let Some(p) = &plan.ga4 {
        let endpoint = endpoints.google.as_ref().ok_or(MissingEndpoint("Google Analytics"))?;
        let _ = writeln!(
            toml,
            "\n[sources.web_analytics]\ntype = \"google_analytics\"\nproperty_ids = {}\npage_size = 250000",
            quoted(p.property_ids())
        );
        if !plan.published_quotas {
            toml.push_str(UNPACED);
        }
        oauth(&mut toml, endpoint);
    }
    if !plan.kpi_stage {
        toml.push_str("\n[kpis_settings]\nenabled = false\n");
    }
    Ok(toml)
}

/// The LinkedIn and Facebook sources of `plan`, each configured to keep to the limits the
/// simulator enforces with the largest pages, appended to `toml`.
fn tuned_sources(toml: &mut String, plan: &Plan, endpoints: &Endpoints) -> Result<(), MissingEndpoint> {
    if let Some(p) = &plan.linkedin {
        let endpoint = endpoints.linkedin.as_ref().ok_or(MissingEndpoint("LinkedIn"))?;
        let _ = writeln!(
            toml,
            "\n[sources.linkedin_ads]\ntype = \"linkedin\"\naccount_ids = {}\npage_size = 1000",
            quoted(p.account_ids().iter().map(u64::to_string))
        );
        if plan.published_quotas {
            // 10 requests a second, expressed over 10 s so the limiter spreads 99 of them
            // evenly instead of reserving a tenth of each second for a burst; answers take up
            // to 0.6 s, so up to 6 are in flight at that pace.
            toml.push_str("rate_limit = { requests = 100, per_seconds = 10 }\nconcurrency = 16\n");
        } else {
            toml.push_str(UNPACED);
        }
        oauth_lines(toml, endpoint);
    }
    if let Some(p) = &plan.facebook {
        let endpoint = endpoints.facebook.as_ref().ok_or(MissingEndpoint("Facebook"))?;
        let _ = writeln!(
            toml,
            "\n[sources.facebook_ads]\ntype = \"facebook\"\nad_account_ids = {}\n\
             access_token = \"{}\"\nbase_url = \"{}\"\nlevels = {}\npage_size = {}\n\
             # Four weeks of these accounts fit in one page: synchronous reports, no report runs.\n\
             async_reports = {{ after_days = 31 }}",
            quoted(p.account_ids()),
            endpoints.facebook_token,
            endpoint.base_url,
            quoted(p.levels.iter().map(|l| (*l).to_owned())),
            p.page_size,
        );
        if plan.published_quotas {
            // Meta budgets calls per ad account and hour, not per second: the source-wide pace
            // only keeps bursts short, the usage headers steer the rest.
            toml.push_str("rate_limit = { requests = 200, per_seconds = 10 }\nconcurrency = 8\n");
        } else {
            toml.push_str(UNPACED);
        }
    }
    Ok(())
}

/// The LinkedIn and Facebook sources of `plan` with nothing but the keys a user must write
/// (ids, credentials, the simulators' addresses), appended to `toml`: the connectors' defaults
/// decide pages, pacing, concurrency, levels and report runs.
fn required_keys_only(toml: &mut String, plan: &Plan, endpoints: &Endpoints) -> Result<(), MissingEndpoint> {
    if let Some(p) = &plan.linkedin {
        let endpoint = endpoints.linkedin.as_ref().ok_or(MissingEndpoint("LinkedIn"))?;
        let _ = writeln!(
            toml,
            "\n[sources.linkedin_ads]\ntype = \"linkedin\"\naccount_ids = {}",
            quoted(p.account_ids().iter().map(u64::to_string))
        );
        oauth_lines(toml, endpoint);
    }
    if let Some(p) = &plan.facebook {
        let endpoint = endpoints.facebook.as_ref().ok_or(MissingEndpoint("Facebook"))?;
        let _ = writeln!(
            toml,
            "\n[sources.facebook_ads]\ntype = \"facebook\"\nad_account_ids = {}\n\
             access_token = \"{}\"\nbase_url = \"{}\"",
            quoted(p.account_ids()),
            endpoints.facebook_token,
            endpoint.base_url,
        );
        if p.pages > 0 {
            let _ = writeln!(toml, "page_ids = {}", quoted(p.page_ids()));
        }
    }
    Ok(())
}

/// `requests` per `window` (as published) for one of `pacers` sources sharing one application
/// limit, on the plan's clock and with its headroom: the `rate_limit` table of such a source.
fn share_of(plan: &Plan, requests: u64, window: std::time::Duration, pacers: u64) -> String {
    let share = requests * u64::from(plan.app_limits.headroom_pct) / 100 / pacers.max(1);
    let seconds = plan.app_limits.window(window).as_secs_f64();
    format!("rate_limit = {{ requests = {}, per_seconds = {seconds}, burst = 1 }}\n", share.max(1))
}

/// The configuration of a sharded plan: every shard runs it (`--shard K/N`), writing to
/// `object` (an object store). LinkedIn's accounts, Facebook's and GA4's properties are split
/// into sources of equal size, each HubSpot portal is a source of its own.
///
/// The application-wide limits are per source in kpipe's configuration: the sources of one
/// application split it between them (and keep [`crate::scenario::AppLimits::headroom_pct`] of
/// it in all). kpipe divides LinkedIn's and Facebook's `rate_limit` between the shards itself;
/// GA4's per-user limit it keeps whole in every shard, so the configuration divides it by the
/// shards as well.
pub fn sharded_toml(
    plan: &Plan,
    endpoints: &Endpoints,
    object: &crate::run::ObjectOutput,
) -> Result<String, MissingEndpoint> {
    use crate::serve::published;
    let mut toml = format!("[pipeline]\noutput = \"{}\"\nlookback_days = {}\n", object.url, plan.days);
    let _ = writeln!(toml, "\n[pipeline.storage]\n{}", object.storage);
    let oauth = oauth_lines;
    if let Some(p) = &plan.linkedin {
        let endpoint = endpoints.linkedin.as_ref().ok_or(MissingEndpoint("LinkedIn"))?;
        let sources = p.sources();
        let limit =
            share_of(plan, published::LINKEDIN_REQUESTS, published::LINKEDIN_WINDOW, sources.len() as u64);
        for (name, ids) in &sources {
            let _ = writeln!(
                toml,
                "\n[sources.{name}]\ntype = \"linkedin\"\naccount_ids = {}\npage_size = 1000\nconcurrency = 4",
                quoted(ids.iter().map(u64::to_string))
            );
            toml.push_str(&limit);
            oauth(&mut toml, endpoint);
        }
    }
    if let Some(p) = &plan.facebook {
        let endpoint = endpoints.facebook.as_ref().ok_or(MissingEndpoint("Facebook"))?;
        let sources = p.sources();
        let limit = share_of(
            plan,
            published::FACEBOOK_APP_REQUESTS,
            published::FACEBOOK_APP_WINDOW,
            sources.len() as u64,
        );
        for (name, ids) in &sources {
            let _ = writeln!(
                toml,
                "\n[sources.{name}]\ntype = \"facebook\"\nad_account_ids = {}\n\
                 access_token = \"{}\"\nbase_url = \"{}\"\nlevels = {}\npage_size = {}\nconcurrency = 4\n\
                 # Four weeks of these accounts fit in one page: synchronous reports, no report runs.\n\
                 async_reports = {{ after_days = 31 }}",
                quoted(ids.iter().cloned()),
                endpoints.facebook_token,
                endpoint.base_url,
                quoted(p.levels.iter().map(|l| (*l).to_owned())),
                p.page_size,
            );
            toml.push_str(&limit);
        }
    }
    if let Some(p) = &plan.hubspot {
        if endpoints.hubspot.len() as u64 != p.portals {
            return Err(MissingEndpoint("HubSpot"));
        }
        for (n, endpoint) in (1..).zip(&endpoints.hubspot) {
            // The connector's defaults for an OAuth app are HubSpot's published limits, which
            // are per portal: each shard keeps them whole.
            let _ = writeln!(toml, "\n[sources.{}]\ntype = \"hubspot\"", p.source_name(n));
            oauth(&mut toml, endpoint);
        }
    }
    if let Some(p) = &plan.ga4 {
        let endpoint = endpoints.google.as_ref().ok_or(MissingEndpoint("Google Analytics"))?;
        let sources = p.sources();
        // Not divided between the shards by kpipe: divided here.
        let pacers = sources.len() as u64 * u64::from(plan.shards.max(1));
        let limit = share_of(plan, published::GA4_REQUESTS, published::GA4_WINDOW, pacers);
        for (name, ids) in &sources {
            let _ = writeln!(
                toml,
                "\n[sources.{name}]\ntype = \"google_analytics\"\nproperty_ids = {}\npage_size = 250000",
                quoted(ids.iter().cloned())
            );
            toml.push_str(&limit);
            oauth(&mut toml, endpoint);
        }
    }
    Ok(toml)
}

/// The OAuth keys and addresses of a source pulling `endpoint`, appended to `toml`.
fn oauth_lines(toml: &mut String, endpoint: &crate::serve::Endpoint) {
    let _ = writeln!(
        toml,
        "client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         refresh_token = \"{REFRESH_TOKEN}\"\nbase_url = \"{}\"\ntoken_url = \"{}\"",
        endpoint.base_url, endpoint.token_url
    );
}
