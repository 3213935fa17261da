//! The `shards-5k` scenario: one configuration of 5,000 units (ad accounts, portals, properties)
//! pulled by 8 `kpipe run --shard K/8 --no-kpis` processes at once into an S3-compatible server
//! (moto on 127.0.0.1), against one simulator process that enforces the platforms' limits,
//! the application-wide ones across every shard; then one `kpipe kpis`.
//!
//! What it reports: the shards' wall time against the quota-bound minimum, the requests refused
//! over a quota (which must be none), each shard's peak memory, the size of the state, the rows
//! written, and whether the output holds every (source, account, day) the simulator has data
//! for, each row exactly once (read back from the bucket's metric files).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::{Array, Date32Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use kpipe_core::{Dimensions, Shard};
use kpipe_sim::platform::facebook::InsightsLevel;
use kpipe_sim::platform::ga4::ReportQuery;
use kpipe_sim::platform::hubspot::TruthOptions;
use kpipe_sim::platform::linkedin::Pivot;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::analysis::{QuotaBound, quota_bound};
use crate::measure::Usage;
use crate::report::{Figure, ScenarioReport, Verdict};
use crate::run::{
    ObjectOutput, Options, RunError, SimProcess, group, io, log_tail, measured, protocol, spawn_measured,
};
use crate::scenario::{Plan, SEED, Scenario};
use crate::serve::{SimStats, facebook_graph, ga4_api, hubspot_portal_api, linkedin_api, published};
use crate::summary::RunSummary;

/// Where in the bucket the output goes.
const PREFIX: &str = "shards";

/// Runs the scenario.
pub fn run(options: &Options) -> Result<ScenarioReport, RunError> {
    let scenario = Scenario::Shards5k;
    let plan = scenario.plan(options.quick);
    let dir = options.work_dir.join(scenario.name());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(format!("cannot empty {}", dir.display())))?;
    }
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let server = kpipe_testkit::services::s3_server().map_err(|e| protocol("the S3 server", e))?;
    let object = ObjectOutput::s3(&server, PREFIX);
    let sims = SimProcess::start(&options.bench, scenario, options.quick)?;
    let toml = crate::config::sharded_toml(&plan, &sims.endpoints, &object)
        .map_err(|e| protocol("the configuration", e))?;
    let config = dir.join("kpipe.toml");
    std::fs::write(&config, toml).map_err(io(format!("cannot write {}", config.display())))?;

    let (from, to) = plan.window();
    let kpipe = options.kpipe.display().to_string();
    let common = |command: &str| -> Vec<String> {
        vec![
            kpipe.clone(),
            command.to_owned(),
            "-c".into(),
            config.display().to_string(),
            "--from".into(),
            from.to_string(),
            "--to".into(),
            to.to_string(),
        ]
    };
    let started = Instant::now();
    let mut children = Vec::new();
    for k in 0..plan.shards {
        let mut command = common("run");
        command.extend([
            "--shard".to_owned(),
            format!("{k}/{}", plan.shards),
            "--no-kpis".to_owned(),
            "--summary-json".to_owned(),
            dir.join(format!("shard-{k}.summary.json")).display().to_string(),
        ]);
        match spawn_measured(&options.bench, &command, &dir, &format!("shard-{k}")) {
            Ok(child) => children.push(child),
            Err(e) => {
                // The ones started run to their end before the scenario fails.
                for child in children {
                    let _ = child.wait();
                }
                return Err(e);
            }
        }
    }
    let usages: Vec<Result<Usage, RunError>> = children.into_iter().map(|c| c.wait()).collect();
    let shards_wall = started.elapsed().as_secs_f64();
    let stats = sims.stop()?;
    let usages: Vec<Usage> = usages.into_iter().collect::<Result<_, _>>()?;
    let mut summaries = Vec::new();
    for (k, usage) in usages.iter().enumerate() {
        let file = dir.join(format!("shard-{k}.summary.json"));
        let text = std::fs::read_to_string(&file).map_err(|_| {
            protocol(
                format!("kpipe run --shard {k}/{}", plan.shards),
                format!(
                    "no summary (exit {:?}): {}",
                    usage.exit_code,
                    log_tail(&dir.join(format!("shard-{k}.log")))
                ),
            )
        })?;
        summaries.push(RunSummary::parse(&text).map_err(|e| protocol(file.display().to_string(), e))?);
    }
    let kpis = measured(&options.bench, &common("kpis"), &dir, "kpis")?;

    let expected = expected_units(&plan);
    let whole: BTreeSet<String> =
        plan.hubspot.map(|p| (1..=p.portals).map(|n| p.source_name(n)).collect()).unwrap_or_default();
    let store = server.object_store();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the runtime that reads the bucket"))?;
    let output = runtime
        .block_on(inspect(store, whole, dir.clone()))
        .map_err(|e| protocol("reading the output back from the bucket", e))?;
    drop(server);
    let run = ShardedRun { plan, usages, shards_wall, summaries, stats, kpis, output, expected };
    Ok(run.report(&dir))
}

