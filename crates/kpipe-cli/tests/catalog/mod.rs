//! `kpipe catalog`: its JSON validates against its own JSON Schema, each connector's
//! configuration schema is a valid schema that the demo's source tables pass, the catalogs name
//! the connectors' streams and only well-formed metrics, and the generated sections of
//! docs/connectors/ are the catalog's. `KPIPE_BLESS=1 cargo test -p kpipe-cli --test cli catalog`
//! rewrites those sections.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use kpipe_cli::demo_apis::DemoApis;
use kpipe_cli::registry;
use kpipe_core::BuildContext;

use crate::common::{kpipe, text};

/// The `[sources.*]` tables of the configuration `kpipe demo` writes, API sources included.
fn demo_sources(dir: &Path) -> toml::Table {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let sources = runtime.block_on(async {
        let apis = DemoApis::start().await.expect("the simulators start");
        let sources = apis.sources_toml();
        apis.shutdown().await;
        sources
    });
    let config = kpipe_cli::demo::prepare_with(dir, &sources).expect("the demo configuration is written");
    let text = std::fs::read_to_string(config).expect("readable");
    let mut document: toml::Table = text.parse().expect("the demo configuration is TOML");
    match document.remove("sources") {
        Some(toml::Value::Table(sources)) => sources,
        other => panic!("the demo configuration has no [sources]: {other:?}"),
    }
}

const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft202012Validator, validators

catalog, schema, tables, bad = (json.load(open(p)) for p in sys.argv[1:5])
assert validators.validator_for(schema) is Draft202012Validator, schema.get("$schema")
Draft202012Validator.check_schema(schema)
problems = [f"catalog: {e.json_path}: {e.message}" for e in Draft202012Validator(schema).iter_errors(catalog)]
configs = {}
for connector in catalog["connectors"]:
    config = connector["config"]["schema"]
    Draft202012Validator.check_schema(config)
    configs[connector["type"]] = Draft202012Validator(config)
for name, table in tables.items():
    kind = table.pop("type")
    problems += [f"sources.{name}: {e.json_path}: {e.message}" for e in configs[kind].iter_errors(table)]
for name, table in bad.items():
    kind = table.pop("type")
    if configs[kind].is_valid(table):
        problems.append(f"sources.{name}: a misspelt key passed the schema of {kind}")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{len(configs)} configuration schemas, {len(tables)} source tables valid")
"#;

#[test]
fn catalog_json_validates_against_its_schema_and_the_demo_config_against_the_connectors() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = kpipe(dir.path(), &["catalog", "--json"]);
    assert!(json.status.success(), "{}", text(&json));
    let schema = kpipe(dir.path(), &["catalog", "--json-schema"]);
    assert!(schema.status.success(), "{}", text(&schema));
    std::fs::write(dir.path().join("catalog.json"), &json.stdout).expect("written");
    std::fs::write(dir.path().join("schema.json"), &schema.stdout).expect("written");

    let sources = demo_sources(&dir.path().join("demo"));
    let kinds: BTreeSet<String> =
        sources.values().filter_map(|t| t.get("type")?.as_str().map(str::to_owned)).collect();
    let known: BTreeSet<String> = registry::connectors().iter().map(|c| c.kind.to_owned()).collect();
    assert_eq!(kinds, known, "the demo configures every connector");
    let mut misspelt = BTreeMap::new();
    for (name, table) in &sources {
        let mut table = table.as_table().cloned().unwrap_or_default();
        table.insert("page_sise".into(), toml::Value::Integer(10));
        misspelt.insert(name.clone(), table);
    }
    std::fs::write(dir.path().join("tables.json"), json_text(&sources)).expect("written");
    std::fs::write(dir.path().join("misspelt.json"), json_text(&misspelt)).expect("written");

    let python = kpipe_testkit::services::python().expect("the test services' Python");
    let out = Command::new(python)
        .args(["-c", VALIDATE])
        .args(["catalog.json", "schema.json", "tables.json", "misspelt.json"].map(|f| dir.path().join(f)))
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", text(&out));
}

/// A value written as JSON for the Python check.
fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("TOML values are JSON")
}

#[test]
fn secrets_and_defaults_are_in_the_configuration_schemas() {
    let linkedin = registry::find("linkedin").expect("linkedin");
    let schema = serde_json::Value::from(linkedin.config_schema());
    let token = &schema["properties"]["refresh_token"];
    assert_eq!(
        (token["writeOnly"].as_bool(), token["x-secret"].as_bool()),
        (Some(true), Some(true)),
        "{token}"
    );
    assert_eq!(schema["properties"]["page_size"]["default"], 100);
    assert_eq!(schema["additionalProperties"], false);
    assert!(
        schema["properties"]["account_ids"]["description"].as_str().is_some_and(|d| d.contains("Sponsored"))
    );
    let catalog = kpipe_cli::catalog::catalog(Some("facebook")).expect("facebook");
    let keys = &catalog.connectors[0].config.keys;
    let access_token = keys.iter().find(|k| k.key == "access_token").expect("access_token");
    assert!(access_token.secret && access_token.required);
    assert!(keys.iter().any(|k| k.key == "rate_limit.per_seconds" && k.required));
}

