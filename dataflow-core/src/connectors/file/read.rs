//! Reading a file source's files: a reader per subtask keeps each file
//! it reads open, reads and decodes many lines at a time on the blocking
//! pool (the next lines while the job works on the last ones) and hands
//! the records out a turn at a time, each with its position (byte offset
//! and line number) after it.

use super::format::{Format, Kind};
use super::storage::Stores;
use crate::connectors::split::{BadInput, Split, SplitOutput, SplitReader};
use crate::error::BoxError;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

/// Lines a subtask reads and decodes from a file in one go (a trip to
/// the blocking pool and a CSV reader); they are handed out in turns.
const LINES_PER_READ: usize = 8192;

/// A file, or a byte range of one, to read, and how far: the byte offset
/// and number of the next line.
///
/// A range `start..end` holds the lines that start in it: its reader skips
/// the line under way at `start` (the range before reads it to its end)
/// and reads the last line that starts before `end` to its end.
///
/// ```
/// use dataflow_core::connectors::{file::FileSplit, split::Split};
/// let whole = FileSplit { path: "in/a.csv".into(), start: 0, end: None, offset: 0, line: 0 };
/// assert_eq!(whole.id(), "in/a.csv");
/// let range = FileSplit { start: 1 << 27, end: Some(2 << 27), ..whole };
/// assert_eq!(range.id(), "in/a.csv#134217728");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSplit {
    /// The file.
    pub path: PathBuf,
    /// Where the range starts (0 for a whole file).
    pub start: u64,
    /// Where the range ends (`None`: at the file's end).
    pub end: Option<u64>,
    /// Bytes read (from the file's start).
    pub offset: u64,
    /// Lines read (from the file's start when `start` is 0, else from
    /// the range's first line).
    pub line: u64,
}

impl Split for FileSplit {
    fn id(&self) -> String {
        match (self.start, self.end) {
            (0, None) => self.path.display().to_string(),
            (start, _) => format!("{}#{start}", self.path.display()),
        }
    }
}

/// A line decoded (or not), with the file's byte offset and line number
/// after it.
type Item<T> = (Result<T, Box<BadInput>>, u64, u64);

/// Chunks of a file being decoded at once, at most (reading stays in
/// order; decoding runs on the blocking pool, so two chunks use two cores).
const DECODING: usize = 2;

/// Where a file's reading stands.
struct Cursor {
    reader: BufReader<Box<dyn Read + Send>>,
    headers: Option<csv::StringRecord>,
    /// The position after the last line read from the file.
    at: FileSplit,
    eof: bool,
}

/// A chunk's decoding on the blocking pool.
type Decode<T> = tokio::task::JoinHandle<Vec<Item<T>>>;

/// A read on the blocking pool: the cursor back, and the decoding of the
/// lines it read (started as soon as they were read).
type Fill<T> = tokio::task::JoinHandle<Result<(Cursor, Decode<T>), BoxError>>;

/// The reading side of a file: not opened yet, open, reading on the
/// blocking pool, or at its end.
enum Reading<T> {
    Closed(FileSplit),
    Open(Cursor),
    Filling(Fill<T>),
    Ended,
}

/// A file being read: lines decoded but not handed out yet, the next
/// chunks being decoded, and the next lines being read meanwhile (so
/// reading and decoding on the blocking pool overlap the job's work on
/// what was handed out).
struct Open<T> {
    reading: Reading<T>,
    decoding: VecDeque<Decode<T>>,
    queue: VecDeque<Item<T>>,
}

/// What a blocking task's join gives back, its panic resumed here.
fn joined<R>(r: Result<R, tokio::task::JoinError>) -> Result<R, BoxError> {
    match r {
        Ok(r) => Ok(r),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(format!("reading a file was cancelled: {e}").into()),
    }
}