/// The (source, account, day) units the simulator has data for: every configured unit on
/// every day of the window with rows (LinkedIn: a creative delivered; Facebook: an ad did;
/// GA4: the property had sessions; HubSpot: a row its truth says a connector must write).
pub fn expected_units(plan: &Plan) -> BTreeSet<(String, String, NaiveDate)> {
    let (since, until) = plan.window();
    let mut out = BTreeSet::new();
    if let Some(p) = &plan.linkedin {
        let api = linkedin_api(p);
        for (source, ids) in p.sources() {
            for id in ids {
                for e in api.ad_analytics(SEED, id, Pivot::Creative, since, until, &["impressions"]) {
                    out.insert((source.clone(), id.to_string(), e.date));
                }
            }
        }
    }
    if let Some(p) = &plan.facebook {
        let graph = facebook_graph(plan, p);
        for (source, ids) in p.sources() {
            for id in ids {
                for row in graph.insights(SEED, &id, InsightsLevel::Ad, since, until) {
                    out.insert((source.clone(), id.clone(), row.date));
                }
            }
        }
    }
    if let Some(p) = &plan.ga4 {
        let api = ga4_api(plan, p);
        let query = ReportQuery::new(since, until, &["date"], &["sessions"]);
        for (source, ids) in p.sources() {
            for id in ids {
                for row in api.report(SEED, &id, &query).map(|t| t.rows).unwrap_or_default() {
                    let day =
                        row.dimensions.first().and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok());
                    if let Some(day) = day {
                        out.insert((source.clone(), id.clone(), day));
                    }
                }
            }
        }
    }
    if let Some(p) = &plan.hubspot {
        for n in 1..=p.portals {
            let api = hubspot_portal_api(p, n);
            let portal = api.portal.id.to_string();
            for row in api.expected_rows(SEED, since, until, &TruthOptions::default()) {
                out.insert((p.source_name(n), portal.clone(), row.date));
            }
        }
    }
    out
}

/// One metric file of the bucket, by its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MetricFile {
    source: String,
    date: NaiveDate,
    /// `None`: written by an unsharded run.
    shard: Option<Shard>,
    key: String,
}

/// `metrics/<source>[-KofN].<YYYY-MM-DD>.parquet`, relative to the output.
fn metric_file(key: &str) -> Option<MetricFile> {
    let file = key.strip_prefix("metrics/")?.strip_suffix(".parquet")?;
    let (writer, day) = file.split_once('.')?;
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok().filter(|_| day.len() == 10)?;
    let (source, shard) = match writer.split_once('-') {
        None => (writer, None),
        Some((source, tag)) => (source, Some(Shard::from_tag(&format!("-{tag}"))?)),
    };
    Some(MetricFile { source: source.to_owned(), date, shard, key: key.to_owned() })
}

/// What one metric file holds.
#[derive(Debug, Default)]
struct FileRows {
    /// A key per row: every column that tells one row from another (all but the value, the
    /// entity's name, and when and by which run it was pulled).
    keys: Vec<String>,
    /// Its accounts and days.
    units: BTreeSet<(String, NaiveDate)>,
    /// Rows whose `source` or `date` is not the file's.
    mislabelled: u64,
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column {name}"))?
        .as_string_opt::<i32>()
        .ok_or_else(|| format!("column {name} is not UTF-8 text"))
}

