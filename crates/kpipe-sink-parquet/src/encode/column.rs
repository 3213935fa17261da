//! One column of one row group, dictionary-encoded as rows arrive.
//!
//! Why not hand Arrow arrays to parquet's writer: it interns every string value of every row
//! again (a hash and a compare per value) and compares each one twice more for page
//! statistics, which made it most of the sink's time. Here a value is first compared with the
//! previous row's (most columns repeat: the same campaign for ten metrics, the same account
//! for thousands of rows), then looked up in a hash table only when it differs; statistics are
//! taken over the dictionary once per row group instead of over every row.

use std::hash::BuildHasher;

use bytes::Bytes;
use hashbrown::HashTable;
use parquet::basic::{Compression, Encoding, PageType, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use super::rle;

/// Rows per data page at most.
pub const PAGE_ROWS: u32 = 8192;

/// Dictionary size (PLAIN bytes) past which the rest of a row group's pages are PLAIN, as
/// parquet writers do: a column of nearly unique values gains nothing from a dictionary.
const DICTIONARY_LIMIT: usize = 1 << 20;

/// The physical Parquet type of a column: how its values are laid out and ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 `BYTE_ARRAY`, ordered as unsigned bytes.
    Text,
    /// `INT32` (dates as days since the epoch), little-endian.
    Int32,
    /// `INT64` (timestamps in microseconds), little-endian.
    Int64,
    /// `DECIMAL` in a 16-byte `FIXED_LEN_BYTE_ARRAY`: big-endian two's complement, ordered as
    /// signed numbers.
    Decimal16,
}

impl Kind {
    /// Appends the PLAIN encoding of a value given as its bytes.
    fn plain(self, value: &[u8], out: &mut Vec<u8>) {
        if self == Kind::Text {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(value);
    }

    /// The type's Parquet sort order, for statistics.
    fn cmp(self, a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        fn fixed<const N: usize>(v: &[u8]) -> [u8; N] {
            let mut out = [0u8; N];
            out.copy_from_slice(&v[..N]);
            out
        }
        match self {
            Kind::Text => a.cmp(b),
            Kind::Int32 => i32::from_le_bytes(fixed(a)).cmp(&i32::from_le_bytes(fixed(b))),
            Kind::Int64 => i64::from_le_bytes(fixed(a)).cmp(&i64::from_le_bytes(fixed(b))),
            Kind::Decimal16 => i128::from_be_bytes(fixed(a)).cmp(&i128::from_be_bytes(fixed(b))),
        }
    }

    fn statistics(self, min: Option<&[u8]>, max: Option<&[u8]>, nulls: u64) -> Statistics {
        let n = Some(nulls);
        match self {
            Kind::Text => {
                let b = |v: &[u8]| ByteArray::from(v.to_vec());
                Statistics::byte_array(min.map(b), max.map(b), None, n, false)
            }
            Kind::Int32 => {
                let i = |v: &[u8]| i32::from_le_bytes(v.try_into().unwrap_or_default());
                Statistics::int32(min.map(i), max.map(i), None, n, false)
            }
            Kind::Int64 => {
                let i = |v: &[u8]| i64::from_le_bytes(v.try_into().unwrap_or_default());
                Statistics::int64(min.map(i), max.map(i), None, n, false)
            }
            Kind::Decimal16 => {
                let b = |v: &[u8]| FixedLenByteArray::from(v.to_vec());
                Statistics::fixed_len_byte_array(min.map(b), max.map(b), None, n, false)
            }
        }
    }
}

/// Page compression of a column: zstd for columns whose pages shrink, none for the
/// near-constant ones (a page of one RLE run is a few bytes already).
pub struct Codec {
    level: ZstdLevel,
    /// Made when the first page is compressed: a writer of a source with few rows compresses
    /// nothing before it commits, and a run may hold dozens of writers open at once (a
    /// compression context is about 180 KB).
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec").field("zstd", &self.level).finish_non_exhaustive()
    }
}

impl Codec {
    /// zstd at `level` for the columns that ask for compression.
    pub fn zstd(level: ZstdLevel) -> Codec {
        Codec { level, compressor: None }
    }

    fn compression(&self, compressed: bool) -> Compression {
        if compressed { Compression::ZSTD(self.level) } else { Compression::UNCOMPRESSED }
    }

    fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, ParquetError> {
        let external = |e: std::io::Error| ParquetError::External(Box::new(e));
        let compressor = match &mut self.compressor {
            Some(c) => c,
            None => self
                .compressor
                .insert(zstd::bulk::Compressor::new(self.level.compression_level()).map_err(external)?),
        };
        compressor.compress(data).map_err(external)
    }
}

