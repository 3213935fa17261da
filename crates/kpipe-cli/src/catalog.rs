//! `kpipe catalog`: what each connector can pull, generated from the connectors' own declarations
//! (`Source::catalog`, their configuration's JSON Schema) and the built-in KPI catalog, so that
//! it says what the code does.
//!
//! [`model`] is the `--json` output and its schema, [`keys`] reads a configuration's keys off its
//! JSON Schema, [`render`] writes the text tables and the Markdown of the connector docs.

pub mod keys;
pub mod model;
pub mod render;

use std::io::Write as _;

use crate::registry;
use render::Style;

/// Exit code for a usage error.
const EXIT_USAGE: u8 = 2;

/// `kpipe catalog [--connector NAME] [--json | --json-schema]`.
#[derive(clap::Args, Debug)]
pub struct CatalogArgs {
    /// Only this connector (its `type`).
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Print the catalog as JSON.
    #[arg(long, conflicts_with = "json_schema")]
    pub json: bool,
    /// Print the JSON Schema of the `--json` output.
    #[arg(long)]
    pub json_schema: bool,
}

/// The catalog of every connector, or of the one called `kind` (`None` if there is none).
pub fn catalog(kind: Option<&str>) -> Option<model::Catalog> {
    let mut connectors = registry::connectors();
    if let Some(kind) = kind {
        connectors.retain(|c| c.kind == kind);
        if connectors.is_empty() {
            return None;
        }
    }
    Some(model::build(&connectors))
}

/// The JSON Schema of [`model::Catalog`], as `--json-schema` prints it.
pub fn json_schema() -> serde_json::Value {
    serde_json::Value::from(schemars::schema_for!(model::Catalog))
}

/// The Markdown section of connector `kind`'s page in docs/connectors/ (streams, metrics,
/// configuration keys, KPIs).
pub fn markdown(kind: &str) -> Option<String> {
    let catalog = catalog(Some(kind))?;
    catalog.connectors.first().map(|c| render::connector(c, Style::Markdown))
}

/// The catalog as text: each connector's tables, then the KPIs.
fn text(catalog: &model::Catalog, with_kpis: bool) -> String {
    let mut out = String::new();
    for c in &catalog.connectors {
        out.push_str(&format!("{}: {}\n\n", c.kind, c.description));
        out.push_str(&render::connector(c, Style::Text));
        out.push('\n');
    }
    if with_kpis {
        out.push_str("KPIs\n");
        let rows: Vec<Vec<String>> = catalog
            .kpis
            .iter()
            .map(|k| {
                let connectors =
                    if k.connectors.is_empty() { "-".to_owned() } else { k.connectors.join(", ") };
                vec![k.name.clone(), k.formula.clone(), connectors]
            })
            .collect();
        out.push_str(&render::table(&["kpi", "formula", "from one connector"], &rows, Style::Text));
    }
    out
}

/// Runs the command; returns the exit code.
pub fn command(args: &CatalogArgs) -> u8 {
    let output = if args.json_schema {
        serde_json::to_string_pretty(&json_schema())
    } else {
        let Some(catalog) = catalog(args.connector.as_deref()) else {
            eprintln!(
                "error: --connector: unknown connector `{}`; known: {}",
                args.connector.as_deref().unwrap_or_default(),
                registry::known_kinds()
            );
            return EXIT_USAGE;
        };
        if args.json {
            serde_json::to_string_pretty(&catalog)
        } else {
            Ok(text(&catalog, args.connector.is_none()))
        }
    };
    let text = match output {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: the catalog cannot be written as JSON: {e}");
            return 1;
        }
    };
    // A reader that stops early (`| head`) is not an error.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", text.trim_end());
    0
}