fn day_of(days_since_epoch: i32) -> Option<NaiveDate> {
    // 719,163 days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
    NaiveDate::from_num_days_from_ce_opt(days_since_epoch.checked_add(719_163)?)
}

fn read_file(file: &MetricFile, bytes: bytes::Bytes) -> Result<FileRows, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(65_536).build())
        .map_err(|e| e.to_string())?;
    let mut out = FileRows::default();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let [platform, source, account, level, entity, metric, unit, currency] =
            ["platform", "source", "account_id", "level", "entity_id", "metric", "unit", "currency"]
                .map(|name| strings(&batch, name));
        let (platform, source, account, level, entity) = (platform?, source?, account?, level?, entity?);
        let (metric, unit, currency) = (metric?, unit?, currency?);
        let dims: Vec<&StringArray> =
            Dimensions::NAMES.iter().map(|d| strings(&batch, d)).collect::<Result<_, _>>()?;
        let dates = batch
            .column_by_name("date")
            .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
            .ok_or("no Date32 column date")?;
        for i in 0..batch.num_rows() {
            let date = day_of(dates.value(i)).ok_or("a date out of range")?;
            if source.value(i) != file.source || date != file.date {
                out.mislabelled += 1;
            }
            let mut key = String::with_capacity(128);
            for part in
                [platform.value(i), source.value(i), account.value(i), level.value(i), entity.value(i)]
            {
                key.push_str(part);
                key.push('\u{1f}');
            }
            key.push_str(&date.to_string());
            for d in &dims {
                key.push('\u{1f}');
                if d.is_valid(i) {
                    key.push_str(d.value(i));
                } else {
                    key.push('\u{0}');
                }
            }
            for part in [metric.value(i), unit.value(i)] {
                key.push('\u{1f}');
                key.push_str(part);
            }
            key.push('\u{1f}');
            if currency.is_valid(i) {
                key.push_str(currency.value(i));
            }
            out.keys.push(key);
            // Rows come account by account: one insertion per run of them.
            let same_as_before =
                i > 0 && account.value(i - 1) == account.value(i) && dates.value(i - 1) == dates.value(i);
            if !same_as_before {
                out.units.insert((account.value(i).to_owned(), date));
            }
        }
    }
    Ok(out)
}

/// What the bucket holds after the run.
#[derive(Debug, Default)]
pub struct Output {
    /// Bytes of the objects under `.kpipe/state/`.
    pub state_bytes: u64,
    /// Objects under `.kpipe/state/`.
    pub state_objects: usize,
    /// Every object of the output and their bytes.
    pub objects: usize,
    /// See [`Output::objects`].
    pub bytes: u64,
    /// Metric files read.
    pub metric_files: usize,
    /// Of which written by shards (`-KofN` in the name).
    pub shard_files: usize,
    /// Rows read from them.
    pub rows: u64,
    /// Row keys found in two files or more (of one source and day).
    pub keys_in_several_files: u64,
    /// Rows repeating a key of the same file.
    pub repeated_within_a_file: u64,
    /// Rows whose source or date is not their file's.
    pub mislabelled_rows: u64,
    /// The (source, account, day) units present.
    pub units: BTreeSet<(String, String, NaiveDate)>,
    /// (source, account) whose rows are in a file of a shard that does not own them.
    pub misplaced: BTreeSet<(String, String)>,
    /// Objects under `metrics/` that are not metric files.
    pub strays: Vec<String>,
}

