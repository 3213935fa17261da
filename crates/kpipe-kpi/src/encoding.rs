//! KPI files encoded on a thread of their own. Encoding and compressing a period's rows costs
//! more than computing them; with the two side by side, the stage takes about the time of the
//! larger of the two instead of their sum. The rows go over a bounded channel in chunks, so at
//! most a few chunks are held between the two threads, whatever the period's size; emptied
//! chunks come back to be filled again (a new chunk of this size is a fresh mapping whose every
//! page faults in: a tenth of the computing thread's time when each chunk was new).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use kpipe_sink_parquet::table::TableFormat;

use crate::error::KpiError;
use crate::output::PeriodFile;
use crate::row::{KpiRow, RowSink, RowView};

/// Rows sent to the encoder at once.
const CHUNK_ROWS: usize = 4 * 1024;

/// Chunks waiting for the encoder at most.
const CHUNKS_WAITING: usize = 2;

/// A row as it crosses to the encoder: owned labels, and the numbers that name its account and
/// entity (see [`RowView`]).
struct SentRow {
    row: KpiRow,
    account_key: Option<u32>,
    entity_key: Option<u32>,
}

impl SentRow {
    fn of(view: &RowView<'_>) -> SentRow {
        SentRow { row: view.owned(), account_key: view.account_key, entity_key: view.entity_key }
    }

    fn view(&self) -> RowView<'_> {
        let r = &self.row;
        RowView {
            kpi: &r.kpi,
            grain: r.grain,
            period_start: r.period_start,
            period_end: r.period_end,
            scope: r.scope,
            platform: r.platform.as_ref(),
            source: r.source.as_ref(),
            account_id: r.account_id.as_ref(),
            level: r.level.as_ref(),
            entity_id: r.entity_id.as_ref(),
            account_key: self.account_key,
            entity_key: self.entity_key,
            value: r.value,
            numerator: r.numerator,
            denominator: r.denominator,
            unit: r.unit,
            currency: r.currency,
            stage: r.stage,
        }
    }
}

enum Job {
    /// The next rows go to the file staged as `key` (at `path`), after the rows sent to it
    /// before: another source's part of the same period.
    Open {
        key: String,
        path: PathBuf,
    },
    Rows(Vec<SentRow>),
    /// This part's rows are all sent.
    Close,
}

/// A written period file: its staging key, its path and its rows.
pub(crate) type EncodedFile = (String, PathBuf, u64);

/// The encoding thread.
#[derive(Debug)]
pub(crate) struct Encoder {
    jobs: SyncSender<Job>,
    /// Chunks the encoder emptied.
    empties: Receiver<Vec<SentRow>>,
    thread: JoinHandle<Result<Vec<EncodedFile>, KpiError>>,
}

impl Encoder {
    /// Starts the thread; files are written in `format`.
    pub fn start(format: TableFormat) -> Result<Encoder, KpiError> {
        let (jobs, received) = sync_channel(CHUNKS_WAITING);
        // Room for every chunk there can be: returning one never waits.
        let (emptied, empties) = sync_channel(CHUNKS_WAITING + 2);
        let thread = std::thread::Builder::new()
            .name("kpi-files".to_owned())
            .spawn(move || encode(&received, &emptied, &format))
            .map_err(|e| KpiError::Write { path: PathBuf::from("kpis"), message: e.to_string() })?;
        Ok(Encoder { jobs, empties, thread })
    }

    /// Starts a part of a period's file (the file is created with its first part): the rows
    /// pushed to the returned sink go to it, until [`PeriodRows::close`]. `Err(())` when the thread stopped: [`Encoder::finish`]
    /// says why.
    pub fn open(&self, key: String, path: PathBuf) -> Result<PeriodRows<'_>, ()> {
        self.jobs.send(Job::Open { key, path }).map_err(drop)?;
        let chunk = self.empties.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK_ROWS));
        Ok(PeriodRows { jobs: &self.jobs, empties: &self.empties, chunk })
    }

    /// Closes every file and waits for them to be written; the files by key, or the error that
    /// stopped the thread.
    pub fn finish(self) -> Result<Vec<EncodedFile>, KpiError> {
        drop(self.jobs);
        self.thread.join().unwrap_or_else(|_| {
            Err(KpiError::Write {
                path: PathBuf::from("kpis"),
                message: "the KPI file encoder panicked".into(),
            })
        })
    }
}

