//! Files: the file source reads the files of a folder (or one file) as
//! text lines, CSV or JSON Lines, typed through serde, one split per file, on
//! the [split framework](super::split) — so it resumes from (file, byte
//! offset), rescales, and keeps a watermark per file.
//!
//! A line that does not decode goes to the job's bad-record policy with
//! the file, the line number (from 1) and its text. Bounded by default;
//! [`FileSource::continuous`] follows the folder and reads files added
//! later (a file is read once, when found: write it elsewhere and rename it
//! into the folder when complete). Hidden files (`.name`) and files whose
//! name starts with `_` are left out.
//!
//! ```
//! use dataflow_core::connectors::file::{FileSource, Format};
//! use dataflow_core::{time::WatermarkStrategy, StreamEnvironment};
//!
//! #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct Order { id: u64, amount: f64 }
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("a.csv"), "id,amount\n1,2.5\n2,x\n3,4.0\n").unwrap();
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = StreamEnvironment::new()
//!     .with_bad_record_policy(dataflow_core::operator::BadRecordPolicy::Skip);
//! let orders = FileSource::new(dir.path(), Format::<Order>::csv());
//! let out = env.from_source(orders.into(), WatermarkStrategy::no_watermarks()).collect();
//! env.execute().await.unwrap();
//! let mut ids: Vec<u64> = out.take().iter().map(|o| o.id).collect();
//! ids.sort();
//! assert_eq!(ids, [1, 3]); // line 3 skipped
//! # });
//! ```

use super::split::{BadInput, Split, SplitEnumerator, SplitOutput, SplitReader, SplitSource};
use super::two_phase::Encoder;
use crate::error::BoxError;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Lines a subtask reads and decodes from a file in one go (a trip to
/// the blocking pool and a CSV reader); they are handed out in turns.
const LINES_PER_READ: usize = 8192;

/// How a line becomes a record.
pub struct Format<T> {
    kind: Kind,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Format<T> {
    fn clone(&self) -> Self {
        Self { kind: self.kind, _t: PhantomData }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Lines,
    Csv { headers: bool, delimiter: u8 },
    JsonLines,
}

impl Format<String> {
    /// Each line as it is (without its line break).
    pub fn lines() -> Self {
        Self { kind: Kind::Lines, _t: PhantomData }
    }
}

impl<T: DeserializeOwned> Format<T> {
    /// CSV with a header line: each line is one record, its fields matched
    /// to `T`'s by the header's names (the `csv` crate). Quoted fields may
    /// not span lines.
    pub fn csv() -> Self {
        Self { kind: Kind::Csv { headers: true, delimiter: b',' }, _t: PhantomData }
    }

    /// CSV without a header line: fields match `T`'s in order.
    pub fn csv_without_headers() -> Self {
        Self { kind: Kind::Csv { headers: false, delimiter: b',' }, _t: PhantomData }
    }

    /// CSV with another field delimiter (`b'\t'`, `b';'`).
    pub fn with_delimiter(self, delimiter: u8) -> Self {
        match self.kind {
            Kind::Csv { headers, .. } => Self { kind: Kind::Csv { headers, delimiter }, _t: PhantomData },
            _ => self,
        }
    }

    /// JSON Lines: one JSON value per line (`serde_json`); blank lines are
    /// left out.
    pub fn json_lines() -> Self {
        Self { kind: Kind::JsonLines, _t: PhantomData }
    }
}

impl<T: serde::Serialize + 'static> Format<T> {
    /// How the file sink writes a value in this format, one line each: CSV
    /// without a header line (fields in `T`'s order), one JSON value, or a
    /// string as it is (other values of `lines()` as JSON).
    ///
    /// ```
    /// use dataflow_core::connectors::file::Format;
    /// let mut out = Vec::new();
    /// Format::<(u8, String)>::csv().encoder()(&(1, "a b".into()), &mut out).unwrap();
    /// Format::<(u8, String)>::json_lines().encoder()(&(2, "c".into()), &mut out).unwrap();
    /// assert_eq!(String::from_utf8(out).unwrap(), "1,a b\n[2,\"c\"]\n");
    /// ```
    pub fn encoder(&self) -> Encoder<T> {
        match self.kind {
            Kind::Csv { delimiter, .. } => Arc::new(move |v: &T, out: &mut Vec<u8>| {
                let mut w = csv::WriterBuilder::new().has_headers(false).delimiter(delimiter).from_writer(&mut *out);
                w.serialize(v).and_then(|()| w.flush().map_err(csv::Error::from)).map_err(|e| e.to_string())
            }),
            Kind::JsonLines => Arc::new(|v: &T, out: &mut Vec<u8>| {
                serde_json::to_writer(&mut *out, v).map_err(|e| e.to_string())?;
                out.push(b'\n');
                Ok(())
            }),
            Kind::Lines => Arc::new(|v: &T, out: &mut Vec<u8>| {
                match serde_json::to_value(v).map_err(|e| e.to_string())? {
                    serde_json::Value::String(s) => out.extend_from_slice(s.as_bytes()),
                    other => out.extend_from_slice(other.to_string().as_bytes()),
                }
                out.push(b'\n');
                Ok(())
            }),
        }
    }
}

/// Where and how the file sink writes: exactly-once part files in a
/// folder, in a [`Format`], rolled at every checkpoint and, optionally,
/// once a part holds a number of bytes.
/// [`Stream::write_files`](crate::Stream::write_files) adds it.
///
/// ```
/// use dataflow_core::connectors::file::{FileOutput, Format};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
/// env.from_iter(vec![(1u8, "a".to_string()), (2, "b".into())])
///     .write_files(FileOutput::new(dir.path(), Format::csv()).with_max_part_bytes(4));
/// env.execute().await.unwrap();
/// let lines = dataflow_core::connectors::two_phase::read_committed(dir.path()).unwrap();
/// assert_eq!(lines, ["1,a", "2,b"]);
/// assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2); // two parts
/// # });
/// ```
pub struct FileOutput<T> {
    pub(crate) dir: PathBuf,
    pub(crate) encoder: Encoder<T>,
    pub(crate) max_part_bytes: Option<u64>,
}

impl<T: serde::Serialize + 'static> FileOutput<T> {
    /// Part files in `dir` (created if missing), in `format`.
    pub fn new(dir: impl Into<PathBuf>, format: Format<T>) -> Self {
        Self { dir: dir.into(), encoder: format.encoder(), max_part_bytes: None }
    }

    /// Also rolls to a new part once a part holds `bytes` bytes.
    pub fn with_max_part_bytes(self, bytes: u64) -> Self {
        Self { max_part_bytes: Some(bytes), ..self }
    }
}

/// A file to read, and how far: the byte offset and number of the next line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSplit {
    /// The file.
    pub path: PathBuf,
    /// Bytes read.
    pub offset: u64,
    /// Lines read.
    pub line: u64,
}