/// Definition levels of the page being built, as runs: most pages of a nullable column are
/// all null or all set.
#[derive(Default)]
struct LevelRuns {
    runs: Vec<(bool, u32)>,
}

impl LevelRuns {
    fn push(&mut self, present: bool) {
        match self.runs.last_mut() {
            Some((p, n)) if *p == present => *n += 1,
            _ => self.runs.push((present, 1)),
        }
    }

    fn encode(&self, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
        scratch.clear();
        for &(present, n) in &self.runs {
            scratch.extend(std::iter::repeat_n(u8::from(present), n as usize));
        }
        rle::encode(scratch, 1, out);
    }
}

/// The page being built.
#[derive(Default)]
struct PageBuffer {
    /// Dictionary indices of the non-null values, when the page is dictionary-encoded.
    indices: Vec<u32>,
    /// PLAIN values, when the dictionary was full before the page began.
    plain: Vec<u8>,
    levels: LevelRuns,
    rows: u32,
    nulls: u32,
}

/// A column chunk being built: its dictionary, its finished pages, the page in progress.
pub struct DictColumn {
    kind: Kind,
    nullable: bool,
    compressed: bool,
    /// The distinct values' bytes, one after the other: lookups touch one buffer, not a
    /// pointer per value.
    arena: Vec<u8>,
    /// Each dictionary entry's place in `arena`.
    spans: Vec<(u32, u32)>,
    table: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    /// The previous row's dictionary index: most rows repeat it.
    last: Option<u32>,
    /// Dictionary index by the caller's number for a value ([`DictColumn::push_keyed`]),
    /// `u32::MAX` for a number not seen in this row group.
    keyed: Vec<u32>,
    /// Address and length of the previous value, valid within one batch (see
    /// [`DictColumn::start_batch`]).
    last_address: (usize, usize),
    /// The dictionary is full: the rest of this row group's pages are PLAIN.
    plain_mode: bool,
    /// Whether row groups start with a dictionary.
    dictionary: bool,
    page: PageBuffer,
    pages: Vec<(Page, usize)>,
    pages_bytes: usize,
    rows: u64,
    nulls: u64,
    /// Extremes of the values written PLAIN (the dictionary's are taken at the end).
    plain_min: Option<Vec<u8>>,
    plain_max: Option<Vec<u8>>,
}

impl std::fmt::Debug for DictColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DictColumn")
            .field("kind", &self.kind)
            .field("nullable", &self.nullable)
            .field("rows", &self.rows)
            .field("dictionary_entries", &self.spans.len())
            .field("plain_mode", &self.plain_mode)
            .finish_non_exhaustive()
    }
}

impl DictColumn {
    /// A dictionary-encoded column; `compressed` columns have their pages zstd-compressed.
    pub fn new(kind: Kind, nullable: bool, compressed: bool) -> DictColumn {
        DictColumn::with_dictionary(kind, nullable, compressed, true)
    }

    /// A column that writes PLAIN pages from the start when `dictionary` is false: for values
    /// that rarely repeat (amounts), where a dictionary costs a hash lookup and cache misses
    /// per row for little gain.
    pub fn with_dictionary(kind: Kind, nullable: bool, compressed: bool, dictionary: bool) -> DictColumn {
        DictColumn {
            kind,
            nullable,
            compressed,
            arena: Vec::new(),
            spans: Vec::new(),
            table: HashTable::new(),
            hasher: foldhash::fast::FixedState::default(),
            last: None,
            keyed: Vec::new(),
            last_address: (0, 0),
            plain_mode: !dictionary,
            dictionary,
            page: PageBuffer::default(),
            pages: Vec::new(),
            pages_bytes: 0,
            rows: 0,
            nulls: 0,
            plain_min: None,
            plain_max: None,
        }
    }

    /// Rows in the row group so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes held: finished pages, the dictionary, the page in progress.
    pub fn memory_size(&self) -> usize {
        self.pages_bytes
            + self.arena.capacity()
            + self.spans.capacity() * 8
            + self.table.capacity() * 5
            + self.keyed.capacity() * 4
            + self.page.indices.capacity() * 4
            + self.page.plain.capacity()
    }

    fn entry(&self, index: u32) -> &[u8] {
        let (start, len) = self.spans[index as usize];
        &self.arena[start as usize..(start + len) as usize]
    }