/// Lists the output, adds up the state, and reads every metric file back.
async fn inspect(
    store: Arc<dyn ObjectStore>,
    whole: BTreeSet<String>,
    dir: std::path::PathBuf,
) -> Result<Output, String> {
    let prefix = StorePath::from(PREFIX);
    let listed: Vec<object_store::ObjectMeta> =
        store.list(Some(&prefix)).try_collect().await.map_err(|e| format!("listing: {e}"))?;
    let mut out = Output::default();
    let mut files = Vec::new();
    let mut listing = String::new();
    for meta in &listed {
        let key = meta.location.as_ref().strip_prefix(PREFIX).unwrap_or(meta.location.as_ref());
        let key = key.trim_start_matches('/');
        listing.push_str(&format!("{}\t{key}\n", meta.size));
        out.objects += 1;
        out.bytes += meta.size;
        if key.starts_with(".kpipe/state/") {
            out.state_objects += 1;
            out.state_bytes += meta.size;
        }
        if key.starts_with("metrics/") {
            match metric_file(key) {
                Some(file) => files.push((file, meta.location.clone())),
                None => out.strays.push(key.to_owned()),
            }
        }
    }
    // The listing stays beside the logs, to look into a figure.
    let _ = std::fs::write(dir.join("bucket.tsv"), listing);
    files.sort();
    out.metric_files = files.len();
    out.shard_files = files.iter().filter(|(f, _)| f.shard.is_some()).count();
    let reads = futures::stream::iter(files.into_iter().enumerate())
        .map(|(i, (file, location))| {
            let store = Arc::clone(&store);
            async move {
                let bytes = store
                    .get(&location)
                    .await
                    .map_err(|e| format!("{}: {e}", file.key))?
                    .bytes()
                    .await
                    .map_err(|e| format!("{}: {e}", file.key))?;
                let read = tokio::task::spawn_blocking(move || {
                    let rows = read_file(&file, bytes).map_err(|e| format!("{}: {e}", file.key));
                    (file, rows)
                })
                .await
                .map_err(|e| e.to_string())?;
                Ok::<_, String>((i, read.0, read.1?))
            }
        })
        // In order: the files of one source and day come one after the other, and only their
        // keys are held at a time.
        .buffered(8);
    futures::pin_mut!(reads);
    let mut group: Option<(String, NaiveDate)> = None;
    let mut seen: HashMap<String, (usize, bool)> = HashMap::new();
    while let Some(read) = reads.next().await {
        let (index, file, rows) = read?;
        let this = (file.source.clone(), file.date);
        if group.as_ref() != Some(&this) {
            seen.clear();
            group = Some(this);
        }
        out.rows += rows.keys.len() as u64;
        out.mislabelled_rows += rows.mislabelled;
        for key in rows.keys {
            match seen.entry(key) {
                Entry::Vacant(v) => {
                    v.insert((index, false));
                }
                Entry::Occupied(mut o) => {
                    let (first, several) = o.get_mut();
                    if *first == index {
                        out.repeated_within_a_file += 1;
                    } else if !*several {
                        *several = true;
                        out.keys_in_several_files += 1;
                    }
                }
            }
        }
        for (account, date) in rows.units {
            if let Some(shard) = file.shard {
                let unit = if whole.contains(&file.source) { "" } else { account.as_str() };
                if !shard.owns(&file.source, unit) {
                    out.misplaced.insert((file.source.clone(), account.clone()));
                }
            }
            out.units.insert((file.source.clone(), account, date));
        }
    }
    Ok(out)
}

/// Everything one run of the scenario produced.
#[derive(Debug)]
struct ShardedRun {
    plan: Plan,
    usages: Vec<Usage>,
    shards_wall: f64,
    summaries: Vec<RunSummary>,
    stats: SimStats,
    kpis: Usage,
    output: Output,
    expected: BTreeSet<(String, String, NaiveDate)>,
}

/// A few of `items`, for a note.
fn some<T: std::fmt::Debug>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().take(3).map(|i| format!("{i:?}")).collect();
    items.join(", ")
}

/// `values` as `0: a, 1: b, ...`.
fn per_shard(values: impl IntoIterator<Item = String>) -> String {
    values.into_iter().enumerate().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}

impl ShardedRun {
    /// The rate each application-wide limit allows a shard: the configured share of the
    /// application's rate, requests per second.
    fn shard_rate(&self, platform: &str) -> Option<f64> {
        let (requests, window) = match platform {
            "linkedin" => (published::LINKEDIN_REQUESTS, published::LINKEDIN_WINDOW),
            "facebook" => (published::FACEBOOK_APP_REQUESTS, published::FACEBOOK_APP_WINDOW),
            "google_analytics" => (published::GA4_REQUESTS, published::GA4_WINDOW),
            _ => return None,
        };
        let app = requests as f64 / self.plan.app_limits.window(window).as_secs_f64();
        Some(app * f64::from(self.plan.app_limits.headroom_pct) / 100.0 / f64::from(self.plan.shards.max(1)))
    }