/// The rows of one period on their way to the encoder.
pub(crate) struct PeriodRows<'a> {
    jobs: &'a SyncSender<Job>,
    empties: &'a Receiver<Vec<SentRow>>,
    chunk: Vec<SentRow>,
}

impl PeriodRows<'_> {
    fn send(&mut self) -> Result<(), Stopped> {
        let next = self.empties.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK_ROWS));
        let chunk = std::mem::replace(&mut self.chunk, next);
        self.jobs.send(Job::Rows(chunk)).map_err(|_| Stopped)
    }

    /// Sends the part's last rows.
    pub fn close(mut self) -> Result<(), Stopped> {
        if !self.chunk.is_empty() {
            self.send()?;
        }
        self.jobs.send(Job::Close).map_err(|_| Stopped)
    }
}

/// The encoder stopped (on an error that [`Encoder::finish`] returns).
#[derive(Debug)]
pub(crate) struct Stopped;

impl RowSink for PeriodRows<'_> {
    type Error = Stopped;

    fn push(&mut self, row: &RowView<'_>) -> Result<(), Stopped> {
        self.chunk.push(SentRow::of(row));
        if self.chunk.len() >= CHUNK_ROWS { self.send() } else { Ok(()) }
    }
}

/// The thread's work: each period's file opened with its first part, filled part after part
/// as the jobs come, and closed at the end.
fn encode(
    jobs: &Receiver<Job>,
    emptied: &SyncSender<Vec<SentRow>>,
    format: &TableFormat,
) -> Result<Vec<EncodedFile>, KpiError> {
    let mut files: BTreeMap<String, PeriodFile> = BTreeMap::new();
    let mut current: Option<String> = None;
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Open { key, path } => {
                match files.get_mut(&key) {
                    Some(file) => file.start_part(),
                    None => {
                        files.insert(key.clone(), PeriodFile::new(path, format)?);
                    }
                }
                current = Some(key);
            }
            Job::Rows(mut rows) => {
                let Some(file) = current.as_ref().and_then(|key| files.get_mut(key)) else {
                    return Err(KpiError::Write {
                        path: PathBuf::from("kpis"),
                        message: "KPI rows came before their period's file was opened".into(),
                    });
                };
                file.start_chunk();
                for row in &rows {
                    file.push(&row.view())?;
                }
                rows.clear();
                // Full when the computing side stopped taking chunks back: this one is dropped.
                let _ = emptied.try_send(rows);
            }
            Job::Close => {
                if let Some(file) = current.take().and_then(|key| files.get_mut(&key)) {
                    file.end_part()?;
                }
            }
        }
    }
    let mut written = Vec::new();
    for (key, file) in files {
        if let Some((path, rows)) = file.finish()? {
            written.push((key, path, rows));
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use kpipe_core::{Decimal, Label, Unit};

    use super::*;
    use crate::config::Stage;
    use crate::output::file_format;
    use crate::period::{Grain, Scope};

    fn push_rows(rows: &mut PeriodRows<'_>, n: usize) {
        push_named(rows, n, "ad");
    }

    /// `n` rows of entities `<prefix>-00000`, ... numbered 0, 1, ... as the computation numbers
    /// a source's entities.
    fn push_named(rows: &mut PeriodRows<'_>, n: usize, prefix: &str) {
        let (kpi, platform) = (Label::new("ctr"), Label::new("facebook"));
        let day = NaiveDate::from_ymd_opt(2026, 9, 1).expect("date");
        for i in 0..n {
            let entity = Label::new(&format!("{prefix}-{i:05}"));
            let view = RowView {
                kpi: &kpi,
                grain: Grain::Day,
                period_start: day,
                period_end: day,
                scope: Scope::Entity,
                platform: Some(&platform),
                source: None,
                account_id: None,
                level: None,
                entity_id: Some(&entity),
                account_key: None,
                entity_key: Some(i as u32),
                value: Decimal::from_units(i as i128),
                numerator: None,
                denominator: None,
                unit: Unit::Ratio,
                currency: None,
                stage: Stage::Awareness,
            };
            rows.push(&view).expect("the encoder takes rows");
        }
    }

    #[test]
    fn periods_are_written_in_the_order_they_are_sent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let encoder = Encoder::start(file_format("t").expect("format")).expect("thread");
        for (name, n) in [("a", CHUNK_ROWS * 3 + 5), ("empty", 0), ("b", 2)] {
            let mut rows = encoder.open(name.to_owned(), dir.path().join(name)).expect("open");
            push_rows(&mut rows, n);
            rows.close().expect("close");
        }
        let written = encoder.finish().expect("written");
        let got: Vec<(&str, u64)> = written.iter().map(|(k, _, n)| (k.as_str(), *n)).collect();
        assert_eq!(got, [("a", CHUNK_ROWS as u64 * 3 + 5), ("b", 2)], "a period without rows has no file");
        for (_, path, n) in &written {
            let file = std::fs::File::open(path).expect("written");
            let reader = parquet::file::reader::SerializedFileReader::new(file).expect("parquet");
            let rows = parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows();
            assert_eq!(rows as u64, *n);
        }
        assert!(!dir.path().join("empty").exists());
    }

    #[test]
    fn the_error_that_stopped_the_encoder_is_returned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let unwritable = dir.path().join("not-a-folder");
        std::fs::write(&unwritable, b"a file").expect("file");
        let encoder = Encoder::start(file_format("t").expect("format")).expect("thread");
        let mut rows = encoder.open("a".to_owned(), unwritable.join("a.parquet")).expect("open");
        push_rows(&mut rows, 3);
        // The thread may already have stopped: either way, finishing says why.
        let _ = rows.close();
        let error = encoder.finish().expect_err("the file cannot be created");
        assert!(error.to_string().contains("not-a-folder"), "{error}");
    }

    fn entities_and_groups(path: &std::path::Path) -> (Vec<String>, Vec<i64>) {
        use arrow_array::cast::AsArray;
        let file = std::fs::File::open(path).expect("written");
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
        let groups = builder.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
        let mut entities = Vec::new();
        for batch in builder.build().expect("reader") {
            let batch = batch.expect("batch");
            let column = batch.column_by_name("entity_id").expect("entity_id").as_string::<i32>();
            entities.extend(column.iter().map(|v| v.unwrap_or("-").to_owned()));
        }
        (entities, groups)
    }

    #[test]
    fn sources_parts_of_a_period_share_its_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let encoder = Encoder::start(file_format("t").expect("format")).expect("thread");
        // Two sources' small parts of period `a` (the same entity numbers, other entities), a
        // part of `b` between them, a part of `a` that makes the rows waiting a row group, and
        // a last small one.
        let parts = [
            ("a", 10, "li"),
            ("b", 3, "li"),
            ("a", 7, "fb"),
            ("a", crate::output::PART_ROWS, "ga"),
            ("a", 5, "hs"),
        ];
        for (key, n, prefix) in parts {
            let mut rows = encoder.open(key.to_owned(), dir.path().join(key)).expect("open");
            push_named(&mut rows, n, prefix);
            rows.close().expect("close");
        }
        let written = encoder.finish().expect("written");
        let got: Vec<(&str, u64)> = written.iter().map(|(k, _, n)| (k.as_str(), *n)).collect();
        assert_eq!(got, [("a", 22 + crate::output::PART_ROWS as u64), ("b", 3)]);

        let (entities, groups) = entities_and_groups(&dir.path().join("a"));
        assert_eq!(groups, [17 + crate::output::PART_ROWS as i64, 5], "small parts wait for the next");
        let mut want: Vec<String> = (0..10).map(|i| format!("li-{i:05}")).collect();
        want.extend((0..7).map(|i| format!("fb-{i:05}")));
        want.extend((0..crate::output::PART_ROWS).map(|i| format!("ga-{i:05}")));
        want.extend((0..5).map(|i| format!("hs-{i:05}")));
        assert_eq!(entities, want, "a source's entity numbers never stand for another's entities");
    }
}
