//! The streams, one per file kind, and what each yields ([`kpipe_core::catalog`]), from the
//! column tables the readers use.

use kpipe_core::{CatalogMetric, Dimensions, Metric, MetricOrigin, StreamCatalog, StreamInfo};

use crate::config::FileKind;
use crate::{social_selling, survey};

/// The stream of a kind: its name is the kind's.
pub(crate) fn stream_info(kind: FileKind) -> StreamInfo {
    let description = match kind {
        FileKind::Metrics => "metric observations in long form",
        FileKind::SocialSelling => "social-selling funnel counts per rep and day",
        FileKind::Survey => "daily survey response counts (NPS groups, CSAT)",
    };
    StreamInfo { name: kind.as_str(), description }
}

/// The catalog of [`crate::FilesSource`]: a source reads one kind, so one of these streams.
pub(crate) fn catalog() -> Vec<StreamCatalog> {
    FileKind::ALL
        .into_iter()
        .map(|kind| {
            let stream = StreamCatalog::new(stream_info(kind));
            match kind {
                FileKind::Metrics => stream
                    .levels_from("the `level` column")
                    .dimensions(&Dimensions::NAMES)
                    .metrics(
                        Metric::ALL.iter().map(|m| MetricOrigin::canonical(*m, "`metric`, `value` columns")),
                    )
                    .metrics([MetricOrigin::of(
                        CatalogMetric::ExtraFamily {
                            platform: None,
                            prefix: String::new(),
                            placeholder: "name".to_owned(),
                            unit: None,
                            additivity: None,
                        },
                        "`metric`, `value` columns",
                    )
                    .note("unit from the `unit` column (default count)")]),
                FileKind::SocialSelling => {
                    stream.levels([social_selling::LEVEL]).metrics(social_selling::FUNNEL.iter().map(
                        |(column, metric)| MetricOrigin::canonical(*metric, format!("`{column}` column")),
                    ))
                }
                FileKind::Survey => stream.levels([survey::LEVEL]).metrics(
                    survey::COUNTS.iter().map(|(metric, counted)| MetricOrigin::canonical(*metric, *counted)),
                ),
            }
        })
        .collect()
}