    /// Forgets the previous value's address. Callers call it before each batch of values
    /// they keep borrowed while pushing them: within such a batch, bytes at one address are
    /// the same bytes, so a repeated address is a repeated value without comparing.
    pub fn start_batch(&mut self) {
        self.last_address = (0, 0);
    }

    /// Forgets the numbers given to [`DictColumn::push_keyed`]: from here on a number may stand
    /// for other bytes than before (the caller numbers another set of values).
    pub fn forget_keys(&mut self) {
        self.keyed.clear();
    }

    /// The dictionary index of `value`, added if new. `address` is the value's address and
    /// length when the caller vouches that they identify the bytes for the current batch.
    fn index_of(&mut self, value: &[u8], address: (usize, usize)) -> u32 {
        if let Some(last) = self.last {
            if address != (0, 0) && address == self.last_address {
                return last;
            }
            if self.entry(last) == value {
                self.last_address = address;
                return last;
            }
        }
        self.last_address = address;
        let hash = self.hasher.hash_one(value);
        let (arena, spans) = (&self.arena, &self.spans);
        let slice = |i: u32| {
            let (start, len) = spans[i as usize];
            &arena[start as usize..(start + len) as usize]
        };
        let index = match self.table.find(hash, |&i| slice(i) == value) {
            Some(&i) => i,
            None => {
                let i = self.spans.len() as u32;
                self.spans.push((self.arena.len() as u32, value.len() as u32));
                self.arena.extend_from_slice(value);
                let (arena, spans, hasher) = (&self.arena, &self.spans, &self.hasher);
                self.table.insert_unique(hash, i, |&j| {
                    let (start, len) = spans[j as usize];
                    hasher.hash_one(&arena[start as usize..(start + len) as usize])
                });
                i
            }
        };
        self.last = Some(index);
        index
    }

    /// Appends a non-null value, given as its bytes (see [`Kind`]).
    pub fn push(&mut self, value: &[u8], codec: &mut Codec) -> Result<(), ParquetError> {
        self.push_at(value, (0, 0), codec)
    }

    /// [`DictColumn::push`] for a value that stays borrowed, unchanged, until the next
    /// [`DictColumn::start_batch`]: a value at the previous value's address is then known to
    /// be the same without comparing bytes. Never for a value in a temporary.
    pub fn push_borrowed(&mut self, value: &[u8], codec: &mut Codec) -> Result<(), ParquetError> {
        self.push_at(value, (value.as_ptr() as usize, value.len()), codec)
    }

    /// [`DictColumn::push`] for a value the caller numbers (`key`, small and dense: an
    /// entity's place in a table): from the second push of a number in a row group on, its
    /// dictionary index is taken from that number, with neither hashing nor comparing bytes.
    /// A number must stand for the same bytes for the whole row group.
    pub fn push_keyed(&mut self, key: u32, value: &[u8], codec: &mut Codec) -> Result<(), ParquetError> {
        if self.plain_mode {
            return self.push(value, codec);
        }
        let slot = key as usize;
        if slot >= self.keyed.len() {
            self.keyed.resize(slot + 1, u32::MAX);
        }
        let index = match self.keyed[slot] {
            u32::MAX => {
                let index = self.index_of(value, (0, 0));
                self.keyed[slot] = index;
                index
            }
            known => {
                self.last = Some(known);
                self.last_address = (0, 0);
                known
            }
        };
        self.page.indices.push(index);
        if self.nullable {
            self.page.levels.push(true);
        }
        self.end_row(codec)
    }

    fn push_at(
        &mut self,
        value: &[u8],
        address: (usize, usize),
        codec: &mut Codec,
    ) -> Result<(), ParquetError> {
        if self.plain_mode {
            self.kind.plain(value, &mut self.page.plain);
            let kind = self.kind;
            if self.plain_min.as_deref().is_none_or(|m| kind.cmp(value, m).is_lt()) {
                self.plain_min = Some(value.to_vec());
            }
            if self.plain_max.as_deref().is_none_or(|m| kind.cmp(value, m).is_gt()) {
                self.plain_max = Some(value.to_vec());
            }
        } else {
            let index = self.index_of(value, address);
            self.page.indices.push(index);
        }
        if self.nullable {
            self.page.levels.push(true);
        }
        self.end_row(codec)
    }

    /// Appends a null; an error for a column that is not nullable.
    pub fn push_null(&mut self, codec: &mut Codec) -> Result<(), ParquetError> {
        self.check_nullable()?;
        self.page.levels.push(false);
        self.page.nulls += 1;
        self.nulls += 1;
        self.end_row(codec)
    }

