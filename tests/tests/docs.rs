//! docs/schema.md lists exactly the metric vocabulary of kpipe-core.

use kpipe_core::{Additivity, METRICS};

const BEGIN: &str = "<!-- metrics:begin";
const END: &str = "<!-- metrics:end -->";

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

#[test]
fn the_schema_doc_lists_the_vocabulary() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = doc.find(BEGIN).unwrap_or_else(|| panic!("no {BEGIN} marker"));
    let start = start + doc[start..].find('\n').unwrap_or_default() + 1;
    let end = doc.find(END).unwrap_or_else(|| panic!("no {END} marker"));
    let want = table();
    if doc[start..end] != want {
        if std::env::var_os("KPIPE_BLESS").is_some() {
            let updated = format!("{}{want}{}", &doc[..start], &doc[end..]);
            std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{e}"));
        } else {
            panic!(
                "docs/schema.md's metric table is out of date: run KPIPE_BLESS=1 cargo test -p kpipe-e2e --test docs"
            );
        }
    }
}