impl Split for FileSplit {
    fn id(&self) -> String {
        self.path.display().to_string()
    }
}

/// A file source: a folder or a file, in a [`Format`].
pub struct FileSource<T> {
    path: PathBuf,
    format: Format<T>,
    discovery: Option<Duration>,
}

impl<T: DeserializeOwned + Send + 'static> FileSource<T> {
    /// Reads the files of folder `path` (or the file `path`), bounded.
    pub fn new(path: impl Into<PathBuf>, format: Format<T>) -> Self {
        Self { path: path.into(), format, discovery: None }
    }

    /// Follows the folder: looks for new files every `interval`.
    pub fn continuous(self, interval: Duration) -> Self {
        Self { discovery: Some(interval), ..self }
    }
}

impl<T: DeserializeOwned + Send + 'static> From<FileSource<T>> for SplitSource<T, FileSplit> {
    fn from(f: FileSource<T>) -> Self {
        let (path, format) = (Arc::new(f.path), f.format);
        let source = SplitSource::new(
            "file source",
            move |_| Files(path.clone()),
            move |_| FileReader { format: format.clone(), open: HashMap::new() },
        );
        match f.discovery {
            Some(interval) => source.continuous(interval),
            None => source,
        }
    }
}

struct Files(Arc<PathBuf>);

#[async_trait]
impl SplitEnumerator<FileSplit> for Files {
    async fn discover(&mut self) -> Result<Vec<FileSplit>, BoxError> {
        let path = self.0.clone();
        let files = super::blocking::blocking(move || list(&path)).await??;
        Ok(files.into_iter().map(|path| FileSplit { path, offset: 0, line: 0 }).collect())
    }
}