impl<T: DeserializeOwned + Send + 'static> Open<T> {
    fn new(split: &FileSplit) -> Self {
        Self { reading: Reading::Closed(split.clone()), decoding: VecDeque::new(), queue: VecDeque::new() }
    }

    /// Starts reading the next lines, if no read is on the way.
    fn fill(&mut self, kind: Kind, stores: &Arc<Stores>) {
        let cursor = match std::mem::replace(&mut self.reading, Reading::Ended) {
            Reading::Closed(at) => Err(at),
            Reading::Open(cursor) => Ok(cursor),
            other => {
                self.reading = other;
                return;
            }
        };
        let stores = stores.clone();
        self.reading = Reading::Filling(tokio::task::spawn_blocking(move || {
            let mut cursor = match cursor {
                Ok(cursor) => cursor,
                Err(at) => open_file(at, kind, &stores)?,
            };
            let chunk = read_lines(&mut cursor, LINES_PER_READ)?;
            let (headers, path, start) = (cursor.headers.clone(), cursor.at.path.clone(), cursor.at.start);
            let decode = tokio::task::spawn_blocking(move || decode(kind, headers.as_ref(), &path, start, &chunk));
            Ok((cursor, decode))
        }));
    }

    /// Waits for the read under way (if `wait`, else only if it is done),
    /// and queues the decoding of its lines (which runs already).
    async fn take_fill(&mut self, wait: bool) -> Result<(), BoxError> {
        let Reading::Filling(handle) = &mut self.reading else { return Ok(()) };
        if !wait && !handle.is_finished() {
            return Ok(());
        }
        let (cursor, decode) = joined(handle.await)??;
        self.reading = if cursor.eof { Reading::Ended } else { Reading::Open(cursor) };
        self.decoding.push_back(decode);
        Ok(())
    }

    /// Keeps reads and decodes going: up to [`DECODING`] chunks ahead.
    async fn read_ahead(&mut self, kind: Kind, stores: &Arc<Stores>) -> Result<(), BoxError> {
        self.take_fill(false).await?;
        if self.decoding.len() < DECODING {
            self.fill(kind, stores);
        }
        Ok(())
    }

    /// Waits until lines are queued, or the file is read.
    async fn wait_for_lines(&mut self, kind: Kind, stores: &Arc<Stores>) -> Result<(), BoxError> {
        while self.queue.is_empty() {
            if let Some(decode) = self.decoding.pop_front() {
                self.queue.extend(joined(decode.await)?);
                continue;
            }
            if matches!(self.reading, Reading::Ended) {
                return Ok(());
            }
            self.fill(kind, stores);
            self.take_fill(true).await?;
        }
        Ok(())
    }

    fn ended(&self) -> bool {
        matches!(self.reading, Reading::Ended) && self.decoding.is_empty() && self.queue.is_empty()
    }
}

/// A subtask's reader of its files.
pub(super) struct FileReader<T> {
    format: Format<T>,
    stores: Arc<Stores>,
    /// By split id.
    open: HashMap<String, Open<T>>,
}

impl<T> FileReader<T> {
    pub(super) fn new(format: Format<T>, stores: Stores) -> Self {
        Self { format, stores: Arc::new(stores), open: HashMap::new() }
    }
}

#[async_trait]
impl<T: DeserializeOwned + Send + 'static> SplitReader<T, FileSplit> for FileReader<T> {
    async fn read(&mut self, split: &mut FileSplit, max: usize, out: &mut SplitOutput<T>) -> Result<bool, BoxError> {
        let kind = self.format.kind;
        let open = self.open.entry(split.id()).or_insert_with(|| Open::new(split));
        // Reading and decoding run on the blocking pool, many lines at a
        // time; records are handed out `max` at a time.
        open.wait_for_lines(kind, &self.stores).await?;
        for _ in 0..max {
            let Some((item, offset, line)) = open.queue.pop_front() else { break };
            match item {
                Ok(v) => out.push(v),
                Err(bad) => out.bad(*bad),
            }
            (split.offset, split.line) = (offset, line);
        }
        // The next lines, while these are processed.
        open.read_ahead(kind, &self.stores).await?;
        let done = open.ended();
        if done {
            self.open.remove(&split.id());
        }
        Ok(done)
    }
}

