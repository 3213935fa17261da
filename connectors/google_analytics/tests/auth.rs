//! Credentials against the simulator's Google token endpoint (`shared/apis/ga4.md` §7): a
//! service account's key signs an RS256 JWT assertion that the simulator verifies with the
//! account's public key; a refresh token works too; what is wrong is said without the secrets.

mod common;

use kpipe_core::{BuildContext, DateWindow, ErrorChain, ErrorKind};
use kpipe_sim::SimServer;
use kpipe_sim::platform::ga4::{self, Ga4Api};
use kpipe_testkit::pull;

use common::{
    CLIENT_EMAIL, OTHER_PRIVATE_KEY, PRIVATE_KEY, build, day, expected, key_file, sim_config, source_table,
};

const PROPERTY: &str = "123456789";

async fn start() -> SimServer {
    SimServer::start(sim_config(5, Ga4Api::default())).await.expect("the simulator")
}

fn build_error(table: toml::Table) -> String {
    let cx = BuildContext { source_name: "ga4".into(), config_dir: std::env::temp_dir() };
    match kpipe_connector_google_analytics::factory().build(table, &cx) {
        Ok(_) => panic!("the source was built"),
        Err(e) => e.to_string(),
    }
}

fn key_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_an_authentication_error_naming_the_key_file_never_the_key() {
    let sim = start().await;
    let key = key_file(&sim, OTHER_PRIVATE_KEY, "wrong-key");
    let source = build(source_table(&sim, &[PROPERTY], &key));
    let window = DateWindow::new(day("2026-10-01"), day("2026-10-01")).expect("a window");
    let pulled = pull(source.as_ref(), window).await;
    let Err(error) = &pulled.result else { panic!("a wrong key pulled data") };
    assert_eq!(error.kind(), ErrorKind::Auth, "{}", ErrorChain(error));
    let message = format!("{} / {error:?}", ErrorChain(error));
    assert!(message.contains(&key.display().to_string()), "the key file is not named: {message}");
    assert!(message.contains(CLIENT_EMAIL), "{message}");
    assert!(message.contains("Invalid JWT Signature"), "the token endpoint's reason is lost: {message}");
    for line in key_lines(OTHER_PRIVATE_KEY) {
        assert!(!message.contains(line), "the error shows the key: {message}");
    }
    // The simulator checked the signature and issued nothing; no report was asked for.
    assert_eq!(sim.tokens_issued(), 0);
    assert!(sim.requests_for(ga4::TOKEN_PATH) >= 1);
    assert_eq!(sim.auth_rejections(), 0);
    assert!(pulled.rows.is_empty());
    // `check` says the same.
    let error = source.check().await.expect_err("check with a wrong key");
    assert_eq!(error.kind(), ErrorKind::Auth);
    assert!(ErrorChain(&error).to_string().contains(&key.display().to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_key_is_accepted_and_check_reads_every_property() {
    let sim = start().await;
    let key = key_file(&sim, PRIVATE_KEY, "right-key");
    let source = build(source_table(&sim, &["123456789", "987654321"], &key));
    let message = source.check().await.expect("check");
    assert_eq!(message, "2 property(ies) readable: 123456789, 987654321");
    assert_eq!(sim.tokens_issued(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_pulls_too() {
    let sim = start().await;
    let table: toml::Table = toml::from_str(&format!(
        r#"
        property_ids = ["{PROPERTY}"]
        client_id = "sim-client"
        client_secret = "sim-secret"
        refresh_token = "sim-refresh-token"
        base_url = "{}"
        token_url = "{}"
        "#,
        sim.base_url(),
        sim.token_url()
    ))
    .expect("a table");
    let window = DateWindow::new(day("2026-10-01"), day("2026-10-02")).expect("a window");
    let pulled = pull(build(table).as_ref(), window).await;
    pulled.expect_ok("refresh token");
    pulled.totals().assert_eq(&expected(&Ga4Api::default(), 5, window, &[PROPERTY]), "refresh token");
}

#[tokio::test]
async fn key_files_are_read_when_the_source_is_built() {
    let sim = start().await;
    let missing = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-key.json");
    let message = build_error(source_table(&sim, &[PROPERTY], &missing));
    assert!(message.contains("credentials_file") && message.contains("no-such-key.json"), "{message}");
    // OAuth client credentials are not a service-account key; their secret is not repeated.
    let client = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("oauth-client.json");
    std::fs::write(
        &client,
        r#"{"installed": {"client_id": "1.apps.googleusercontent.com",
                          "client_secret": "GOCSPX-not-for-logs"}}"#,
    )
    .expect("a file");
    let message = build_error(source_table(&sim, &[PROPERTY], &client));
    assert!(message.contains("not a service account's JSON key"), "{message}");
    assert!(!message.contains("GOCSPX-not-for-logs"), "{message}");
}

#[tokio::test]
async fn exactly_one_kind_of_credentials_is_given() {
    let sim = start().await;
    let key = key_file(&sim, PRIVATE_KEY, "both");
    let mut table = source_table(&sim, &[PROPERTY], &key);
    table.insert("client_id".into(), toml::Value::String("sim-client".into()));
    assert!(build_error(table).contains("give either `credentials_file`"));
    let mut table = source_table(&sim, &[PROPERTY], &key);
    table.remove("credentials_file");
    assert!(build_error(table).contains("give either `credentials_file`"));
}