/// The files of `path` (itself if a file), sorted, hidden ones left out.
fn list(path: &std::path::Path) -> Result<Vec<PathBuf>, BoxError> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| format!("cannot list {}: {e}", path.display()))? {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !name.starts_with('_') && entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// A line decoded (or not), with the file's byte offset and line number
/// after it.
type Item<T> = (Result<T, BadInput>, u64, u64);

/// Where a file's reading stands.
struct Cursor {
    reader: BufReader<std::fs::File>,
    headers: Option<csv::ByteRecord>,
    /// The position after the last line read from the file.
    at: FileSplit,
    eof: bool,
}

/// A fill on the blocking pool: the cursor back, and the lines it decoded.
type Fill<T> = tokio::task::JoinHandle<Result<(Cursor, Vec<Item<T>>), BoxError>>;

/// The reading side of a file: not opened yet, open, filling on the
/// blocking pool, or at its end.
enum Reading<T> {
    Closed(FileSplit),
    Open(Cursor),
    Filling(Fill<T>),
    Ended,
}

/// A file being read: lines decoded but not handed out yet, and the next
/// lines being read and decoded meanwhile (so decoding on the blocking
/// pool overlaps the job's work on what was handed out).
struct Open<T> {
    reading: Reading<T>,
    queue: VecDeque<Item<T>>,
}

impl<T: DeserializeOwned + Send + 'static> Open<T> {
    /// Starts reading and decoding the next lines, if none are on the way.
    fn fill(&mut self, kind: Kind) {
        let cursor = match std::mem::replace(&mut self.reading, Reading::Ended) {
            Reading::Closed(at) => Err(at),
            Reading::Open(cursor) => Ok(cursor),
            other => {
                self.reading = other;
                return;
            }
        };
        self.reading = Reading::Filling(tokio::task::spawn_blocking(move || {
            let mut cursor = match cursor {
                Ok(cursor) => cursor,
                Err(at) => open_file(at, kind)?,
            };
            let items = fill(&mut cursor, kind, LINES_PER_READ)?;
            Ok((cursor, items))
        }));
    }

    /// Waits for the fill under way, and queues its lines.
    async fn take_fill(&mut self) -> Result<(), BoxError> {
        let Reading::Filling(handle) = &mut self.reading else { return Ok(()) };
        let (cursor, items) = match handle.await {
            Ok(r) => r?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(format!("reading a file was cancelled: {e}").into()),
        };
        self.reading = if cursor.eof { Reading::Ended } else { Reading::Open(cursor) };
        self.queue.extend(items);
        Ok(())
    }
}

struct FileReader<T> {
    format: Format<T>,
    open: HashMap<PathBuf, Open<T>>,
}

#[async_trait]
impl<T: DeserializeOwned + Send + 'static> SplitReader<T, FileSplit> for FileReader<T> {
    async fn read(&mut self, split: &mut FileSplit, max: usize, out: &mut SplitOutput<T>) -> Result<bool, BoxError> {
        let kind = self.format.kind;
        let open = self
            .open
            .entry(split.path.clone())
            .or_insert_with(|| Open { reading: Reading::Closed(split.clone()), queue: VecDeque::new() });
        // Reading and decoding run on the blocking pool, many lines at a
        // time; records are handed out `max` at a time.
        if open.queue.is_empty() {
            open.fill(kind);
            open.take_fill().await?;
        }
        for _ in 0..max {
            let Some((item, offset, line)) = open.queue.pop_front() else { break };
            match item {
                Ok(v) => out.push(v),
                Err(bad) => out.bad(bad),
            }
            (split.offset, split.line) = (offset, line);
        }
        // The next lines, while these are processed.
        if open.queue.len() < LINES_PER_READ {
            open.fill(kind);
        }
        let done = matches!(open.reading, Reading::Ended) && open.queue.is_empty();
        if done {
            self.open.remove(&split.path);
        }
        Ok(done)
    }
}

/// Opens the file of `split` at its position (past a CSV header line).
fn open_file(mut at: FileSplit, kind: Kind) -> Result<Cursor, BoxError> {
    let path = at.path.clone();
    let err = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut file = std::fs::File::open(&path).map_err(err)?;
    let mut headers = None;
    if let Kind::Csv { headers: true, delimiter } = kind {
        let mut first = String::new();
        BufReader::new(&mut file).read_line(&mut first).map_err(err)?;
        let mut r = csv::ReaderBuilder::new().has_headers(false).delimiter(delimiter).from_reader(first.as_bytes());
        let header = r.byte_records().next().transpose();
        headers = header.map_err(|e| format!("{}:1: bad CSV header: {e}", path.display()))?;
        if at.offset == 0 {
            (at.offset, at.line) = (first.len() as u64, 1);
        }
    }
    file.seek(SeekFrom::Start(at.offset)).map_err(err)?;
    Ok(Cursor { reader: BufReader::with_capacity(1 << 16, file), headers, at, eof: false })
}

/// Reads up to `max` lines at `cursor` and decodes them.
fn fill<T: DeserializeOwned>(cursor: &mut Cursor, kind: Kind, max: usize) -> Result<Vec<Item<T>>, BoxError> {
    let chunk = read_lines(cursor, max)?;
    let path = &cursor.at.path;
    let mut items = Vec::with_capacity(chunk.lines.len());
    decode_chunk(kind, cursor.headers.as_ref(), &chunk, |line, r| {
        let item = r.map_err(|error| BadInput {
            location: format!("{}:{}", path.display(), line.number),
            raw: String::from_utf8_lossy(&chunk.text[line.start..line.end]).into_owned(),
            error,
        });
        items.push((item, line.offset_after, line.number));
    });
    // (Blank lines left out at the end of a chunk are read again after a
    // restore, and left out again.)
    Ok(items)
}

