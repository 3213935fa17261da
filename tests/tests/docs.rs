//! The generated parts of the docs match the code: docs/schema.md lists exactly the metric
//! vocabulary of kpipe-core, docs/kpis.md exactly the built-in KPI catalog of kpipe-kpi.
//! `KPIPE_BLESS=1 cargo test -p kpipe-e2e --test docs` rewrites them.

use kpipe_core::{Additivity, METRICS};

fn table() -> String {
    let mut out = String::from("| metric | unit | additivity | meaning |\n|---|---|---|---|\n");
    for m in METRICS {
        let additivity = match m.additivity {
            Additivity::Sum => "sum",
            Additivity::Unique => "unique",
            Additivity::Snapshot => "snapshot",
        };
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", m.name, m.unit, additivity, m.description));
    }
    out
}

/// The KPI catalog as a table.
fn kpi_table() -> String {
    let mut out = String::from("| KPI | formula | unit | stage | meaning |\n|---|---|---|---|---|\n");
    let catalog = kpipe_kpi::Catalog::builtin();
    for def in catalog.definitions() {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            def.name,
            def.formula.replace('|', "\\|"),
            def.unit,
            def.stage,
            def.description
        ));
    }
    out
}

/// Checks (or with KPIPE_BLESS, rewrites) the block between `<!-- {name}:begin ... -->` and
/// `<!-- {name}:end -->` of `doc` (relative to the repository).
fn generated_block(doc: &str, name: &str, want: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (begin, end) = (format!("<!-- {name}:begin"), format!("<!-- {name}:end -->"));
    let start = text.find(&begin).unwrap_or_else(|| panic!("{doc}: no {begin} marker"));
    let start = start + text[start..].find('\n').unwrap_or_default() + 1;
    let stop = text.find(&end).unwrap_or_else(|| panic!("{doc}: no {end} marker"));
    if text[start..stop] != *want {
        if std::env::var_os("KPIPE_BLESS").is_some() {
            let updated = format!("{}{want}{}", &text[..start], &text[stop..]);
            std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{e}"));
        } else {
            panic!(
                "{doc}'s {name} table is out of date: run KPIPE_BLESS=1 cargo test -p kpipe-e2e --test docs"
            );
        }
    }
}

#[test]
fn the_schema_doc_lists_the_vocabulary() {
    generated_block("docs/schema.md", "metrics", &table());
}

#[test]
fn the_kpi_doc_lists_the_catalog() {
    generated_block("docs/kpis.md", "kpis", &kpi_table());
}
