//! `cargo xtask new-connector NAME [--register] [--dir DIR]`: a new connector crate from
//! `xtask/connector-template`, which is itself a workspace member that compiles and passes the
//! conformance suite against the simulator's Example Ads API. The copy is renamed throughout
//! (`template` → `NAME`, `Template` → `Name`), so it compiles and its tests pass as generated;
//! its author then points it at the real platform.

use std::fs;
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Debug)]
pub struct NewConnector {
    /// snake_case name: the `type` value and the crate's suffix.
    pub name: String,
    /// Also add the crate to the workspace dependencies, the `kpipe` binary and its registry.
    pub register: bool,
    /// Where the crate goes (default `connectors/NAME`).
    pub dir: Option<PathBuf>,
}

impl NewConnector {
    /// Reads `NAME [--register] [--dir DIR]`.
    pub fn parse(args: &[String]) -> Result<NewConnector, String> {
        let mut name = None;
        let mut register = false;
        let mut dir = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--register" => register = true,
                "--dir" => dir = Some(PathBuf::from(rest.next().ok_or("--dir needs a directory")?)),
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                n if name.is_none() => name = Some(n.to_owned()),
                extra => return Err(format!("unexpected argument {extra}")),
            }
        }
        let name = name.ok_or("usage: cargo xtask new-connector NAME [--register] [--dir DIR]")?;
        validate_name(&name)?;
        Ok(NewConnector { name, register, dir })
    }
}

const RESERVED: &[&str] =
    &["template", "files", "core", "cli", "http", "sim", "testkit", "self", "super", "crate"];

fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_well || !rest_ok || name.ends_with('_') || name.contains("__") {
        return Err(format!(
            "`{name}`: a connector name is snake_case: a-z first, then a-z, 0-9 and single _"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!("`{name}` is taken; choose another name"));
    }
    Ok(())
}

/// `google_ads` → `GoogleAds`.
pub fn camel(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The template's text with every name replaced.
pub fn rename(text: &str, name: &str) -> String {
    let kebab = name.replace('_', "-");
    text.replace("kpipe-connector-template", &format!("kpipe-connector-{kebab}"))
        .replace("kpipe_connector_template", &format!("kpipe_connector_{name}"))
        .replace("Template", &camel(name))
        .replace("TEMPLATE", &name.to_ascii_uppercase())
        .replace("template", name)
}

/// Generates the crate under `root` (the workspace root); returns its directory.
pub fn generate(root: &Path, spec: &NewConnector) -> Result<PathBuf, String> {
    let template = root.join("xtask/connector-template");
    let target = spec.dir.clone().unwrap_or_else(|| root.join("connectors").join(&spec.name));
    if target.exists() {
        return Err(format!("{} exists already", target.display()));
    }
    copy_renamed(&template, &target, &spec.name)?;
    if spec.register {
        register(root, &spec.name)?;
    }
    Ok(target)
}

fn copy_renamed(from: &Path, to: &Path, name: &str) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries = fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let path = entry.path();
        let file_name = entry.file_name();
        if file_name == "target" {
            continue;
        }
        let dest = to.join(rename(&file_name.to_string_lossy(), name));
        if path.is_dir() {
            copy_renamed(&path, &dest, name)?;
        } else {
            let text =
                fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            fs::write(&dest, rename(&text, name))
                .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        }
    }
    Ok(())
}

/// One line in each of the three places a connector is made known to the `kpipe` binary.
fn register(root: &Path, name: &str) -> Result<(), String> {
    let kebab = name.replace('_', "-");
    let dependency = format!("kpipe-connector-{kebab}");
    edit(&root.join("Cargo.toml"), |text| {
        let anchor = "kpipe-connector-files = { path = \"connectors/files\" }\n";
        text.contains(anchor).then(|| {
            text.replacen(anchor, &format!("{anchor}{dependency} = {{ path = \"connectors/{name}\" }}\n"), 1)
        })
    })?;
    edit(&root.join("crates/kpipe-cli/Cargo.toml"), |text| {
        let anchor = "kpipe-connector-files.workspace = true\n";
        text.contains(anchor)
            .then(|| text.replacen(anchor, &format!("{anchor}{dependency}.workspace = true\n"), 1))
    })?;
    edit(&root.join("crates/kpipe-cli/src/registry.rs"), |text| {
        let anchor = "kpipe_connector_files::factory(),";
        let line = format!("kpipe_connector_{name}::factory(),");
        if text.contains(anchor) {
            Some(text.replacen(anchor, &format!("{anchor}\n        {line}"), 1))
        } else {
            let anchor = "kpipe_connector_files::factory()";
            let line = line.trim_end_matches(',');
            text.contains(anchor).then(|| text.replacen(anchor, &format!("{anchor}, {line}"), 1))
        }
    })
}

fn edit(path: &Path, change: impl FnOnce(&str) -> Option<String>) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let changed = change(&text).ok_or_else(|| {
        format!(
            "{}: the line to register next to is not there; register the connector by hand",
            path.display()
        )
    })?;
    fs::write(path, changed).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case_and_free() {
        assert!(validate_name("google_ads").is_ok());
        assert!(validate_name("tiktok2").is_ok());
        for bad in ["GoogleAds", "2x", "a-b", "a__b", "trailing_", "", "template", "files"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_spelling_of_the_name_is_replaced() {
        let text = "kpipe-connector-template kpipe_connector_template TemplateSource TEMPLATE \"template\"";
        assert_eq!(
            rename(text, "google_ads"),
            "kpipe-connector-google-ads kpipe_connector_google_ads GoogleAdsSource GOOGLE_ADS \"google_ads\""
        );
    }

    #[test]
    fn the_generated_tree_mirrors_the_template_without_the_old_name() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf();
        let out = std::env::temp_dir().join(format!("kpipe-new-connector-{}", std::process::id()));
        let _ = fs::remove_dir_all(&out);
        let spec = NewConnector { name: "acme_ads".into(), register: false, dir: Some(out.join("acme_ads")) };
        let dir = generate(&root, &spec).expect("generated");
        for file in
            ["Cargo.toml", "README.md", "src/lib.rs", "src/config.rs", "src/source.rs", "src/normalize.rs"]
        {
            let text = fs::read_to_string(dir.join(file)).expect(file);
            assert!(!text.to_lowercase().contains("template"), "{file} still says template");
        }
        assert!(
            fs::read_to_string(dir.join("tests/conformance.rs")).expect("tests").contains("AcmeAdsHarness")
        );
        assert!(
            fs::read_to_string(dir.join("Cargo.toml"))
                .expect("manifest")
                .contains("kpipe-connector-acme-ads")
        );
        assert!(generate(&root, &spec).is_err(), "an existing directory is not overwritten");
        fs::remove_dir_all(&out).expect("cleaned up");
    }
}
