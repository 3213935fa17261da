//! The connectors this build knows. Adding one is one line here.

use kpipe_core::ConnectorFactory;

/// Every connector, by `type`.
pub fn connectors() -> Vec<ConnectorFactory> {
    vec![
        kpipe_connector_files::factory(),
        kpipe_connector_facebook::factory(),
        kpipe_connector_linkedin::factory(),
        kpipe_connector_google_analytics::factory(),
        kpipe_connector_hubspot::factory(),
    ]
}

/// The connector called `kind`.
pub fn find(kind: &str) -> Option<ConnectorFactory> {
    connectors().into_iter().find(|c| c.kind == kind)
}

/// The known `type` values, for error messages.
pub fn known_kinds() -> String {
    connectors().iter().map(|c| c.kind).collect::<Vec<_>>().join(", ")
}