    /// The longest a shard must take at its share of the application-wide limits: per such
    /// platform, the busiest shard's requests (from its summary) over its share; the largest.
    fn split_bound(&self) -> Option<(f64, String)> {
        let mut best: Option<(f64, String)> = None;
        for kind in ["linkedin", "facebook", "google_analytics"] {
            let Some(rate) = self.shard_rate(kind) else { continue };
            let per: Vec<u64> = self.summaries.iter().map(|s| s.platform(kind).requests).collect();
            let total: u64 = per.iter().sum();
            let Some((k, most)) = per.iter().copied().enumerate().max_by_key(|(_, n)| *n) else { continue };
            let seconds = most as f64 / rate;
            if best.as_ref().is_none_or(|(s, _)| seconds > *s) {
                best = Some((
                    seconds,
                    format!(
                        "set by {kind}: shard {k} sent {} of its {} requests ({:.1}% where 1/{} is {:.1}%) at {rate:.1}/s",
                        group(most),
                        group(total),
                        most as f64 * 100.0 / total.max(1) as f64,
                        self.plan.shards,
                        100.0 / f64::from(self.plan.shards.max(1))
                    ),
                ));
            }
        }
        best
    }

    /// Units each shard pulled: from its summary, else by kpipe's assignment.
    fn units_per_shard(&self) -> String {
        let assigned = units_by_shard(&self.plan);
        per_shard(self.summaries.iter().zip(0..).map(|(s, k)| {
            s.shard.as_ref().map_or_else(|| assigned.get(&k).copied().unwrap_or(0), |x| x.units).to_string()
        }))
    }

