//! The parsers under test, each through its public entry point, and the structured inputs
//! generated for each beside the mutated seeds.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use kpipe_core::{BuildContext, Currency, DateWindow, Emitter, Label, NaiveDate, PullRequest, Source};
use serde_json::Value;

use crate::engine::Rng;
use crate::seeds;

/// The names of the targets, in the order they run.
pub const NAMES: &[&str] = &["linkedin", "facebook", "hubspot", "ga4", "files", "config", "formula", "state"];

/// A parser under test: runs one input. The result says whether the parser accepted it (for
/// the share of inputs that reach past the first checks); a panic is the finding.
pub trait Runner {
    /// Feeds `input` to the parser.
    fn run(&mut self, input: &[u8]) -> bool;
}

/// How a target's inputs are made: its seeds, and a generator of structured inputs.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The seed inputs, mutated and spliced.
    pub seeds: Vec<Vec<u8>>,
    /// Structured inputs of the target's shape.
    pub generate: fn(&mut Rng) -> Vec<u8>,
}

impl Inputs {
    fn of(seeds: &[&str], generate: fn(&mut Rng) -> Vec<u8>) -> Inputs {
        Inputs { seeds: seeds.iter().map(|s| s.as_bytes().to_vec()).collect(), generate }
    }

    /// Input `index` of a run seeded with `seed`: a seed or a generated input, as is (one in
    /// sixteen) or mutated.
    pub fn make(&self, seed: u64, index: u64) -> Vec<u8> {
        let mut rng = Rng::for_input(seed, index);
        let base = if rng.one_in(3) {
            (self.generate)(&mut rng)
        } else {
            rng.pick(&self.seeds).cloned().unwrap_or_default()
        };
        if rng.one_in(16) { base } else { crate::engine::mutate(&mut rng, &base, &self.seeds) }
    }
}

/// The inputs and runner of target `name`.
pub fn target(name: &str) -> Result<(Inputs, Box<dyn Runner>), String> {
    Ok(match name {
        "linkedin" => (Inputs::of(seeds::LINKEDIN, gen_linkedin), Box::new(LinkedIn::new()?)),
        "facebook" => (Inputs::of(seeds::FACEBOOK, gen_facebook), Box::new(Facebook::new()?)),
        "hubspot" => (Inputs::of(seeds::HUBSPOT, gen_hubspot), Box::new(HubSpot::new()?)),
        "ga4" => (Inputs::of(&ga4_seeds(), gen_ga4), Box::new(Ga4)),
        "files" => (Inputs::of(seeds::FILES, gen_csv), Box::new(Files::new()?)),
        "config" => (Inputs::of(seeds::CONFIG, gen_config), Box::new(Config::new()?)),
        "formula" => (Inputs::of(seeds::FORMULA, gen_formula), Box::new(Formula)),
        "state" => (Inputs::of(seeds::STATE, gen_state), Box::new(State::new()?)),
        other => return Err(format!("unknown target `{other}`; known: {}", NAMES.join(", "))),
    })
}

fn day(text: &str) -> Result<NaiveDate, String> {
    text.parse().map_err(|e| format!("{text}: {e}"))
}

fn window() -> Result<DateWindow, String> {
    DateWindow::new(day("2024-01-01")?, day("2026-12-31")?).map_err(|e| e.to_string())
}

fn currency(code: &str) -> Result<Currency, String> {
    Currency::parse(code).ok_or_else(|| format!("{code} is not a currency"))
}

// ---------------------------------------------------------------------------------------------
// LinkedIn: ad analytics answers (read in place), organization statistics, error bodies.

struct LinkedIn {
    account: Label,
    currency: Currency,
    names: HashMap<u64, Option<Label>>,
    fields: Vec<kpipe_connector_linkedin::fields::AnalyticsField>,
    window: DateWindow,
    entity: kpipe_connector_linkedin::normalize::Entity,
}

impl LinkedIn {
    fn new() -> Result<LinkedIn, String> {
        let mut names = HashMap::new();
        names.insert(252_074_216, Some(Label::from("Spring launch")));
        names.insert(1337, None);
        let mut fields = kpipe_connector_linkedin::fields::canonical();
        // An extra field of each kind the field table allows beside the canonical ones.
        for extra in ["videoCompletions", "approximateMemberReach", "oneClickLeads"] {
            if let Ok(field) = kpipe_connector_linkedin::fields::extra(extra) {
                fields.push(field);
            }
        }
        Ok(LinkedIn {
            account: Label::from("508720451"),
            currency: currency("EUR")?,
            names,
            fields,
            window: window()?,
            entity: kpipe_connector_linkedin::normalize::Entity {
                account_id: Label::from("2414183"),
                level: Label::from("organization"),
                entity_id: Label::from("2414183"),
                entity_name: None,
            },
        })
    }
}

