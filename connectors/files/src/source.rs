//! The files source: finds the files, reads them line by line, emits rows and quarantines what
//! cannot be read.

use std::path::{Path, PathBuf};

use kpipe_core::{
    BuildContext, ConfigError, DateWindow, Emitter, Label, MetricRow, PullRequest, Source, SourceError,
    StreamInfo, is_identifier,
};

use crate::config::{FileKind, FilesConfig};
use crate::metrics::MetricLines;
use crate::reader::{Header, bad_line, matching_files, parse_date, read_file};
use crate::records::{RawRecord, Records, record_reader};
use crate::social_selling::SocialSellingLines;
use crate::survey::SurveyLines;

/// Why a line of only blanks and delimiters is skipped.
pub(crate) const BLANK: &str = "blank line(s)";
/// Why a line dated outside the run's window is skipped.
pub(crate) const OUTSIDE_WINDOW: &str = "line(s) dated outside the window";

/// What became of a file's lines: `lines` = header + `used` + `quarantined` + `skipped`.
#[derive(Debug, Default)]
struct LineTally {
    lines: u64,
    used: u64,
    quarantined: u64,
    skipped: u64,
}

/// How one file kind turns lines into rows.
pub(crate) trait LineKind: Send {
    /// Required and optional columns.
    fn columns(&self) -> (&'static [&'static str], &'static [&'static str]);
    /// Called with each file's header before its lines; an error fails the file.
    fn start_file(&mut self, header: &Header) -> Result<(), String>;
    /// The rows of one line, or why it cannot be used.
    fn line(&mut self, fields: &csv::StringRecord, location: &str) -> Result<Vec<MetricRow>, String>;
    /// Rows that only exist once every file was read (daily aggregates).
    fn finish(&mut self) -> Vec<MetricRow>;
}

/// Values that `social_selling` and `survey` rows share.
#[derive(Debug, Clone)]
pub(crate) struct RowContext {
    pub platform: Label,
    pub account_id: Label,
    pub entity_id: Label,
}

impl RowContext {
    /// A count row of this source's platform and account.
    pub fn count_row(
        &self,
        level: &'static str,
        entity_id: Label,
        date: kpipe_core::NaiveDate,
        metric: kpipe_core::Metric,
        value: u32,
    ) -> MetricRow {
        MetricRow {
            platform: self.platform.clone(),
            account_id: self.account_id.clone(),
            level: level.into(),
            entity_id,
            entity_name: None,
            date,
            dimensions: Default::default(),
            metric: metric.into(),
            value: kpipe_core::Decimal::from(value),
            currency: None,
        }
    }
}

/// Reads metrics from CSV files.
#[derive(Debug)]
pub struct FilesSource {
    kind: FileKind,
    /// The glob with the configuration directory prepended when it was relative.
    pattern: String,
    /// The glob as the user wrote it, for messages.
    shown: String,
    delimiter: u8,
    cx: RowContext,
}

impl FilesSource {
    fn line_kind(&self) -> Box<dyn LineKind> {
        match self.kind {
            FileKind::Metrics => Box::new(MetricLines::default()),
            FileKind::SocialSelling => Box::new(SocialSellingLines::new(self.cx.clone())),
            FileKind::Survey => Box::new(SurveyLines::new(self.cx.clone())),
        }
    }

    fn stream(&self) -> &'static str {
        self.kind.as_str()
    }

    async fn read_one(
        &self,
        path: &Path,
        window: DateWindow,
        kind: &mut dyn LineKind,
        out: &mut Emitter,
    ) -> Result<(), SourceError> {
        let bytes = read_file(path)?;
        let mut records = Records::new(&bytes, self.delimiter);
        let header = self.header(path, records.next(), kind)?;
        records.expect_fields(header.len());
        let date_column = header.position("date");
        let mut tally = LineTally { lines: 1, ..LineTally::default() };
        let mut fields = csv::StringRecord::new();
        for record in records {
            tally.lines += record.lines;
            let location = format!("{}:{}", path.display(), record.line);
            let parsed = if record.unclosed_quote {
                Err("a quote opened in this line is never closed".to_owned())
            } else {
                match record_reader(record.bytes, self.delimiter).read_record(&mut fields) {
                    Ok(true) => Ok(()),
                    // An empty line.
                    Ok(false) => {
                        fields.clear();
                        Ok(())
                    }
                    Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                        Err("the line is not valid UTF-8".to_owned())
                    }
                    Err(e) => Err(format!("the line cannot be read as CSV: {e}")),
                }
            };
            if let Err(reason) = parsed {
                out.quarantine(bad_line(self.stream(), path, record.line, reason, record.text())).await?;
                tally.quarantined += record.lines;
                continue;
            }
            if fields.iter().all(|f| f.trim().is_empty()) {
                // Spreadsheets end with blank lines, or lines of delimiters only.
                out.skip(BLANK, record.lines);
                tally.skipped += record.lines;
                continue;
            }
            if let Some(date) = date_column.and_then(|i| fields.get(i)).and_then(|d| parse_date(d).ok())
                && !window.contains(date)
            {
                tracing::debug!(location = %location, %date, "line dated outside the window");
                out.skip(OUTSIDE_WINDOW, record.lines);
                tally.skipped += record.lines;
                continue;
            }
            let rows = if fields.len() != header.len() {
                Err(format!("the line has {} fields, the header {}", fields.len(), header.len()))
            } else {
                kind.line(&fields, &location)
            };
            match rows {
                Ok(rows) => {
                    out.emit_all(rows).await?;
                    tally.used += record.lines;
                }
                Err(reason) => {
                    out.quarantine(bad_line(self.stream(), path, record.line, reason, record.text())).await?;
                    tally.quarantined += record.lines;
                }
            }
        }
        tracing::info!(
            file = %path.display(),
            lines = tally.lines,
            used = tally.used,
            quarantined = tally.quarantined,
            skipped = tally.skipped,
            "file read"
        );
        debug_assert_eq!(tally.lines, 1 + tally.used + tally.quarantined + tally.skipped);
        Ok(())
    }

    /// The header: the file's first record, checked against the kind's columns.
    fn header(
        &self,
        path: &Path,
        first: Option<RawRecord<'_>>,
        kind: &mut dyn LineKind,
    ) -> Result<Header, SourceError> {
        let Some(first) = first.filter(|r| !r.bytes.is_empty()) else {
            return Err(SourceError::data(format!(
                "{}: the file is empty; expected a header line",
                path.display()
            )));
        };
        let mut names = csv::StringRecord::new();
        let read = if first.unclosed_quote {
            Err("a quote opened in it is never closed".to_owned())
        } else {
            record_reader(first.bytes, self.delimiter).read_record(&mut names).map_err(|e| e.to_string())
        };
        if let Err(e) = read {
            return Err(SourceError::data(format!("{}: cannot read the header: {e}", path.display())));
        }
        let (required, optional) = kind.columns();
        let header = Header::read(path, &names, required, optional)?;
        kind.start_file(&header).map_err(|e| SourceError::data(format!("{}: {e}", path.display())))?;
        Ok(header)
    }

    fn files(&self) -> Result<Vec<PathBuf>, SourceError> {
        matching_files(&self.pattern, &format!("`{}`", self.shown))
    }
}