    /// Appends `value` `n` times (a column constant for the whole writer).
    pub fn push_repeated(
        &mut self,
        value: &[u8],
        mut n: usize,
        codec: &mut Codec,
    ) -> Result<(), ParquetError> {
        if self.plain_mode || self.nullable {
            return (0..n).try_for_each(|_| self.push(value, codec));
        }
        let index = self.index_of(value, (0, 0));
        while n > 0 {
            let now = n.min((PAGE_ROWS - self.page.rows) as usize);
            self.page.indices.extend(std::iter::repeat_n(index, now));
            self.page.rows += now as u32;
            self.rows += now as u64;
            if self.page.rows >= PAGE_ROWS {
                self.cut_page(codec)?;
            }
            n -= now;
        }
        Ok(())
    }

    /// Appends `n` nulls; an error for a column that is not nullable.
    pub fn push_nulls(&mut self, mut n: usize, codec: &mut Codec) -> Result<(), ParquetError> {
        if n > 0 {
            self.check_nullable()?;
        }
        while n > 0 {
            let now = n.min((PAGE_ROWS - self.page.rows) as usize);
            let k = now as u32;
            match self.page.levels.runs.last_mut() {
                Some((false, len)) => *len += k,
                _ => self.page.levels.runs.push((false, k)),
            }
            self.page.nulls += k;
            self.page.rows += k;
            self.nulls += u64::from(k);
            self.rows += u64::from(k);
            if self.page.rows >= PAGE_ROWS {
                self.cut_page(codec)?;
            }
            n -= now;
        }
        Ok(())
    }

    /// Appends `value` or a null. Only nullable columns take a null.
    pub fn push_opt(&mut self, value: Option<&[u8]>, codec: &mut Codec) -> Result<(), ParquetError> {
        match value {
            Some(v) => self.push(v, codec),
            None => self.push_null(codec),
        }
    }

    /// Appends `value` or a null; see [`DictColumn::push_borrowed`].
    pub fn push_opt_borrowed(&mut self, value: Option<&[u8]>, codec: &mut Codec) -> Result<(), ParquetError> {
        match value {
            Some(v) => self.push_borrowed(v, codec),
            None => self.push_null(codec),
        }
    }

    fn check_nullable(&self) -> Result<(), ParquetError> {
        if self.nullable {
            Ok(())
        } else {
            Err(ParquetError::General("a null in a column that is not nullable".to_owned()))
        }
    }

    fn end_row(&mut self, codec: &mut Codec) -> Result<(), ParquetError> {
        self.page.rows += 1;
        self.rows += 1;
        if self.page.rows >= PAGE_ROWS { self.cut_page(codec) } else { Ok(()) }
    }

    /// Encodes the page in progress and keeps it for the chunk.
    #[inline(never)]
    fn cut_page(&mut self, codec: &mut Codec) -> Result<(), ParquetError> {
        let page = std::mem::take(&mut self.page);
        if page.rows == 0 {
            return Ok(());
        }
        let mut levels = Vec::new();
        if self.nullable {
            page.levels.encode(&mut Vec::with_capacity(page.rows as usize), &mut levels);
        }
        let dictionary_encoded = !self.plain_mode && !self.spans.is_empty();
        let values = if dictionary_encoded {
            let width = rle::bit_width(self.spans.len().saturating_sub(1) as u32);
            let mut values = Vec::with_capacity(page.indices.len() / 4 + 16);
            values.push(width);
            rle::encode(&page.indices, width, &mut values);
            values
        } else {
            page.plain
        };
        let uncompressed = levels.len() + values.len();
        let is_compressed = self.compressed;
        let values = if is_compressed { codec.compress(&values)? } else { values };
        let mut buf = levels;
        let def_levels_byte_len = buf.len() as u32;
        buf.extend_from_slice(&values);
        self.pages_bytes += buf.len();
        self.pages.push((
            Page::DataPageV2 {
                buf: Bytes::from(buf),
                num_values: page.rows,
                encoding: if dictionary_encoded { Encoding::RLE_DICTIONARY } else { Encoding::PLAIN },
                num_nulls: page.nulls,
                num_rows: page.rows,
                def_levels_byte_len,
                rep_levels_byte_len: 0,
                is_compressed,
                statistics: None,
            },
            uncompressed,
        ));
        if !self.plain_mode && self.arena.len() + 4 * self.spans.len() > DICTIONARY_LIMIT {
            self.plain_mode = true;
        }
        Ok(())
    }

