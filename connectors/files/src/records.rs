//! Cutting a file into records line by line, so that one broken line never takes others with it.
//!
//! These files hold one observation per line. A CSV reader left to itself treats a quote that is
//! never closed as the start of a field running to the next quote, however many lines later, and
//! every line in between is lost inside one bad record. Here a record is one physical line; it
//! spans more lines only when a quote opened in it closes at the end of a later line (at most
//! [`MAX_SPAN_LINES`] later) and the joined lines have as many fields as the header. A quote that
//! does not close that way makes its own line a broken record, and reading resumes at the next
//! line.

/// How many lines one quoted field may span.
pub(crate) const MAX_SPAN_LINES: usize = 50;

/// One record as found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord<'a> {
    /// Its first line, counting from 1.
    pub line: u64,
    /// How many lines it spans (1 but for a quoted field holding line breaks).
    pub lines: u64,
    /// Its bytes, without the line break that ends it.
    pub bytes: &'a [u8],
    /// A quote opened in it is never closed.
    pub unclosed_quote: bool,
}

impl RawRecord<'_> {
    /// Its text for the quarantine: the bytes as read, invalid UTF-8 replaced by U+FFFD.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.bytes).into_owned()
    }
}

/// Where the CSV quoting rules (RFC 4180, as the `csv` crate reads them) stand after some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the field's end, or the first half of `""`.
    QuoteInQuoted,
    /// Text after a quoted field's closing quote, before the delimiter: the `csv` crate keeps
    /// it, but no well-formed record has it.
    AfterClosed,
}

impl Quoting {
    fn after(self, bytes: &[u8], delimiter: u8) -> Quoting {
        bytes.iter().fold(self, |state, &b| match (state, b) {
            (Quoting::Quoted, b'"') => Quoting::QuoteInQuoted,
            (Quoting::Quoted, _) => Quoting::Quoted,
            (Quoting::QuoteInQuoted, b'"') => Quoting::Quoted,
            (Quoting::FieldStart, b'"') => Quoting::Quoted,
            (_, b) if b == delimiter => Quoting::FieldStart,
            (Quoting::QuoteInQuoted | Quoting::AfterClosed, _) => Quoting::AfterClosed,
            _ => Quoting::Unquoted,
        })
    }

    fn open(self) -> bool {
        self == Quoting::Quoted
    }
}

/// The records of a file, in order.
#[derive(Debug)]
pub(crate) struct Records<'a> {
    bytes: &'a [u8],
    delimiter: u8,
    /// Start of the next line.
    pos: usize,
    /// Number of the next line.
    line: u64,
    /// Fields a record spanning lines must have (the header's), once known.
    fields: Option<usize>,
}

impl<'a> Records<'a> {
    pub fn new(bytes: &'a [u8], delimiter: u8) -> Records<'a> {
        Records { bytes, delimiter, pos: 0, line: 1, fields: None }
    }

    /// Sets how many fields a record spanning several lines must have.
    pub fn expect_fields(&mut self, fields: usize) {
        self.fields = Some(fields);
    }

    /// The line starting at `start`: its content (without `\n` or `\r\n`) and where the next
    /// one starts.
    fn line_at(&self, start: usize) -> (&'a [u8], usize) {
        let rest = &self.bytes[start..];
        let (content, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], start + i + 1),
            None => (rest, self.bytes.len()),
        };
        (content.strip_suffix(b"\r").unwrap_or(content), next)
    }

    /// The lines `start..` joined into one record when a quote opened in the first closes at
    /// the end of a later one and the whole has the expected fields: its end and the start of
    /// the line after it, and how many lines it spans.
    fn quoted_span(&self, start: usize, first_end: usize, first_next: usize) -> Option<(usize, usize, u64)> {
        let mut state = Quoting::FieldStart.after(&self.bytes[start..first_end], self.delimiter);
        let mut next = first_next;
        for extra in 1..MAX_SPAN_LINES {
            if next >= self.bytes.len() {
                return None;
            }
            // The line break is part of the quoted field.
            state = state.after(b"\n", self.delimiter);
            let (content, after) = self.line_at(next);
            let end = next + content.len();
            // Where the quote closes, what follows must be a delimiter or the line's end.
            let mut closed_well = true;
            for &b in content {
                state = state.after(&[b], self.delimiter);
                closed_well &= state != Quoting::AfterClosed;
            }
            if !state.open() {
                if !closed_well {
                    return None;
                }
                let fields = field_count(&self.bytes[start..end], self.delimiter);
                return (self.fields.is_none() || self.fields == Some(fields)).then_some((
                    end,
                    after,
                    extra as u64 + 1,
                ));
            }
            next = after;
        }
        None
    }
}