    fn report(&self, dir: &Path) -> ScenarioReport {
        let mut report = ScenarioReport::new(Scenario::Shards5k);
        let merged = RunSummary::merge(&self.summaries);
        let bound: QuotaBound = quota_bound(&self.plan, &self.stats, &merged);
        let minimum = bound.bound_s();
        let ratio = |seconds: f64| seconds / minimum.max(f64::EPSILON);
        let scale = self.plan.app_limits.time_scale;
        if let Some(slowest) = bound.slowest() {
            report.push(Figure::new("quota-bound minimum", format!("{minimum:.1} s")).note(format!(
                "set by {}: {} requests at {}; the application-wide limits' windows {scale}x shorter than \
                 published (per-object limits as published)",
                slowest.platform,
                group(slowest.requests),
                slowest.limit
            )));
        }
        let slowest_shard = self.usages.iter().map(|u| u.wall_s).fold(0.0, f64::max);
        report.push(
            Figure::new(
                "shards: wall / bound",
                format!("{:.1} s / {:.2}", self.shards_wall, ratio(self.shards_wall)),
            )
            .note(format!(
                "{} processes at once, from the first start to the last exit; each shard: {} s",
                self.plan.shards,
                per_shard(self.usages.iter().map(|u| format!("{:.0}", u.wall_s)))
            )),
        );
        if let Some((seconds, how)) = self.split_bound() {
            report.push(
                Figure::new("bound at the shards' shares", format!("{seconds:.1} s / {:.2}", ratio(seconds)))
                    .note(format!(
                        "{how}; kpipe configured to {}% of each application limit, 1/{} of it per shard; \
                         slowest shard {slowest_shard:.1} s",
                        self.plan.app_limits.headroom_pct, self.plan.shards
                    )),
            );
        }
        let refused = self.stats.refused_over_quota();
        let mut why: Vec<String> = Vec::new();
        for (platform, s) in &self.stats.platforms {
            for (rule, n) in &s.rejections {
                why.push(format!("{platform} {rule}: {n}"));
            }
            if s.platform_refusals > 0 {
                why.push(format!("{platform} platform budgets: {}", s.platform_refusals));
            }
        }
        report.push(
            Figure::new("requests refused over quota", refused.to_string())
                .target("0", Verdict::of(refused == 0))
                .note(if why.is_empty() {
                    "the simulator's counters (requests_over_quota and the platforms' budgets), every shard"
                        .to_owned()
                } else {
                    why.join("; ")
                }),
        );
        crate::run::push_platform_bounds(&mut report, &bound);
        let peak = self.usages.iter().map(Usage::max_rss_mib).fold(0.0, f64::max);
        report.push(
            Figure::new("peak RSS, largest shard", format!("{peak:.0} MiB"))
                .target("< 150 MB", Verdict::of(peak * 1.048_576 < 150.0))
                .note(format!(
                    "per shard (MiB): {}",
                    per_shard(self.usages.iter().map(|u| format!("{:.0}", u.max_rss_mib())))
                )),
        );
        let cpu: f64 = self.usages.iter().map(Usage::cpu_s).sum();
        report.push(
            Figure::new("CPU (user + sys), all shards", format!("{cpu:.1} s"))
                .note(format!("units per shard: {}", self.units_per_shard())),
        );
        report.push(Figure::new(
            "kpipe kpis: wall / CPU / peak RSS",
            format!(
                "{:.1} s / {:.1} s / {:.0} MiB",
                self.kpis.wall_s,
                self.kpis.cpu_s(),
                self.kpis.max_rss_mib()
            ),
        ));
        let failed_exits: Vec<String> = self
            .usages
            .iter()
            .enumerate()
            .filter(|(_, u)| u.exit_code != Some(0))
            .map(|(k, u)| {
                format!(
                    "shard {k}: exit {:?}: {}",
                    u.exit_code,
                    log_tail(&dir.join(format!("shard-{k}.log")))
                )
            })
            .chain((self.kpis.exit_code != Some(0)).then(|| {
                format!("kpis: exit {:?}: {}", self.kpis.exit_code, log_tail(&dir.join("kpis.log")))
            }))
            .collect();
        if !failed_exits.is_empty() {
            report.push(
                Figure::new("processes that failed", failed_exits.len().to_string())
                    .target("0", Verdict::Missed)
                    .note(failed_exits.join("; ")),
            );
        }
        let o = &self.output;
        report.push(Figure::new("state size", format!("{} bytes", group(o.state_bytes))).note(format!(
            "{} objects under .kpipe/state/; the output: {} objects, {} bytes",
            o.state_objects,
            group(o.objects as u64),
            group(o.bytes)
        )));
        let written = merged.rows();
        report.push(
            Figure::new("rows written / read back", format!("{} / {}", group(written), group(o.rows)))
                .target("equal", Verdict::of(written == o.rows))
                .note(format!(
                    "the shards' summaries; the {} metric files ({} of shards) read from the bucket",
                    group(o.metric_files as u64),
                    group(o.shard_files as u64)
                )),
        );
        let missing: Vec<_> = self.expected.difference(&o.units).collect();
        let unexpected: Vec<_> = o.units.difference(&self.expected).collect();
        let present = self.expected.len() - missing.len();
        let mut note = format!(
            "every configured unit on every day the simulator has data for; {} missing, {} not expected",
            missing.len(),
            unexpected.len()
        );
        if !missing.is_empty() {
            note.push_str(&format!("; missing e.g. {}", some(missing.iter())));
        }
        if !unexpected.is_empty() {
            note.push_str(&format!("; not expected e.g. {}", some(unexpected.iter())));
        }
        report.push(
            Figure::new(
                "(source, account, day) present",
                format!("{} of {}", group(present as u64), group(self.expected.len() as u64)),
            )
            .target("all, none else", Verdict::of(missing.is_empty() && unexpected.is_empty()))
            .note(note),
        );
        let mut note = format!(
            "rows keyed by source, account, level, entity, day, dimensions, metric, unit and currency, over \
             every file of a source and day; {} rows repeat a key of their own file, {} are in a file not of their source \
             or day",
            group(o.repeated_within_a_file),
            group(o.mislabelled_rows)
        );
        if !o.strays.is_empty() {
            note.push_str(&format!(
                "; {} objects under metrics/ not named as metric files, e.g. {}",
                o.strays.len(),
                some(&o.strays)
            ));
        }
        let once = o.keys_in_several_files == 0 && o.repeated_within_a_file == 0 && o.mislabelled_rows == 0;
        report.push(
            Figure::new("rows in two files or more", group(o.keys_in_several_files))
                .target("0", Verdict::of(once))
                .note(note),
        );
        report.push(
            Figure::new("accounts in another shard's files", o.misplaced.len().to_string())
                .target("0", Verdict::of(o.misplaced.is_empty()))
                .note(if o.misplaced.is_empty() {
                    "each unit's rows only in files of the shard that owns it".to_owned()
                } else {
                    format!("e.g. {}", some(&o.misplaced))
                }),
        );
        report.extend(self.status_figure());
        report
    }