impl Source for FilesSource {
    type Config = FilesConfig;
    const KIND: &'static str = "files";
    const DESCRIPTION: &'static str =
        "CSV files: metrics in long form, social-selling activity logs, survey answers (NPS, CSAT)";

    fn build(config: FilesConfig, cx: &BuildContext) -> Result<FilesSource, ConfigError> {
        if config.path.trim().is_empty() {
            return Err(ConfigError::new(
                "path",
                "is empty; expected a file name or a glob such as `data/*.csv`",
            ));
        }
        let full = if Path::new(&config.path).is_absolute() {
            PathBuf::from(&config.path)
        } else {
            cx.config_dir.join(&config.path)
        };
        let pattern = full
            .to_str()
            .ok_or_else(|| {
                ConfigError::new("path", "is not valid UTF-8 once joined to the configuration's folder")
            })?
            .to_owned();
        glob::Pattern::new(&pattern)
            .map_err(|e| ConfigError::new("path", format!("is not a valid glob: {e}")))?;
        let delimiter = match config.delimiter {
            None => b',',
            Some(c) if c.is_ascii() && c != '"' && c != '\n' && c != '\r' => c as u8,
            Some(c) => {
                return Err(ConfigError::new(
                    "delimiter",
                    format!("`{c}` cannot separate fields; expected one ASCII character such as `;`"),
                ));
            }
        };
        if config.kind == FileKind::Metrics {
            for (key, set) in [
                ("platform", config.platform.is_some()),
                ("account_id", config.account_id.is_some()),
                ("survey", config.survey.is_some()),
            ] {
                if set {
                    return Err(ConfigError::new(
                        key,
                        "is not used with kind = \"metrics\": the files carry it per line",
                    ));
                }
            }
        }
        if config.kind != FileKind::Survey && config.survey.is_some() {
            return Err(ConfigError::new("survey", "is only used with kind = \"survey\""));
        }
        let platform = config.platform.clone().unwrap_or_else(|| "files".to_owned());
        if !is_identifier(&platform) {
            return Err(ConfigError::new(
                "platform",
                format!("`{platform}` is not a snake_case name such as `linkedin`"),
            ));
        }
        let non_empty = |key: &str, v: Option<&String>| -> Result<Label, ConfigError> {
            match v {
                Some(v) if v.trim().is_empty() => Err(ConfigError::new(key, "is empty")),
                Some(v) => Ok(Label::new(v.trim())),
                None => Ok(Label::new(&cx.source_name)),
            }
        };
        Ok(FilesSource {
            kind: config.kind,
            pattern,
            shown: config.path.clone(),
            delimiter,
            cx: RowContext {
                platform: Label::from(platform),
                account_id: non_empty("account_id", config.account_id.as_ref())?,
                entity_id: non_empty("survey", config.survey.as_ref())?,
            },
        })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        vec![crate::catalog::stream_info(self.kind)]
    }

    fn catalog() -> Vec<kpipe_core::StreamCatalog> {
        crate::catalog::catalog()
    }

    async fn check(&self) -> Result<String, SourceError> {
        let files = self.files()?;
        let mut kind = self.line_kind();
        for path in &files {
            let bytes = read_file(path)?;
            self.header(path, Records::new(&bytes, self.delimiter).next(), kind.as_mut())?;
        }
        Ok(format!(
            "{} file(s) match `{}`, headers are valid for kind {}",
            files.len(),
            self.shown,
            self.stream()
        ))
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        let files = self.files()?;
        tracing::info!(files = files.len(), window = %request.window, "reading files");
        let mut kind = self.line_kind();
        for path in &files {
            self.read_one(path, request.window, kind.as_mut(), out).await?;
        }
        out.emit_all(kind.finish()).await
    }
}
