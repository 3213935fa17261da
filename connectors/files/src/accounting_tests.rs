//! Every line of a metrics file is accounted for, whatever is wrong with the others: written as
//! a row, quarantined with its own line number and text, or skipped with the reason. Generated
//! files with random corruption (unclosed quotes, invalid UTF-8, short lines, bad values, blank
//! lines, days outside the window, counts with a fraction) check it.

use kpipe_core::{BuildContext, DateWindow, Emitter, NaiveDate, PullRequest, Source, SourceEvent};

use crate::{FilesConfig, FilesSource};

const HEADER: &str = "date,platform,account,level,entity,metric,value,currency";

/// A small deterministic generator (xorshift64*), so that a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a generated line must become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Row,
    Quarantined,
    Skipped,
}

/// One generated line (without its line break) and its fate.
fn line(rng: &mut Rng, n: u64) -> (Vec<u8>, Fate) {
    let day = 1 + rng.below(28);
    let good = format!("2026-03-{day:02},linkedin,508,campaign,c{n},clicks,{},", rng.below(1000));
    match rng.below(11) {
        9 => (
            format!("2026-03-{day:02},linkedin,508,campaign,c{n},clicks,1.5,").into_bytes(),
            Fate::Quarantined,
        ),
        0 => (
            format!("2026-03-{day:02},linkedin,508,campaign,\"c{n},clicks,3,").into_bytes(),
            Fate::Quarantined,
        ),
        1 => {
            let mut bytes = format!("2026-03-{day:02},linkedin,508,campaign,c").into_bytes();
            bytes.extend_from_slice(&[0xff, 0xfe]);
            bytes.extend_from_slice(b",clicks,3,");
            (bytes, Fate::Quarantined)
        }
        2 => (if rng.below(2) == 0 { Vec::new() } else { b",,,, ,,,".to_vec() }, Fate::Skipped),
        3 => (format!("2026-03-{day:02},linkedin,508").into_bytes(), Fate::Quarantined),
        4 => (
            format!("2026-03-{day:02},linkedin,508,campaign,c{n},clicks,three,").into_bytes(),
            Fate::Quarantined,
        ),
        5 => (format!("2026-04-{day:02},linkedin,508,campaign,c{n},clicks,1,").into_bytes(), Fate::Skipped),
        6 => (format!("2026-03-{day:02},linkedin,508,campaign,\"c,{n}\",clicks,2,").into_bytes(), Fate::Row),
        7 => (format!("2026-03-{day:02},linkedin,508,campaign,c\"{n},clicks,2,").into_bytes(), Fate::Row),
        _ => (good.into_bytes(), Fate::Row),
    }
}

#[tokio::test]
async fn every_line_is_written_quarantined_or_skipped_whatever_the_corruption() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cx = BuildContext { source_name: "sheet".into(), config_dir: dir.path().to_path_buf() };
    let config: FilesConfig =
        toml::from_str("kind = \"metrics\"\npath = \"m.csv\"").unwrap_or_else(|e| panic!("{e}"));
    let source = FilesSource::build(config, &cx).unwrap_or_else(|e| panic!("{e}"));
    let d = |s: &str| s.parse::<NaiveDate>().unwrap_or_default();
    let window = DateWindow::new(d("2026-03-01"), d("2026-03-31")).unwrap_or_else(|e| panic!("{e}"));
    let request = PullRequest { window, run_id: "t".into(), full_refresh: false };

    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let lines = 1 + rng.below(60);
        let mut file = HEADER.as_bytes().to_vec();
        let mut fates = Vec::new();
        let mut texts = Vec::new();
        for n in 0..lines {
            let (text, fate) = line(&mut rng, n);
            file.extend_from_slice(if rng.below(4) == 0 { b"\r\n" } else { b"\n" });
            file.extend_from_slice(&text);
            fates.push(fate);
            texts.push(String::from_utf8_lossy(&text).into_owned());
        }
        // A final line break ends the last line; an empty last line needs one to exist.
        if rng.below(2) == 0 || texts.last().is_some_and(String::is_empty) {
            file.push(b'\n');
        }
        std::fs::write(dir.path().join("m.csv"), &file).unwrap_or_else(|e| panic!("{e}"));

        let (mut out, mut rx) = Emitter::channel(4096, 64);
        let result = source.pull(&request, &mut out).await;
        let flushed = out.flush().await;
        drop(out);
        result.and(flushed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let (mut rows, mut quarantined, mut skipped) = (0u64, Vec::new(), 0u64);
        while let Some(event) = rx.recv().await {
            match event {
                SourceEvent::Rows(batch) => rows += batch.len() as u64,
                SourceEvent::PeriodRows(batch) => rows += batch.len() as u64,
                SourceEvent::Quarantined(q) => quarantined.push(q),
                SourceEvent::Skipped { count, .. } => skipped += count,
                SourceEvent::Completed(_) => {}
            }
        }
        let count = |fate| fates.iter().filter(|f| **f == fate).count() as u64;
        let case = String::from_utf8_lossy(&file).into_owned();
        assert_eq!(rows + quarantined.len() as u64 + skipped, lines, "seed {seed}: lines lost in\n{case}");
        assert_eq!(rows, count(Fate::Row), "seed {seed}: rows of\n{case}");
        assert_eq!(skipped, count(Fate::Skipped), "seed {seed}: skipped lines of\n{case}");
        for q in &quarantined {
            let number: usize = q.location.rsplit(':').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            assert!(number >= 2, "seed {seed}: {q:?}");
            assert_eq!(fates[number - 2], Fate::Quarantined, "seed {seed}: line {number} of\n{case}");
            assert_eq!(q.raw, texts[number - 2], "seed {seed}: the raw text of line {number}");
        }
    }
}