/// Opens the file of `split` at its position (past a CSV header line; in
/// a range not begun yet, past the line under way at its start).
fn open_file(mut at: FileSplit, kind: Kind, stores: &Stores) -> Result<Cursor, BoxError> {
    let mut headers = None;
    if let Kind::Csv { headers: true, delimiter } = kind {
        let mut first = Vec::new();
        let mut start = BufReader::new(stores.open(&at.path, 0)?);
        start.read_until(b'\n', &mut first).map_err(|e| format!("cannot read {}: {e}", at.path.display()))?;
        let mut r = csv::ReaderBuilder::new().has_headers(false).delimiter(delimiter).from_reader(&first[..]);
        let header = r.records().next().transpose();
        headers = header.map_err(|e| format!("{}:1: bad CSV header: {e}", at.path.display()))?;
        if at.offset == 0 {
            (at.offset, at.line) = (first.len() as u64, 1);
        }
    }
    let begin = at.start > 0 && at.offset == at.start;
    let from = if begin { at.start - 1 } else { at.offset };
    let mut reader = BufReader::with_capacity(1 << 16, stores.open(&at.path, from)?);
    if begin {
        // Byte `start - 1` is a line break (a line starts at `start`) or
        // in the line under way, which the range before reads.
        let mut skipped = Vec::new();
        let n =
            reader.read_until(b'\n', &mut skipped).map_err(|e| format!("cannot read {}: {e}", at.path.display()))?;
        at.offset = from + n as u64;
    }
    Ok(Cursor { reader, headers, at, eof: false })
}

/// Decodes the lines of `chunk` (read from the file at `path`, in the
/// range from `start`).
fn decode<T: DeserializeOwned>(
    kind: Kind,
    headers: Option<&csv::StringRecord>,
    path: &std::path::Path,
    start: u64,
    chunk: &Chunk,
) -> Vec<Item<T>> {
    let mut items = Vec::with_capacity(chunk.lines.len());
    decode_chunk(kind, headers, chunk, |line, r| {
        let item = r.map_err(|error| {
            Box::new(BadInput {
                // A line number counts from the file's start: known in its
                // first range only.
                location: match start {
                    0 => format!("{}:{}", path.display(), line.number),
                    _ => format!("{}@{}", path.display(), line.offset_before),
                },
                raw: String::from_utf8_lossy(&chunk.text[line.start..line.end]).into_owned(),
                error,
            })
        });
        items.push((item, line.offset_after, line.number));
    });
    // (Blank lines left out at the end of a chunk are read again after a
    // restore, and left out again.)
    items
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
    /// The file's byte offsets before and after the line.
    offset_before: u64,
    offset_after: u64,
}

/// Reads up to `max` lines at `open`, moving its position on.
fn read_lines(open: &mut Cursor, max: usize) -> Result<Chunk, BoxError> {
    let err = |e: std::io::Error| format!("cannot read {}: {e}", open.at.path.display());
    let mut chunk = Chunk { text: Vec::with_capacity(max.min(4096) * 64), lines: Vec::with_capacity(max.min(4096)) };
    while chunk.lines.len() < max {
        // A range's lines are those that start before its end.
        if open.at.end.is_some_and(|end| open.at.offset >= end) {
            open.eof = true;
            break;
        }
        let start = chunk.text.len();
        let n = open.reader.read_until(b'\n', &mut chunk.text).map_err(err)?;
        if n == 0 {
            open.eof = true;
            break;
        }
        let offset_before = open.at.offset;
        open.at.offset += n as u64;
        open.at.line += 1;
        let mut end = chunk.text.len();
        while end > start && matches!(chunk.text[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let number = open.at.line;
        chunk.lines.push(Line { number, start, end, offset_before, offset_after: open.at.offset });
    }
    Ok(chunk)
}

/// Decodes the lines of `chunk` in order, handing each line's outcome to
/// `emit`; blank lines are left out. CSV goes through one reader per chunk
/// (one record per line).
fn decode_chunk<T: DeserializeOwned>(
    kind: Kind,
    headers: Option<&csv::StringRecord>,
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
            let mut record = csv::StringRecord::new();
            for l in lines {
                let decoded = match reader.read_record(&mut record) {
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
            let end = chunk.text.len();
            chunk.lines.push(Line { number: n as u64 + 1, start, end, offset_before: 0, offset_after: 0 });
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
