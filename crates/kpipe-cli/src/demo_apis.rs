//! The four platform APIs of `kpipe demo`: kpipe-sim serving LinkedIn, Facebook, HubSpot and
//! Google Analytics on 127.0.0.1 with seeded data, real wire shapes, quotas and OAuth, so that
//! the demo runs every connector the way a nightly run does, without credentials.

use std::sync::Arc;

use kpipe_sim::platform::facebook::{self, FacebookGraph};
use kpipe_sim::platform::ga4::Ga4Api;
use kpipe_sim::platform::hubspot::{self, HubSpotApi};
use kpipe_sim::platform::linkedin::{self, LinkedInApi};
use kpipe_sim::{AuthConfig, Latency, SimConfig, SimError, SimServer};

/// The seed of the demo data: the same numbers on every run.
const SEED: u64 = 2026;

/// The running simulators; they stop when this is shut down or dropped with the runtime.
#[derive(Debug)]
pub struct DemoApis {
    linkedin: SimServer,
    facebook: SimServer,
    hubspot: SimServer,
    google: SimServer,
}

fn config() -> SimConfig {
    // A few milliseconds per answer, so the progress display has something to show.
    SimConfig::new(SEED).with_latency(Latency::uniform_ms(1, 5))
}

impl DemoApis {
    /// Starts the four simulators on random loopback ports.
    pub async fn start() -> Result<DemoApis, SimError> {
        Ok(DemoApis {
            linkedin: SimServer::start(
                config().with_auth(linkedin::auth_config()).with_platform(Arc::new(LinkedInApi::default())),
            )
            .await?,
            facebook: SimServer::start(
                config().with_auth(facebook::auth_config()).with_platform(Arc::new(FacebookGraph::default())),
            )
            .await?,
            hubspot: SimServer::start(
                config().with_auth(hubspot::auth_config()).with_platform(Arc::new(HubSpotApi::default())),
            )
            .await?,
            google: SimServer::start(
                config().with_auth(AuthConfig::required()).with_platform(Arc::new(Ga4Api::default())),
            )
            .await?,
        })
    }

    /// The `[sources.*]` tables pulling them, as a user would write them for the real APIs
    /// (with the simulators' addresses and their built-in test credentials).
    pub fn sources_toml(&self) -> String {
        format!(
            r#"
# The four platform APIs, served by kpipe's built-in simulator while the demo runs (the
# addresses below stop working when it ends; the credentials are the simulator's, not secrets).
[sources.linkedin_ads]
type = "linkedin"
account_ids = ["508000001", "508000002"]
organization_ids = ["2414183"]
client_id = "sim-client"
client_secret = "sim-secret"
refresh_token = "sim-refresh-token"
base_url = "{linkedin}"
token_url = "{linkedin_token}"

[sources.facebook_ads]
type = "facebook"
ad_account_ids = ["act_101000000000001", "act_101000000000002"]
page_ids = ["200000000000001"]
access_token = "{facebook_token}"
base_url = "{facebook}"
async_reports = {{ poll_initial_ms = 100, poll_max_ms = 1000 }}

[sources.hubspot_crm]
type = "hubspot"
client_id = "sim-client"
client_secret = "sim-secret"
refresh_token = "sim-refresh-token"
base_url = "{hubspot}"
token_url = "{hubspot_token}"

[sources.web_analytics]
type = "google_analytics"
property_ids = ["123456789", "987654321"]
client_id = "sim-client"
client_secret = "sim-secret"
refresh_token = "sim-refresh-token"
base_url = "{google}"
token_url = "{google_token}"
"#,
            linkedin = self.linkedin.base_url(),
            linkedin_token = self.linkedin.token_url(),
            facebook = self.facebook.base_url(),
            facebook_token = facebook::DEMO_ACCESS_TOKEN,
            hubspot = self.hubspot.base_url(),
            hubspot_token = self.hubspot.token_url(),
            google = self.google.base_url(),
            google_token = self.google.token_url(),
        )
    }

    /// Requests the simulators answered, for the closing line of the demo.
    pub fn requests(&self) -> u64 {
        [&self.linkedin, &self.facebook, &self.hubspot, &self.google].iter().map(|s| s.requests_total()).sum()
    }

    /// Requests refused for going over a simulated quota: zero when the connectors pace right.
    pub fn over_quota(&self) -> u64 {
        [&self.linkedin, &self.facebook, &self.hubspot, &self.google]
            .iter()
            .map(|s| s.requests_over_quota())
            .sum()
    }

    /// Stops the simulators.
    pub async fn shutdown(self) {
        self.linkedin.shutdown().await;
        self.facebook.shutdown().await;
        self.hubspot.shutdown().await;
        self.google.shutdown().await;
    }
}