    /// Finishes the row group's chunk: its encoded bytes (the dictionary page, then the data
    /// pages) and its metadata, with offsets counted from the start of those bytes. The column
    /// is empty afterwards, ready for the next row group.
    pub fn finish(
        &mut self,
        descr: ColumnDescPtr,
        codec: &mut Codec,
    ) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        self.cut_page(codec)?;
        let compression = codec.compression(self.compressed);
        let compress = compression != Compression::UNCOMPRESSED;
        let mut sink = TrackedWrite::new(Vec::new());
        let mut writer = SerializedPageWriter::new(&mut sink);
        let mut compressed_size = 0u64;
        let mut uncompressed_size = 0u64;
        let mut dictionary_offset = None;
        let mut data_offset = None;
        let mut encodings = vec![Encoding::RLE];
        // Per page type and encoding, how many pages: readers that filter row groups by the
        // dictionary (Spark's parquet-mr) need to know that no data page fell back to PLAIN.
        let mut page_stats: Vec<PageEncodingStats> = Vec::new();
        let mut count_page = |page_type: PageType, encoding: Encoding| match page_stats
            .iter_mut()
            .find(|s| s.page_type == page_type && s.encoding == encoding)
        {
            Some(s) => s.count += 1,
            None => page_stats.push(PageEncodingStats { page_type, encoding, count: 1 }),
        };
        if self.pages.iter().any(|(p, _)| p.encoding() == Encoding::RLE_DICTIONARY) {
            let mut plain = Vec::with_capacity(self.arena.len() + 4 * self.spans.len());
            for i in 0..self.spans.len() as u32 {
                self.kind.plain(self.entry(i), &mut plain);
            }
            let uncompressed = plain.len();
            let buf = if compress { codec.compress(&plain)? } else { plain };
            let page = Page::DictionaryPage {
                buf: Bytes::from(buf),
                num_values: self.spans.len() as u32,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            };
            count_page(page.page_type(), page.encoding());
            let spec = writer.write_page(CompressedPage::new(page, uncompressed))?;
            dictionary_offset = Some(spec.offset as i64);
            compressed_size += spec.compressed_size as u64;
            uncompressed_size += spec.uncompressed_size as u64;
            encodings.extend([Encoding::PLAIN, Encoding::RLE_DICTIONARY]);
        }
        for (page, uncompressed) in self.pages.drain(..) {
            if page.encoding() == Encoding::PLAIN && !encodings.contains(&Encoding::PLAIN) {
                encodings.push(Encoding::PLAIN);
            }
            count_page(page.page_type(), page.encoding());
            let spec = writer.write_page(CompressedPage::new(page, uncompressed))?;
            data_offset.get_or_insert(spec.offset as i64);
            compressed_size += spec.compressed_size as u64;
            uncompressed_size += spec.uncompressed_size as u64;
        }
        writer.close()?;
        let bytes = Bytes::from(sink.into_inner()?);

        let kind = self.kind;
        let values = (0..self.spans.len() as u32).map(|i| self.entry(i));
        let plain = [self.plain_min.as_deref(), self.plain_max.as_deref()].into_iter().flatten();
        let min = values.clone().chain(plain.clone()).min_by(|a, b| kind.cmp(a, b));
        let max = values.chain(plain).max_by(|a, b| kind.cmp(a, b));
        let statistics = kind.statistics(min, max, self.nulls);
        let metadata = ColumnChunkMetaData::builder(descr)
            .set_compression(compression)
            .set_encodings(encodings)
            .set_num_values(self.rows as i64)
            .set_total_compressed_size(compressed_size as i64)
            .set_total_uncompressed_size(uncompressed_size as i64)
            .set_data_page_offset(data_offset.unwrap_or(0))
            .set_dictionary_page_offset(dictionary_offset)
            .set_statistics(statistics)
            .set_page_encoding_stats(page_stats)
            .build()?;
        let close = ColumnCloseResult {
            bytes_written: compressed_size,
            rows_written: self.rows,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: None,
        };
        self.reset();
        Ok((bytes, close))
    }

    fn reset(&mut self) {
        self.arena.clear();
        self.spans.clear();
        self.table.clear();
        self.keyed.clear();
        self.last = None;
        self.last_address = (0, 0);
        self.plain_mode = !self.dictionary;
        self.page = PageBuffer::default();
        self.pages_bytes = 0;
        self.rows = 0;
        self.nulls = 0;
        self.plain_min = None;
        self.plain_max = None;
    }
}
