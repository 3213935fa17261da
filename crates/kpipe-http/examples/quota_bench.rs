//! How much of a platform's quota the rate limiter uses, and whether it ever exceeds it: the
//! simulator answers after `--latency-ms` and refuses (429) any request beyond `--quota`
//! requests in any rolling `--window-s` seconds; `--streams` tasks share one limiter key and send
//! for `--seconds`. Run through `cargo xtask bench http`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kpipe_http::{ApiClient, ApiRequest, HttpClient, RateLimit, RateLimiter};
use kpipe_sim::{Latency, QuotaRule, SimConfig, SimServer};

struct Args {
    streams: Vec<usize>,
    latency_ms: u64,
    quota: u32,
    window_s: u64,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args { streams: vec![1, 4, 32], latency_ms: 100, quota: 100, window_s: 10, seconds: 30 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let num = value.parse::<u64>().unwrap_or_else(|_| {
            eprintln!("{flag} needs a number, got `{value}`");
            std::process::exit(2)
        });
        match flag.as_str() {
            "--streams" => a.streams = vec![num as usize],
            "--latency-ms" => a.latency_ms = num,
            "--quota" => a.quota = num as u32,
            "--window-s" => a.window_s = num,
            "--seconds" => a.seconds = num,
            other => {
                eprintln!(
                    "unknown argument {other}; usage: quota_bench [--streams N] [--latency-ms M] [--quota Q] [--window-s W] [--seconds S]"
                );
                std::process::exit(2)
            }
        }
    }
    a
}

async fn scenario(a: &Args, streams: usize) -> Result<(), String> {
    let window = Duration::from_secs(a.window_s);
    let sim = SimServer::start(
        SimConfig::new(7)
            .with_latency(Latency::fixed_ms(a.latency_ms))
            .with_quota(QuotaRule::rolling_window(u64::from(a.quota), window)),
    )
    .await
    .map_err(|e| e.to_string())?;
    let http = HttpClient::new().map_err(|e| e.to_string())?;
    let limiter = RateLimiter::new(RateLimit::new(a.quota, window)).ok_or("invalid limit")?;
    let api = ApiClient::builder(&http, sim.base_url())
        .map_err(|e| e.to_string())?
        .rate_limit(limiter, "app")
        .build();
    let ok = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (api, ok) = (api.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if api.send(&ApiRequest::get("test/echo")).await.is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let allowed = f64::from(a.quota) * elapsed / window.as_secs_f64();
    let done = ok.load(Ordering::Relaxed);
    println!(
        "quota streams={streams} latency_ms={} quota={}/{}s seconds={elapsed:.1} requests_ok={done} achieved_pct={:.1} over_quota={} sent={}",
        a.latency_ms,
        a.quota,
        a.window_s,
        100.0 * done as f64 / allowed,
        sim.requests_over_quota(),
        sim.requests_total()
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let a = args();
    for streams in a.streams.clone() {
        if let Err(e) = scenario(&a, streams).await {
            eprintln!("quota_bench: {e}");
            std::process::exit(1);
        }
    }
}