impl Runner for LinkedIn {
    fn run(&mut self, input: &[u8]) -> bool {
        use kpipe_connector_linkedin::normalize::analytics::AnalyticsContext;
        use kpipe_connector_linkedin::normalize::organization;
        use kpipe_connector_linkedin::restli::Pivot;
        let _ = kpipe_connector_linkedin::client::is_daily_cap(input);
        // The client hands the connector the body as text; a body that is not UTF-8 is an
        // HTTP error before it is ever an answer.
        let Ok(text) = std::str::from_utf8(input) else { return false };
        let mut accepted = false;
        for pivot in [Pivot::Campaign, Pivot::Creative] {
            let cx = AnalyticsContext {
                account: &self.account,
                currency: self.currency,
                pivot,
                names: &self.names,
                window: self.window,
                fields: &self.fields,
            };
            if let Some((rows, _)) = kpipe_connector_linkedin::analytics::read_answer(text.to_owned(), cx) {
                accepted |= rows > 0;
            }
        }
        // Organization statistics come as parsed values.
        if let Ok(body) = serde_json::from_str::<Value>(text)
            && let Some(elements) = body.get("elements").and_then(Value::as_array)
        {
            for element in elements {
                let _ = organization::bucket_day(element);
                accepted |= organization::follower_gain(element).is_ok();
                accepted |= organization::share_rows(element, &self.entity, self.window).is_ok();
                let _ = kpipe_connector_linkedin::entities::numeric_id(element);
            }
        }
        accepted
    }
}

// ---------------------------------------------------------------------------------------------
// Facebook: insights pages (each level), Page insights, error envelopes, usage headers.

struct Facebook {
    actions: kpipe_connector_facebook::mapping::ActionMapping,
    page_metrics: kpipe_connector_facebook::mapping::PageMetrics,
    window: DateWindow,
}