/// Lines read in one go: their bytes in one buffer, and where each is.
struct Chunk {
    text: Vec<u8>,
    lines: Vec<Line>,
}

/// A line of a [`Chunk`]: its number in the file and its bytes (without
/// the line break).
struct Line {
    number: u64,
    start: usize,
    end: usize,
    /// The file's byte offset after the line.
    offset_after: u64,
}

/// Reads up to `max` lines at `open`, moving its position on.
fn read_lines(open: &mut Cursor, max: usize) -> Result<Chunk, BoxError> {
    let err = |e: std::io::Error| format!("cannot read {}: {e}", open.at.path.display());
    let mut chunk = Chunk { text: Vec::with_capacity(max.min(4096) * 64), lines: Vec::with_capacity(max.min(4096)) };
    while chunk.lines.len() < max {
        let start = chunk.text.len();
        let n = open.reader.read_until(b'\n', &mut chunk.text).map_err(err)?;
        if n == 0 {
            open.eof = true;
            break;
        }
        open.at.offset += n as u64;
        open.at.line += 1;
        let mut end = chunk.text.len();
        while end > start && matches!(chunk.text[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        chunk.lines.push(Line { number: open.at.line, start, end, offset_after: open.at.offset });
    }
    Ok(chunk)
}

/// Decodes the lines of `chunk` in order, handing each line's outcome to
/// `emit`; blank lines are left out. CSV goes through one reader per chunk
/// (one record per line).
fn decode_chunk<T: DeserializeOwned>(
    kind: Kind,
    headers: Option<&csv::ByteRecord>,
    chunk: &Chunk,
    mut emit: impl FnMut(&Line, Result<T, String>),
) {
    let text = |l: &Line| &chunk.text[l.start..l.end];
    let blank = |l: &Line| text(l).iter().all(u8::is_ascii_whitespace);
    let lines = chunk.lines.iter().filter(|l| !blank(l) || matches!(kind, Kind::Lines));
    match kind {
        Kind::Lines => lines.for_each(|l| {
            let decoded = std::str::from_utf8(text(l)).map_err(|e| e.to_string()).and_then(|text| {
                let de = serde::de::IntoDeserializer::<serde::de::value::Error>::into_deserializer(text);
                T::deserialize(de).map_err(|e| e.to_string())
            });
            emit(l, decoded)
        }),
        Kind::JsonLines => lines.for_each(|l| emit(l, serde_json::from_slice(text(l)).map_err(|e| e.to_string()))),
        Kind::Csv { delimiter, .. } => {
            // csv skips blank lines too, so records and lines stay in step.
            let mut reader =
                csv::ReaderBuilder::new().has_headers(false).delimiter(delimiter).from_reader(&chunk.text[..]);
            let mut record = csv::ByteRecord::new();
            for l in lines {
                let decoded = match reader.read_byte_record(&mut record) {
                    Ok(true) => record.deserialize(headers).map_err(|e| e.to_string()),
                    Ok(false) => Err("no CSV record on this line".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                emit(l, decoded);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `text` (lines) as `kind`: the values, or the errors.
    fn decode<T: DeserializeOwned>(kind: Kind, text: &str) -> Vec<Result<T, String>> {
        let mut chunk = Chunk { text: Vec::new(), lines: Vec::new() };
        for (n, l) in text.split('\n').enumerate() {
            let start = chunk.text.len();
            chunk.text.extend_from_slice(l.as_bytes());
            chunk.lines.push(Line { number: n as u64 + 1, start, end: chunk.text.len(), offset_after: 0 });
            chunk.text.push(b'\n');
        }
        let mut out = Vec::new();
        decode_chunk(kind, None, &chunk, |_, r| out.push(r));
        out
    }

    #[test]
    fn each_format_decodes_its_lines() {
        assert_eq!(decode::<String>(Kind::Lines, "a,b\n"), [Ok("a,b".to_string()), Ok(String::new())]);
        assert_eq!(decode::<(u8, String)>(Kind::JsonLines, "[1,\"x\"]\n  "), [Ok((1, "x".into()))]);
        let csv = Kind::Csv { headers: false, delimiter: b';' };
        let got = decode::<(u8, String)>(csv, "2;y\n\nz;y\n3;w");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Ok((2, "y".into())));
        assert!(got[1].is_err());
        assert_eq!(got[2], Ok((3, "w".into())));
    }
}
