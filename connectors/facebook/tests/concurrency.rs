//! `concurrency`: several accounts' synchronous insights listings read at once against the
//! simulated Graph API (`shared/apis/facebook.md` §2 shapes, §3 "reduce the amount of data"),
//! answers arriving out of order. The rows are those of a one-at-a-time pull, interleaved in
//! the order the answers came.

mod common;

use common::{FacebookHarness, LEVELS, SEED, Scope, expected, window};
use kpipe_sim::platform::facebook::{self, FacebookGraph, SimAdAccount};
use kpipe_sim::{Fault, FaultRule, Latency, SimServer};
use kpipe_testkit::{Harness, Pulled, Setup, build_source, pull};

const ACCOUNTS: [&str; 5] =
    ["101000000000011", "101000000000012", "101000000000013", "101000000000014", "101000000000015"];

fn harness(extra: &str) -> FacebookHarness {
    let graph = FacebookGraph {
        ad_accounts: ACCOUNTS
            .iter()
            .map(|id| SimAdAccount::new(id, id, "USD", "America/Los_Angeles", -8))
            .collect(),
        pages: Vec::new(),
        ..FacebookGraph::default()
    };
    let scope =
        Scope { accounts: ACCOUNTS.to_vec(), levels: LEVELS.to_vec(), pages: vec![], ..Scope::default() };
    // Pages of 4 rows: listings of several pages. (The harness paces the source at 50 a second.)
    let extra = format!("page_size = 4\n{extra}");
    FacebookHarness::custom(graph, scope, &extra)
}

async fn pulled_with(extra: &str, fault: Option<FaultRule>) -> (FacebookHarness, Pulled) {
    let h = harness(extra);
    // Answers take 10-60 ms, so requests sent together come back in another order.
    let mut config = h.sim_config(SEED).with_latency(Latency::uniform_ms(10, 60));
    if let Some(fault) = fault {
        config = config.with_fault(fault);
    }
    let sim = SimServer::start(config).await.expect("the simulator starts");
    let source = build_source(&h, &sim, Setup::default(), None);
    let pulled = pull(source.as_ref(), window("2026-03-01", "2026-03-03")).await;
    (h, pulled)
}

fn rows(pulled: &Pulled) -> Vec<String> {
    let mut rows: Vec<String> = pulled
        .rows
        .iter()
        .map(|r| format!("{:?} {:?} {} {:?} {}", r.account_id, r.entity_id, r.date, r.metric, r.value))
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_asked_for_together_write_what_one_at_a_time_writes() {
    let days = window("2026-03-01", "2026-03-03");
    let (_, alone) = pulled_with("concurrency = 1", None).await;
    let (h, together) = pulled_with("concurrency = 6", None).await;
    together.expect_ok("six at a time");
    assert!(together.quarantined.is_empty(), "{:?}", together.quarantined);
    together.totals().assert_eq(&expected(&h.graph, SEED, days, &h.scope), "six at a time");
    assert_eq!(rows(&together), rows(&alone), "the same rows, none twice");
    assert_eq!(together.completed, alone.completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_page_asked_for_ahead_may_still_ask_for_less_data() {
    let days = window("2026-03-01", "2026-03-03");
    // The first insights request of the third account is told to reduce the data (§3).
    let path = format!("/{}/act_{}/insights", facebook::DEFAULT_API_VERSION, ACCOUNTS[2]);
    let fault = FaultRule::on_request(1, Fault::Respond(facebook::reduce_data())).on_path(path);
    let (h, pulled) = pulled_with("concurrency = 4", Some(fault)).await;
    pulled.expect_ok("reduce data ahead");
    pulled.totals().assert_eq(&expected(&h.graph, SEED, days, &h.scope), "reduce data ahead");
}