impl Facebook {
    fn new() -> Result<Facebook, String> {
        let names: Vec<String> = [
            "page_impressions",
            "page_actions_post_reactions_total",
            "page_follows",
            "page_post_engagements",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        Ok(Facebook {
            actions: kpipe_connector_facebook::mapping::ActionMapping::default(),
            page_metrics: kpipe_connector_facebook::mapping::PageMetrics::new(&names)
                .map_err(|e| e.to_string())?,
            window: window()?,
        })
    }
}

impl Runner for Facebook {
    fn run(&mut self, input: &[u8]) -> bool {
        use kpipe_connector_facebook::normalize::{InsightsReader, Level, PageContext, page_rows};
        let mut accepted = false;
        for level in ["campaign", "ad_set", "adset", "ad", "account"] {
            let Some(level) = Level::from_config(level) else { continue };
            let mut reader = InsightsReader::new("798085168510957", level, &self.actions);
            if let Some((rows, _, _)) =
                kpipe_connector_facebook::listing::read_insights_page(input, &mut reader)
            {
                accepted |= rows > 0;
            }
        }
        if let Ok(body) = serde_json::from_slice::<Value>(input) {
            let cx = PageContext {
                page_id: "298712583335639",
                page_name: Some("Page"),
                window: self.window,
                metrics: &self.page_metrics,
            };
            for element in kpipe_connector_facebook::client::data_of(&body).into_iter().flatten() {
                match page_rows(element, &cx) {
                    Ok(rows) => accepted |= !rows.is_empty(),
                    Err(_) => {
                        let _ = kpipe_connector_facebook::client::scrub(&element.to_string());
                    }
                }
            }
        }
        if let Some(error) = kpipe_connector_facebook::client::GraphError::parse(input) {
            let _ = error.summary();
            accepted = true;
        }
        // The usage headers are JSON too; a header value is text.
        if let Ok(text) = std::str::from_utf8(input) {
            let reading = kpipe_connector_facebook::usage::UsageReading::read(|_| Some(text));
            let _ = format!("{reading:?}");
        }
        accepted
    }
}

// ---------------------------------------------------------------------------------------------
// HubSpot: account details, search and listing pages through every record reader.

struct HubSpot {
    portal: kpipe_connector_hubspot::portal::Portal,
    contacts: kpipe_connector_hubspot::normalize::ContactSettings,
}

impl HubSpot {
    fn new() -> Result<HubSpot, String> {
        Ok(HubSpot {
            portal: kpipe_connector_hubspot::portal::Portal {
                id: Label::from("62515"),
                time_zone: "US/Eastern".into(),
                offset_ms: -18_000_000,
                currency: currency("USD")?,
            },
            contacts: kpipe_connector_hubspot::normalize::ContactSettings {
                lead_stages: vec!["lead".into(), "marketingqualifiedlead".into()],
                source_property: Some("hs_analytics_source".into()),
            },
        })
    }
}

impl Runner for HubSpot {
    fn run(&mut self, input: &[u8]) -> bool {
        use kpipe_connector_hubspot::normalize;
        let mut accepted = false;
        let portal = match kpipe_connector_hubspot::portal::Portal::from_details(input) {
            Ok(portal) => {
                accepted = true;
                // A portal read from the body is the one its records are read against.
                let _ = portal.day_of(1_714_546_800_000);
                portal
            }
            Err(_) => self.portal.clone(),
        };
        let Ok(body) = serde_json::from_slice::<Value>(input) else { return accepted };
        let _ = kpipe_connector_hubspot::streams::crm::Pipelines::from_listing(&body, None);
        let _ = kpipe_connector_hubspot::streams::crm::Pipelines::from_listing(
            &body,
            Some(vec!["default".into()]),
        );
        for record in body.get("results").and_then(Value::as_array).into_iter().flatten() {
            accepted |= normalize::contact(record, &portal, &self.contacts).is_ok();
            accepted |= normalize::deal(record, &portal).is_ok();
            accepted |= normalize::feedback(record, &portal).is_ok();
            accepted |= normalize::form(record, &portal).is_ok();
            accepted |= normalize::submission_time(record).is_ok();
            accepted |= normalize::email_interval(record, &portal).is_ok();
            if let Ok(record) = normalize::Record::of(record) {
                for name in ["createdate", "amount", "closedate", "hs_value"] {
                    let _ = record.instant(name);
                    let _ = record.decimal(name);
                    let _ = record.text(name);
                }
            }
        }
        if let Some(after) = body.pointer("/paging/next/after").and_then(Value::as_str) {
            let _ = kpipe_connector_hubspot::portal::parse_instant(after);
        }
        accepted
    }
}

// ---------------------------------------------------------------------------------------------
// GA4: runReport and batchRunReports answers against each report's spec, quota errors.

struct Ga4;

impl Runner for Ga4 {
    fn run(&mut self, input: &[u8]) -> bool {
        use kpipe_connector_google_analytics::normalize::{RowContext, normalize_row, read_page};
        let _ = kpipe_connector_google_analytics::pacing::exhausted_quota(input);
        let Ok(body) = serde_json::from_slice::<Value>(input) else { return false };
        let reports: Vec<&Value> = match body.get("reports").and_then(Value::as_array) {
            Some(reports) => reports.iter().collect(),
            None => vec![&body],
        };
        let specs = ga4_specs();
        let mut accepted = false;
        for report in reports {
            for spec in &specs {
                for requested in [None, Currency::parse("EUR")] {
                    let Ok(page) = read_page(report, spec, requested) else { continue };
                    let cx = RowContext { property: "123456", spec };
                    for row in &page.rows {
                        accepted |= normalize_row(row, &page, cx).is_ok();
                    }
                }
            }
        }
        accepted
    }
}

// ---------------------------------------------------------------------------------------------
// Files: the CSV reader, through a pull of a `FilesSource` on a file holding the input.

struct Files {
    _dir: tempfile::TempDir,
    file: PathBuf,
    sources: Vec<kpipe_connector_files::FilesSource>,
    runtime: tokio::runtime::Runtime,
    request: PullRequest,
}

impl Files {
    fn new() -> Result<Files, String> {
        use kpipe_connector_files::{FileKind, FilesConfig};
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a folder: {e}"))?;
        let file = dir.path().join("input.csv");
        let cx = BuildContext { source_name: "sheet".into(), config_dir: dir.path().to_path_buf() };
        let mut sources = Vec::new();
        for (kind, delimiter) in [
            (FileKind::Metrics, None),
            (FileKind::SocialSelling, None),
            (FileKind::Survey, None),
            (FileKind::Survey, Some(';')),
        ] {
            let config = FilesConfig {
                kind,
                path: "input.csv".into(),
                platform: None,
                account_id: None,
                survey: None,
                delimiter,
            };
            sources.push(kpipe_connector_files::FilesSource::build(config, &cx).map_err(|e| e.to_string())?);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let request = PullRequest { window: window()?, run_id: "fuzz".into(), full_refresh: false };
        Ok(Files { _dir: dir, file, sources, runtime, request })
    }
}

impl Runner for Files {
    fn run(&mut self, input: &[u8]) -> bool {
        if std::fs::write(&self.file, input).is_err() {
            return false;
        }
        // The header decides which kind reads a file; every kind reads every input.
        let mut accepted = false;
        for source in &self.sources {
            let (mut out, mut rx) = Emitter::channel(64, 256);
            let request = &self.request;
            let pull = async move {
                let pulled = source.pull(request, &mut out).await;
                let flushed = out.flush().await;
                pulled.and(flushed)
            };
            // Drained while the pull runs: a full channel would otherwise stop it for good.
            let drain = async {
                let mut events = 0_usize;
                while rx.recv().await.is_some() {
                    events += 1;
                }
                events
            };
            let (pulled, _) = self.runtime.block_on(async { tokio::join!(pull, drain) });
            accepted |= pulled.is_ok();
        }
        accepted
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration: the TOML text with `${NAME}` values from an environment.

struct Config {
    dir: tempfile::TempDir,
}

impl Config {
    fn new() -> Result<Config, String> {
        Ok(Config { dir: tempfile::tempdir().map_err(|e| format!("cannot make a folder: {e}"))? })
    }
}

fn fuzz_env(name: &str) -> Option<String> {
    match name {
        "SURVEY_EXPORT_DIR" => Some("exports".into()),
        "LINKEDIN_CLIENT_ID" | "FB_TOKEN" | "HUBSPOT_TOKEN" => Some("token-value".into()),
        "X" | "NAME" => Some("${X}".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

impl Runner for Config {
    fn run(&mut self, input: &[u8]) -> bool {
        // `load` reads the file as UTF-8 text; invalid UTF-8 never reaches the parser.
        let Ok(text) = std::str::from_utf8(input) else { return false };
        kpipe_cli::config::parse(text, self.dir.path(), &fuzz_env).is_ok()
    }
}

// ---------------------------------------------------------------------------------------------
// KPI formulas: compiled with the catalog, as a `[kpis.<name>]` definition.

struct Formula;

impl Runner for Formula {
    fn run(&mut self, input: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(input) else { return false };
        let mut user = BTreeMap::new();
        user.insert(
            "fuzz_kpi".to_owned(),
            kpipe_kpi::KpiDefinitionConfig {
                formula: Some(text.to_owned()),
                // A new KPI names its stage; without one it is refused before its formula is read.
                stage: Some(kpipe_kpi::Stage::Awareness),
                scale: None,
                unit: None,
                description: None,
                filter: BTreeMap::new(),
                enabled: None,
            },
        );
        kpipe_kpi::Catalog::new(&user).is_ok()
    }
}

// ---------------------------------------------------------------------------------------------
// State: a source's state object (or the single file of earlier versions), read by opening
// the state store of an output holding it.

struct State {
    dir: tempfile::TempDir,
    object: PathBuf,
    legacy: PathBuf,
}

impl State {
    fn new() -> Result<State, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a folder: {e}"))?;
        let object = dir.path().join(".kpipe/state/fuzz.json");
        let legacy = dir.path().join(".kpipe/state.json");
        if let Some(parent) = object.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
        }
        Ok(State { dir, object, legacy })
    }
}

impl Runner for State {
    fn run(&mut self, input: &[u8]) -> bool {
        // The file of earlier versions holds every source under `sources`.
        let is_legacy = input.windows(9).any(|w| w == b"\"sources\"");
        let (path, other) =
            if is_legacy { (&self.legacy, &self.object) } else { (&self.object, &self.legacy) };
        let _ = std::fs::remove_file(other);
        if std::fs::write(path, input).is_err() {
            return false;
        }
        let storage = kpipe_storage::Storage::local(self.dir.path());
        match kpipe_cli::state::StateStore::open(&storage) {
            Ok(store) => {
                let window = window().ok();
                if let Some(window) = window {
                    let _ = store.plan("fuzz", window, false);
                    let _ = store.account_days("fuzz", window);
                }
                let _ = store.counts("fuzz");
                true
            }
            Err(_) => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generators: inputs of each target's shape with values drawn from the edges of their types.

const JSON_LEAVES: &[&str] = &[
    "0",
    "1",
    "-1",
    "12",
    "1.5",
    "1e3",
    "-0.0",
    "1e309",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999",
    "null",
    "true",
    "false",
    "\"\"",
    "\"0\"",
    "\"12\"",
    "\"-3\"",
    "\"14.35\"",
    "\"1.594444\"",
    "\"1e5\"",
    "\"NaN\"",
    "\"inf\"",
    "\"99999999999999999999999999999999\"",
    "\"0.0000000000000000000000000001\"",
    "\"2024-05-01\"",
    "\"2024-02-30\"",
    "\"9999-12-31\"",
    "\"20240501\"",
    "\"2024-05-01T07:00:00+0000\"",
    "\"2024-01-15T09:12:44.201Z\"",
    "\"1714546800000\"",
    "\"-62135596800001\"",
    "\"USD\"",
    "\"EUR\"",
    "\"usd\"",
    "\"XXX\"",
    "\"caf\\u00e9\"",
    "\"\\ud800\"",
    "\"\u{202e}x\"",
    "\"urn:li:sponsoredCampaign:252074216\"",
    "\"urn:li:sponsoredCreative:1337\"",
    "\"urn:li:sponsoredCampaign:\"",
    "\"urn:li:organization:2414183\"",
    "\"link_click\"",
    "\"offsite_conversion.fb_pixel_purchase\"",
    "\"lead\"",
    "\"NPS\"",
    "\"CSAT\"",
    "\"PROMOTER\"",
    "\"returning\"",
    "\"TYPE_INTEGER\"",
    "\"TYPE_CURRENCY\"",
    "\"TYPE_FLOAT\"",
    "\"TYPE_SECONDS\"",
    "\"TYPE_MILLISECONDS\"",
    "\"Organic Search\"",
    "1714546800000",
    "{\"year\":2024,\"month\":5,\"day\":1}",
    "{\"year\":2024,\"month\":2,\"day\":30}",
    "{\"value\":\"3\"}",
    "{}",
    "[]",
];

/// A JSON value of at most `depth` levels with keys from `keys`.
fn json_value(rng: &mut Rng, depth: usize, keys: &[&str], out: &mut String) {
    match if depth == 0 { 0 } else { rng.below(4) } {
        1 => {
            out.push('{');
            for i in 0..rng.below(6) {
                if i > 0 {
                    out.push(',');
                }
                let key = rng.pick(keys).copied().unwrap_or("k");
                out.push('"');
                out.push_str(key);
                out.push_str("\":");
                json_value(rng, depth - 1, keys, out);
            }
            out.push('}');
        }
        2 => {
            out.push('[');
            for i in 0..rng.below(5) {
                if i > 0 {
                    out.push(',');
                }
                json_value(rng, depth - 1, keys, out);
            }
            out.push(']');
        }
        _ => out.push_str(rng.pick(JSON_LEAVES).copied().unwrap_or("0")),
    }
}

/// `{"<list>": [elements...], <extra>}`: an envelope of objects with members from `keys`.
fn envelope(rng: &mut Rng, list: &str, keys: &[&str], extra: &str) -> Vec<u8> {
    let mut out = format!("{{\"{list}\":[");
    for i in 0..rng.below(12) {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        for j in 0..1 + rng.below(keys.len()) {
            if j > 0 {
                out.push(',');
            }
            let key = rng.pick(keys).copied().unwrap_or("k");
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
            json_value(rng, 3, keys, &mut out);
        }
        out.push('}');
    }
    out.push(']');
    out.push_str(extra);
    out.push('}');
    out.into_bytes()
}

fn gen_linkedin(rng: &mut Rng) -> Vec<u8> {
    const KEYS: &[&str] = &[
        "pivotValues",
        "dateRange",
        "start",
        "end",
        "year",
        "month",
        "day",
        "impressions",
        "clicks",
        "costInLocalCurrency",
        "costInUsd",
        "externalWebsiteConversions",
        "approximateMemberReach",
        "likes",
        "videoCompletions",
        "oneClickLeads",
        "timeRange",
        "followerGains",
        "organicFollowerGain",
        "paidFollowerGain",
        "totalShareStatistics",
        "shareCount",
        "impressionCount",
        "engagement",
        "organizationalEntity",
        "id",
    ];
    envelope(rng, "elements", KEYS, ",\"paging\":{\"start\":0,\"count\":10}")
}

fn gen_facebook(rng: &mut Rng) -> Vec<u8> {
    const KEYS: &[&str] = &[
        "account_id",
        "account_currency",
        "campaign_id",
        "campaign_name",
        "adset_id",
        "adset_name",
        "ad_id",
        "ad_name",
        "date_start",
        "date_stop",
        "impressions",
        "clicks",
        "spend",
        "reach",
        "frequency",
        "actions",
        "action_values",
        "action_type",
        "value",
        "7d_click",
        "name",
        "period",
        "values",
        "end_time",
        "id",
        "error",
        "code",
        "message",
        "error_subcode",
    ];
    let extra = if rng.one_in(2) {
        ",\"paging\":{\"cursors\":{\"after\":\"MjQZD\"},\"next\":\"https://graph.facebook.com/v20.0/act_1/insights?after=x\"}"
    } else {
        ""
    };
    envelope(rng, "data", KEYS, extra)
}

fn gen_hubspot(rng: &mut Rng) -> Vec<u8> {
    const KEYS: &[&str] = &[
        "id",
        "properties",
        "createdate",
        "lastmodifieddate",
        "lifecyclestage",
        "hs_analytics_source",
        "amount",
        "dealstage",
        "pipeline",
        "closedate",
        "deal_currency_code",
        "hs_survey_id",
        "hs_survey_type",
        "hs_value",
        "hs_createdate",
        "hs_response_group",
        "createdAt",
        "submittedAt",
        "interval",
        "aggregations",
        "counters",
        "delivered",
        "open",
        "click",
        "stages",
        "metadata",
        "isClosed",
        "portalId",
        "utcOffset",
    ];
    envelope(rng, "results", KEYS, ",\"paging\":{\"next\":{\"after\":\"52\"}}")
}

/// The reports the connector asks for: every GA4 answer is read against one of them.
fn ga4_specs() -> [kpipe_connector_google_analytics::reports::ReportSpec; 3] {
    use kpipe_connector_google_analytics::reports::ReportSpec;
    [ReportSpec::traffic(), ReportSpec::property_totals(), ReportSpec::returning_users()]
}

/// GA4's type of an API metric, as its answers give it.
fn ga4_type(metric: &str) -> &'static str {
    match metric {
        "userEngagementDuration" | "averageSessionDuration" => "TYPE_SECONDS",
        "purchaseRevenue" | "totalRevenue" => "TYPE_CURRENCY",
        "engagementRate" | "bounceRate" | "conversions" | "keyEvents" => "TYPE_FLOAT",
        _ => "TYPE_INTEGER",
    }
}

/// The seeds of the documentation, and a well-formed answer to each report the connector asks.
fn ga4_seeds() -> Vec<&'static str> {
    let mut seeds = seeds::GA4.to_vec();
    let mut rng = Rng::new(4);
    for spec in &ga4_specs() {
        // Leaked once per process: the seeds live as long as the run.
        let report = String::from_utf8_lossy(&ga4_report(&mut rng, spec, false)).into_owned();
        seeds.push(Box::leak(report.into_boxed_str()));
    }
    seeds
}

/// A report answer to `spec` (its headers, sometimes changed, when `vary`), rows with values
/// from the edges of their types.
fn ga4_report(
    rng: &mut Rng,
    spec: &kpipe_connector_google_analytics::reports::ReportSpec,
    vary: bool,
) -> Vec<u8> {
    const DIMENSIONS: &[&str] = &["date", "sessionDefaultChannelGroup", "newVsReturning", "country", ""];
    const TYPES: &[&str] = &[
        "TYPE_INTEGER",
        "TYPE_FLOAT",
        "TYPE_SECONDS",
        "TYPE_MILLISECONDS",
        "TYPE_CURRENCY",
        "TYPE_STANDARD",
        "X",
    ];
    const DIMENSION_VALUES: &[&str] = &[
        "\"20240501\"",
        "\"20240229\"",
        "\"20240230\"",
        "\"99991231\"",
        "\"2024-05-01\"",
        "\"\"",
        "\"Organic Search\"",
        "\"Paid Social\"",
        "\"google\"",
        "\"cpc\"",
        "\"returning\"",
        "\"new\"",
        "\"(not set)\"",
        "\"(other)\"",
        "12",
        "null",
    ];
    const METRIC_VALUES: &[&str] = &[
        "\"0\"",
        "\"1532\"",
        "\"-3\"",
        "\"0.6481723237597912\"",
        "\"187.23406720626632\"",
        "\"2450.5\"",
        "\"1e5\"",
        "\"1e400\"",
        "\"NaN\"",
        "\"Infinity\"",
        "\"99999999999999999999999999999999999\"",
        "\"0.00000000000000000000000000000001\"",
        "\"\"",
        "\"x\"",
        "12",
        "null",
    ];
    let mut dimensions: Vec<&str> = spec.dimensions.iter().map(String::as_str).collect();
    let mut metrics: Vec<(&str, &str)> = spec.metrics.iter().map(|m| (m.as_str(), ga4_type(m))).collect();
    if vary && rng.one_in(4) {
        match rng.below(4) {
            0 => dimensions.push(rng.pick(DIMENSIONS).copied().unwrap_or("")),
            1 => {
                dimensions.pop();
            }
            2 => {
                if let Some(m) = metrics.get_mut(rng.below(spec.metrics.len())) {
                    m.1 = rng.pick(TYPES).copied().unwrap_or("");
                }
            }
            _ => {
                metrics.pop();
            }
        }
    }
    let mut out = String::from("{\"dimensionHeaders\":[");
    let headers: Vec<String> = dimensions.iter().map(|d| format!("{{\"name\":\"{d}\"}}")).collect();
    out.push_str(&headers.join(","));
    out.push_str("],\"metricHeaders\":[");
    let headers: Vec<String> =
        metrics.iter().map(|(m, t)| format!("{{\"name\":\"{m}\",\"type\":\"{t}\"}}")).collect();
    out.push_str(&headers.join(","));
    out.push_str("],\"rows\":[");
    let rows = if vary { rng.below(8) } else { 2 };
    for r in 0..rows {
        out.push_str(if r > 0 { ",{" } else { "{" });
        for (key, n, pool) in [
            ("dimensionValues", dimensions.len(), DIMENSION_VALUES),
            ("metricValues", metrics.len(), METRIC_VALUES),
        ] {
            out.push_str(&format!("\"{key}\":["));
            // Now and then one value too many or too few.
            let n = if vary && rng.one_in(10) { rng.below(n + 2) } else { n };
            let values: Vec<String> = (0..n)
                .map(|i| {
                    let value = if !vary || rng.one_in(3) {
                        if key == "dimensionValues" && i == 0 { "\"20240501\"" } else { "\"1\"" }
                    } else {
                        rng.pick(pool).copied().unwrap_or("null")
                    };
                    if value == "\"\"" { "{}".to_owned() } else { format!("{{\"value\":{value}}}") }
                })
                .collect();
            out.push_str(&values.join(","));
            out.push_str(if key == "dimensionValues" { "]," } else { "]" });
        }
        out.push('}');
    }
    out.push_str("],\"rowCount\":");
    if vary {
        json_value(rng, 0, &[], &mut out);
    } else {
        out.push_str(&rows.to_string());
    }
    out.push_str(",\"metadata\":{\"currencyCode\":\"USD\"},\"propertyQuota\":");
    json_value(
        rng,
        3,
        &["tokensPerDay", "tokensPerHour", "consumed", "remaining", "concurrentRequests"],
        &mut out,
    );
    out.push('}');
    out.into_bytes()
}

fn gen_ga4(rng: &mut Rng) -> Vec<u8> {
    let specs = ga4_specs();
    let spec = &specs[rng.below(specs.len())];
    if rng.one_in(4) {
        // A batchRunReports answer: several reports in one body.
        let reports: Vec<String> = (0..1 + rng.below(3))
            .map(|_| String::from_utf8_lossy(&ga4_report(rng, spec, true)).into_owned())
            .collect();
        format!("{{\"reports\":[{}],\"kind\":\"analyticsData#batchRunReports\"}}", reports.join(","))
            .into_bytes()
    } else {
        ga4_report(rng, spec, true)
    }
}

fn gen_csv(rng: &mut Rng) -> Vec<u8> {
    const HEADERS: &[&str] = &[
        "date,platform,account,level,entity,metric,value,currency",
        "date,rep,invites_sent,invites_accepted,replies,interested",
        "date,respondent,score,satisfied",
        "date,respondent,satisfied",
        "date;respondent;score",
        "Date,Platform,Account,Level,Entity,Metric,Value",
    ];
    const CELLS: &[&str] = &[
        "2026-03-01",
        "2026-02-30",
        "9999-12-31",
        "2019-12-31",
        "0000-01-01",
        "linkedin",
        "files",
        "Not Snake",
        "508",
        "campaign",
        "c1",
        "spend",
        "impressions",
        "clicks",
        "linkedin.booth_visits",
        "unknown_metric",
        "3",
        "0",
        "-1",
        "10",
        "11",
        "24.457317520310493",
        "1e400",
        "NaN",
        "4294967296",
        "99999999999999999999999999999",
        "EUR",
        "usd",
        "",
        "yes",
        "no",
        "maybe",
        "\"quoted, cell\"",
        "\"\"\"\"",
        "\"open",
        " 7 ",
        "r1",
        "alice",
    ];
    let mut out = String::new();
    out.push_str(rng.pick(HEADERS).copied().unwrap_or(""));
    out.push('\n');
    let delimiter = if rng.one_in(6) { ';' } else { ',' };
    for _ in 0..rng.below(20) {
        let cells = 1 + rng.below(9);
        for c in 0..cells {
            if c > 0 {
                out.push(delimiter);
            }
            out.push_str(rng.pick(CELLS).copied().unwrap_or(""));
        }
        out.push_str(if rng.one_in(5) { "\r\n" } else { "\n" });
    }
    out.into_bytes()
}

fn gen_config(rng: &mut Rng) -> Vec<u8> {
    const TABLES: &[&str] = &[
        "[pipeline]",
        "[pipeline.storage]",
        "[sources.a]",
        "[sources.b]",
        "[kpis.k]",
        "[kpis.ctr]",
        "[kpis_settings]",
        "[[sources]]",
        "[sources.a.options]",
        "[kpis.k.filter]",
    ];
    const KEYS: &[&str] = &[
        "output",
        "lookback_days",
        "start_date",
        "schedule",
        "timezone",
        "type",
        "kind",
        "path",
        "delimiter",
        "platform",
        "account_id",
        "survey",
        "account_ids",
        "ad_account_ids",
        "access_token",
        "client_id",
        "client_secret",
        "refresh_token",
        "secrets_file",
        "property_ids",
        "levels",
        "formula",
        "stage",
        "scale",
        "unit",
        "enabled",
        "grains",
        "scopes",
        "region",
        "endpoint",
        "allow_http",
        "page_ids",
        "base_url",
        "horizon_days",
        "currency_rates",
    ];
    const VALUES: &[&str] = &[
        "\"files\"",
        "\"linkedin\"",
        "\"facebook\"",
        "\"hubspot\"",
        "\"google_analytics\"",
        "\"metrics\"",
        "\"survey\"",
        "\"out\"",
        "\"s3://b/p\"",
        "\"${X}\"",
        "\"${NAME}\"",
        "\"${EMPTY}\"",
        "\"${UNSET}\"",
        "\"$${X}\"",
        "\"${\"",
        "28",
        "0",
        "-1",
        "4294967296",
        "9223372036854775807",
        "1e400",
        "nan",
        "inf",
        "true",
        "\"2025-01-01\"",
        "2025-01-01",
        "1979-05-27T07:32:00Z",
        "\"0 3 * * *\"",
        "\"* * * * * * *\"",
        "\"Europe/Berlin\"",
        "\"Mars/Olympus\"",
        "[\"1\", \"2\"]",
        "[]",
        "{}",
        "{ a = 1 }",
        "\"clicks / impressions\"",
        "\"a / (b\"",
        "\";\"",
        "\"\\u00e9\"",
        "'''x'''",
        "\"\"\"\nx\"\"\"",
    ];
    let mut out = String::new();
    for _ in 0..1 + rng.below(6) {
        out.push_str(rng.pick(TABLES).copied().unwrap_or(""));
        out.push('\n');
        for _ in 0..rng.below(6) {
            out.push_str(rng.pick(KEYS).copied().unwrap_or("k"));
            out.push_str(" = ");
            out.push_str(rng.pick(VALUES).copied().unwrap_or("1"));
            out.push('\n');
        }
    }
    out.into_bytes()
}

fn formula_expr(rng: &mut Rng, depth: usize, out: &mut String) {
    const METRICS: &[&str] = &[
        "clicks",
        "impressions",
        "spend",
        "revenue",
        "sessions",
        "leads",
        "likes",
        "followers",
        "linkedin.booth_visits",
        "nps_promoters",
        "unknown",
        "x",
        "_",
        "a.b.c",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "100",
        "0.5",
        "1e3",
        "1e400",
        "99999999999999999999999999999999999999999",
        "0.0000000000000000000001",
    ];
    match if depth == 0 { rng.below(2) } else { rng.below(8) } {
        0 => out.push_str(rng.pick(METRICS).copied().unwrap_or("x")),
        1 => out.push_str(rng.pick(NUMBERS).copied().unwrap_or("1")),
        2 | 3 => {
            formula_expr(rng, depth - 1, out);
            out.push_str([" + ", " - ", " * ", " / ", "*", "/"][rng.below(6)]);
            formula_expr(rng, depth - 1, out);
        }
        4 => {
            out.push('(');
            formula_expr(rng, depth - 1, out);
            out.push(')');
        }
        5 => {
            out.push('-');
            formula_expr(rng, depth - 1, out);
        }
        6 => {
            out.push_str(if rng.one_in(2) { "start(" } else { "coalesce(" });
            for i in 0..1 + rng.below(3) {
                if i > 0 {
                    out.push_str(", ");
                }
                formula_expr(rng, depth - 1, out);
            }
            out.push(')');
        }
        _ => {
            out.push_str(rng.pick(METRICS).copied().unwrap_or("x"));
            out.push_str(
                ["[channel = 'Organic Social' | 'Paid Social']", "[a = 'b']", "[]", "[x = ]"][rng.below(4)],
            );
        }
    }
}

fn gen_formula(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    let depth = 1 + rng.below(6);
    formula_expr(rng, depth, &mut out);
    out.into_bytes()
}

fn gen_state(rng: &mut Rng) -> Vec<u8> {
    const DAYS: &[&str] = &[
        "2026-03-01",
        "2026-03-09",
        "2026-02-28",
        "2024-02-29",
        "0001-01-01",
        "9999-12-31",
        "+262143-12-31",
        "-262144-01-01",
        "2026-03-01",
    ];
    const STATUS: &[&str] = &["final", "provisional", "Final", "none"];
    let mut span = |rng: &mut Rng, full: bool| {
        let from = rng.pick(DAYS).copied().unwrap_or("");
        let to = rng.pick(DAYS).copied().unwrap_or("");
        let status = rng.pick(STATUS).copied().unwrap_or("");
        if full {
            format!(
                "{{\"from\":\"{from}\",\"to\":\"{to}\",\"status\":\"{status}\",\"pulled_on\":\"{to}\",\
                 \"pulled_at\":\"2026-03-10T02:00:00Z\",\"run_id\":\"r\"}}"
            )
        } else {
            format!("{{\"from\":\"{from}\",\"to\":\"{to}\",\"status\":\"{status}\"}}")
        }
    };
    let list = |rng: &mut Rng, full: bool, span: &mut dyn FnMut(&mut Rng, bool) -> String| {
        let items: Vec<String> = (0..rng.below(6)).map(|_| span(rng, full)).collect();
        format!("[{}]", items.join(","))
    };
    let days = list(rng, true, &mut span);
    let accounts = list(rng, false, &mut span);
    let streams = list(rng, false, &mut span);
    let through = rng.pick(DAYS).copied().unwrap_or("");
    format!(
        "{{\"version\":2,\"source\":\"fuzz\",\"days\":{days},\"accounts\":{{\"508\":{accounts}}},\
         \"streams\":{{\"ads\":{streams}}},\"cursors\":{{\"ads\":{{\"508\":{{\"through\":\"{through}\",\
         \"run_id\":\"r\",\"advanced_at\":\"2026-03-10T02:00:01Z\"}}}}}}}}"
    )
    .into_bytes()
}