    /// Sources that did not succeed, in any shard.
    fn status_figure(&self) -> Option<Figure> {
        let mut notes: Vec<String> = Vec::new();
        for (k, s) in self.summaries.iter().enumerate() {
            for x in s.sources.iter().filter(|x| x.status != "succeeded") {
                notes.push(format!(
                    "shard {k} {} {}: {}",
                    x.name,
                    x.status,
                    x.error.as_deref().unwrap_or("")
                ));
            }
        }
        (!notes.is_empty()).then(|| {
            Figure::new("sources not succeeded", notes.len().to_string())
                .target("0", Verdict::Missed)
                .note(notes.join("; "))
        })
    }
}

/// The units each shard of `plan` owns, by kpipe's assignment: per shard, accounts and
/// properties (LinkedIn, Facebook, GA4) and whole sources (HubSpot).
pub fn units_by_shard(plan: &Plan) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    let shards: Vec<Shard> = (0..plan.shards).filter_map(|k| Shard::new(k, plan.shards).ok()).collect();
    let mut count = |source: &str, unit: &str| {
        if let Some(s) = shards.iter().find(|s| s.owns(source, unit)) {
            *out.entry(s.index()).or_default() += 1;
        }
    };
    if let Some(p) = &plan.linkedin {
        for (source, ids) in p.sources() {
            ids.iter().for_each(|id| count(&source, &id.to_string()));
        }
    }
    if let Some(p) = &plan.facebook {
        for (source, ids) in p.sources() {
            ids.iter().for_each(|id| count(&source, id));
        }
    }
    if let Some(p) = &plan.ga4 {
        for (source, ids) in p.sources() {
            ids.iter().for_each(|id| count(&source, id));
        }
    }
    if let Some(p) = &plan.hubspot {
        (1..=p.portals).for_each(|n| count(&p.source_name(n), ""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_file_names_are_read() {
        let f = metric_file("metrics/linkedin_ads_1-3of8.2026-10-02.parquet").unwrap();
        assert_eq!(
            (f.source.as_str(), f.shard, f.date.to_string().as_str()),
            ("linkedin_ads_1", Some(Shard::new(3, 8).unwrap()), "2026-10-02")
        );
        let f = metric_file("metrics/hs_001.2026-10-02.parquet").unwrap();
        assert_eq!((f.source.as_str(), f.shard), ("hs_001", None));
        for bad in [
            "metrics/x.2026-10-2.parquet",
            "metrics/x-9of8.2026-10-02.parquet",
            "metrics/x.parquet",
            "kpis/day.2026-10-02.parquet",
        ] {
            assert!(metric_file(bad).is_none(), "{bad}");
        }
        assert_eq!(day_of(0), NaiveDate::from_ymd_opt(1970, 1, 1));
    }

    #[test]
    fn the_quick_truth_covers_every_unit_and_the_shards_split_them() {
        let plan = Scenario::Shards5k.plan(true);
        let expected = expected_units(&plan);
        let units: BTreeSet<(&str, &str)> =
            expected.iter().map(|(s, a, _)| (s.as_str(), a.as_str())).collect();
        assert_eq!(units.len(), 200, "every unit has data on some day");
        let days: BTreeSet<NaiveDate> = expected.iter().map(|(_, _, d)| *d).collect();
        assert_eq!(days.len(), 7);
        let split = units_by_shard(&plan);
        assert_eq!(split.values().sum::<u64>(), 200);
        assert_eq!(split.len(), 8, "{split:?}");
    }
}