#[test]
fn catalogs_declare_the_connectors_streams_and_only_well_formed_metrics() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sources = demo_sources(dir.path());
    let cx = BuildContext { source_name: "catalog".into(), config_dir: dir.path().join("demo") };
    let mut pulled: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, table) in sources {
        let mut table = table.as_table().cloned().unwrap_or_default();
        let kind = table.remove("type").and_then(|t| t.as_str().map(str::to_owned)).expect("a type");
        if kind == "google_analytics" {
            // The custom reports' stream is there only when one is configured.
            let report: toml::Table =
                "name = \"by_device\"\ndimensions = [\"deviceCategory\"]\nmetrics = [\"sessions\"]"
                    .parse()
                    .expect("TOML");
            table.insert("reports".into(), toml::Value::Array(vec![toml::Value::Table(report)]));
        }
        let factory = registry::find(&kind).expect("a known type");
        let source = factory.build(table, &cx).unwrap_or_else(|e| panic!("sources.{name}: {e}"));
        pulled.entry(kind).or_default().extend(source.streams().into_iter().map(|s| s.name.to_owned()));
    }
    let files = ["metrics", "social_selling", "survey"];
    pulled.entry("files".into()).or_default().extend(files.map(str::to_owned));
    for factory in registry::connectors() {
        let catalog = factory.catalog();
        for stream in &catalog {
            stream.check(Some(factory.kind)).unwrap_or_else(|e| panic!("{}: {e}", factory.kind));
        }
        let declared: BTreeSet<String> = catalog.iter().map(|s| s.name().to_owned()).collect();
        assert_eq!(declared.len(), catalog.len(), "{}: a stream is declared twice", factory.kind);
        assert_eq!(pulled.get(factory.kind), Some(&declared), "{}: streams() and catalog()", factory.kind);
    }
}

#[test]
fn every_kpi_is_computable_from_some_connector() {
    let catalog = kpipe_cli::catalog::catalog(None).expect("the catalog");
    for kpi in &catalog.kpis {
        assert!(!kpi.connectors.is_empty(), "no connector yields what `{}` needs", kpi.name);
    }
    let linkedin = catalog.connectors.iter().find(|c| c.kind == "linkedin").expect("linkedin");
    assert!(linkedin.kpis.iter().any(|k| k == "ctr"));
    assert!(!linkedin.kpis.iter().any(|k| k == "lead_conversion_rate"), "its filter names hubspot");
}

#[test]
fn unknown_connectors_are_refused_and_text_tables_are_printed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = kpipe(dir.path(), &["catalog", "--connector", "myspace"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unknown connector `myspace`; known: files, "), "{}", text(&out));
    let out = kpipe(dir.path(), &["catalog", "--connector", "linkedin"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    for needle in ["ad_analytics", "approximateMemberReach", "rate_limit.requests", "secret"] {
        assert!(t.contains(needle), "`{needle}` missing from:\n{t}");
    }
}

/// The connector pages and the connector each documents.
const DOCS: [(&str, &str); 5] = [
    ("linkedin", "linkedin.md"),
    ("facebook", "facebook.md"),
    ("hubspot", "hubspot.md"),
    ("google_analytics", "ga4.md"),
    ("files", "files.md"),
];

#[test]
fn connector_docs_hold_the_catalog() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/connectors");
    let bless = std::env::var_os("KPIPE_BLESS").is_some();
    let mut stale = Vec::new();
    for (kind, file) in DOCS {
        let path = docs.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let begin =
            text.find("<!-- catalog:begin").unwrap_or_else(|| panic!("{file}: no <!-- catalog:begin marker"));
        let start = begin + text[begin..].find('\n').map_or(0, |n| n + 1);
        let stop = text
            .find("<!-- catalog:end -->")
            .unwrap_or_else(|| panic!("{file}: no <!-- catalog:end --> marker"));
        let want = kpipe_cli::catalog::markdown(kind).unwrap_or_else(|| panic!("no connector {kind}"));
        if text[start..stop] != want {
            if bless {
                std::fs::write(&path, format!("{}{want}{}", &text[..start], &text[stop..]))
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            } else {
                stale.push(file);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "docs/connectors/{} out of date: run KPIPE_BLESS=1 cargo test -p kpipe-cli --test cli catalog",
        stale.join(", docs/connectors/")
    );
}
