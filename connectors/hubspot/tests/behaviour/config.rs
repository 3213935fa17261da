//! The `[sources.<name>]` table, the private-app token, `check`, and what the settings change in
//! the rows (pipelines filter, lead stages, breakdown by source).

use kpipe_core::{ErrorChain, ErrorKind};
use kpipe_sim::platform::hubspot::{TruthOptions, default_pipelines};

use crate::common::{self, small_portal};
use crate::{SEED, build, pull, start_api, window, with};

fn error_of(extra: &str) -> kpipe_core::ConfigError {
    let table: toml::Table = toml::from_str(extra).expect("TOML");
    match build(table) {
        Ok(_) => panic!("{extra} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn wrong_tables_are_refused_with_the_key_at_fault() {
    let cases = [
        (
            r#"access_token = "pat"
            client_id = "c""#,
            "access_token",
        ),
        (
            r#"client_id = "c"
            client_secret = "s""#,
            "access_token",
        ),
        (
            r#"access_token = "pat"
            token_url = "https://api.hubapi.com/oauth/v1/token""#,
            "token_url",
        ),
        (
            r#"access_token = "pat"
            streams = ["contacts", "tickets"]"#,
            "streams[1]",
        ),
        (
            r#"access_token = "pat"
            lead_lifecycle_stages = ["Lead"]"#,
            "lead_lifecycle_stages[0]",
        ),
        (
            r#"access_token = "pat"
            lead_lifecycle_stages = []"#,
            "lead_lifecycle_stages",
        ),
        (
            r#"access_token = "pat"
            pipelines = []"#,
            "pipelines",
        ),
        (
            r#"access_token = "pat"
            page_size = 0"#,
            "page_size",
        ),
        (
            r#"access_token = "pat"
            portal_tier = "platinum""#,
            "portal_tier",
        ),
        (
            r#"access_token = "pat"
            acces_token = "typo""#,
            "",
        ),
        (
            r#"access_token = "pat"
            base_url = "http://example.com""#,
            "base_url",
        ),
    ];
    for (table, path) in cases {
        let error = error_of(table);
        if path.is_empty() {
            continue;
        }
        assert_eq!(error.path, path, "{table}: {error}");
    }
    assert!(
        error_of(
            r#"access_token = "pat"
                       acces_token = "typo""#
        )
        .message
        .contains("unknown field")
    );
    // A whole table that works.
    let ok: toml::Table = toml::from_str(
        r#"
        access_token = "pat-na1-x"
        portal_tier = "professional"
        lead_lifecycle_stages = ["marketingqualifiedlead", "salesqualifiedlead"]
        leads_by_source = false
        pipelines = ["default"]
        streams = ["contacts", "deals"]
        "#,
    )
    .unwrap();
    let source = build(ok).expect("a valid table");
    let names: Vec<&str> = source.streams().iter().map(|s| s.name).collect();
    assert_eq!(names, ["contacts", "deals"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_app_pulls_with_its_token_and_a_refused_token_fails_as_auth() {
    let api = small_portal();
    let sim = start_api(&api).await;
    let window = window("2026-10-01", "2026-10-03");
    let pulled = pull(common::private_app_table(&sim), window).await;
    pulled.expect_ok("private app");
    pulled.totals().assert_eq(&common::expected(&api, SEED, window, &TruthOptions::default()), "private app");
    assert_eq!(sim.tokens_issued(), 0, "a private app needs no token endpoint");

    let wrong = with(common::private_app_table(&sim), r#"access_token = "pat-na1-revoked-0000""#);
    let failed = pull(wrong, window).await;
    let Err(error) = &failed.result else { panic!("a refused token succeeded") };
    assert_eq!(error.kind(), ErrorKind::Auth);
    let message = ErrorChain(error).to_string();
    assert!(!message.contains("pat-na1-revoked-0000"), "{message}");
    assert!(message.contains("401"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_the_portal_and_every_stream() {
    let sim = start_api(&small_portal()).await;
    let source = build(common::oauth_table(&sim)).unwrap();
    let said = source.check().await.expect("check");
    assert_eq!(
        said,
        "portal 24839204 (US/Eastern, USD): contacts, deals (2 pipeline(s)), forms, emails, feedback readable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_cut_the_rows_as_configured() {
    let api = small_portal();
    let sim = start_api(&api).await;
    let window = window("2026-10-01", "2026-10-03");
    let table = with(
        common::oauth_table(&sim),
        r#"
        streams = ["contacts", "deals"]
        pipelines = ["75138201"]
        lead_lifecycle_stages = ["salesqualifiedlead"]
        leads_by_source = false
        "#,
    );
    let pulled = pull(table, window).await;
    pulled.expect_ok("settings");
    let options = TruthOptions {
        lead_stages: vec!["salesqualifiedlead".into()],
        leads_by_source: false,
        pipelines: Some(vec!["75138201".into()]),
    };
    let expected = common::expected(&api, SEED, window, &options);
    pulled.totals().assert_eq(&common::only(&expected, &["account", "deal_pipeline"]), "settings");
    assert!(pulled.rows.iter().all(|r| r.dimensions.channel.is_none()));
    let renewals = &default_pipelines()[1];
    assert!(pulled.rows.iter().filter(|r| r.level.as_str() == "deal_pipeline").all(|r| {
        r.entity_id.as_str() == renewals.id && r.entity_name.as_deref() == Some(renewals.label.as_str())
    }));

    let unknown = with(common::oauth_table(&sim), r#"pipelines = ["sales"]"#);
    let failed = pull(unknown, window).await;
    let Err(error) = &failed.result else { panic!("an unknown pipeline was accepted") };
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.to_string().contains("\"sales\""), "{error}");
}