/// Fields of one record, as the `csv` crate splits them.
fn field_count(bytes: &[u8], delimiter: u8) -> usize {
    let mut reader = record_reader(bytes, delimiter);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => record.len(),
        _ => 0,
    }
}

/// A CSV reader of one record's bytes.
pub(crate) fn record_reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .buffer_capacity(bytes.len().clamp(64, 8 * 1024))
        .from_reader(bytes)
}

impl<'a> Iterator for Records<'a> {
    type Item = RawRecord<'a>;

    fn next(&mut self) -> Option<RawRecord<'a>> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let line = self.line;
        let (content, next) = self.line_at(start);
        let end = start + content.len();
        let open = Quoting::FieldStart.after(content, self.delimiter).open();
        let (end, next, lines, unclosed_quote) = match open.then(|| self.quoted_span(start, end, next)) {
            None => (end, next, 1, false),
            Some(Some((end, next, lines))) => (end, next, lines, false),
            Some(None) => (end, next, 1, true),
        };
        self.pos = next;
        self.line += lines;
        Some(RawRecord { line, lines, bytes: &self.bytes[start..end], unclosed_quote })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str, fields: Option<usize>) -> Vec<(u64, u64, String, bool)> {
        let mut records = Records::new(text.as_bytes(), b',');
        if let Some(f) = fields {
            records.expect_fields(f);
        }
        records.map(|r| (r.line, r.lines, r.text(), r.unclosed_quote)).collect()
    }

    #[test]
    fn one_record_per_line_with_crlf_and_no_final_break() {
        assert_eq!(
            cut("a,b\r\n1,2\r\n\r\n3,4", Some(2)),
            [
                (1, 1, "a,b".into(), false),
                (2, 1, "1,2".into(), false),
                (3, 1, String::new(), false),
                (4, 1, "3,4".into(), false),
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_breaks_its_own_line_only() {
        let text = "a,b,c\n\"x,1,2\n3,4,5\n6,\"7\",8\n";
        assert_eq!(
            cut(text, Some(3)),
            [
                (1, 1, "a,b,c".into(), false),
                (2, 1, "\"x,1,2".into(), true),
                (3, 1, "3,4,5".into(), false),
                (4, 1, "6,\"7\",8".into(), false),
            ]
        );
    }

    #[test]
    fn a_quoted_field_may_hold_line_breaks_and_doubled_quotes() {
        let text = "a,b,c\n1,\"two\nlines, \"\"quoted\"\"\",3\n4,5,6\n";
        assert_eq!(
            cut(text, Some(3)),
            [
                (1, 1, "a,b,c".into(), false),
                (2, 2, "1,\"two\nlines, \"\"quoted\"\"\",3".into(), false),
                (4, 1, "4,5,6".into(), false),
            ]
        );
    }

    #[test]
    fn a_span_with_the_wrong_field_count_is_not_taken() {
        // The quote of line 2 "closes" at the start of line 4's field: joined, lines 2-4 would
        // be one record of the wrong shape.
        let text = "a,b,c\n\"x,1,2\n3,4,5\n\"6\",7\n";
        let got = cut(text, Some(3));
        assert_eq!(got[1], (2, 1, "\"x,1,2".into(), true));
        assert_eq!(got.len(), 4);
        // Nor one whose quote closes in the middle of a field.
        let text = "a,b,c\n\"x,1,2\n3,4,5\n\"6\"z,7,8\n";
        let got = cut(text, Some(3));
        assert_eq!(got[1], (2, 1, "\"x,1,2".into(), true));
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_a_character() {
        assert_eq!(cut("a,b\n5\" screen,1\n", Some(2))[1], (2, 1, "5\" screen,1".into(), false));
    }

    #[test]
    fn invalid_utf8_is_kept_lossily() {
        let bytes = b"a,b\n\xff\xfe,1\n";
        let records: Vec<_> = Records::new(bytes, b',').collect();
        assert_eq!(records[1].text(), "\u{fffd}\u{fffd},1");
    }
}
