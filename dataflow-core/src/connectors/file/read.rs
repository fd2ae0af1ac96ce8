//! Reading a file source's files: a reader per subtask keeps each file
//! it reads open; a task per open file reads it in chunks on the blocking
//! pool, ahead of the job, and has each chunk split into lines and decoded
//! there; the reader hands the records out a turn at a time, each with its
//! position (byte offset and line number) after it.

use super::format::{Format, Kind};
use super::storage::Stores;
use crate::connectors::split::{BadInput, Split, SplitOutput, SplitReader};
use crate::error::BoxError;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

/// Bytes a subtask reads from a file in one go (then on to the end of the
/// line under way): a chunk, split into lines and decoded on the blocking
/// pool, its records handed out in turns.
const BYTES_PER_READ: u64 = 512 * 1024;

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

/// Chunks of a file read ahead of the one handed out, at most: each is
/// decoded on the blocking pool as soon as it is read, so with two cores
/// two chunks decode at once while the job works on a third.
const AHEAD: usize = 3;

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

/// What a file's reading task sends, in reading order: a chunk being
/// decoded (and whether it is the file's last), or why reading stopped.
enum Chunked<T> {
    Chunk(Decode<T>, bool),
    Failed(BoxError),
    Panicked(tokio::task::JoinError),
}

/// A file being read: the records of the chunk being handed out, and the
/// chunks read and being decoded after it.
struct Open<T> {
    current: std::vec::IntoIter<Item<T>>,
    chunks: tokio::sync::mpsc::Receiver<Chunked<T>>,
    last: bool,
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
    /// Starts reading `split`: a task reads chunks in order on the blocking
    /// pool, starts each one's decoding there and sends it on, up to
    /// [`AHEAD`] chunks ahead of the reader (it stops when the reader is
    /// dropped).
    fn start(split: &FileSplit, kind: Kind, stores: &Arc<Stores>) -> Self {
        let (tx, chunks) = tokio::sync::mpsc::channel(AHEAD);
        let (mut at, stores) = (Err(split.clone()), stores.clone());
        tokio::spawn(async move {
            loop {
                let Ok(room) = tx.reserve().await else { return };
                let stores = stores.clone();
                let read = tokio::task::spawn_blocking(move || -> Result<_, BoxError> {
                    let mut cursor = match at {
                        Ok(cursor) => cursor,
                        Err(at) => open_file(at, kind, &stores)?,
                    };
                    let (text, offset, line) = read_chunk(&mut cursor, BYTES_PER_READ)?;
                    let (headers, path, start) = (cursor.headers.clone(), cursor.at.path.clone(), cursor.at.start);
                    let decode = tokio::task::spawn_blocking(move || {
                        let chunk = Chunk::split(text, offset, line);
                        decode(kind, headers.as_ref(), &path, start, &chunk)
                    });
                    Ok((cursor, decode))
                });
                match read.await {
                    Ok(Ok((cursor, decode))) => {
                        let eof = cursor.eof;
                        room.send(Chunked::Chunk(decode, eof));
                        if eof {
                            return;
                        }
                        at = Ok(cursor);
                    }
                    Ok(Err(e)) => return room.send(Chunked::Failed(e)),
                    Err(e) => return room.send(Chunked::Panicked(e)),
                }
            }
        });
        Self { current: Vec::new().into_iter(), chunks, last: false }
    }

    /// Waits until records are at hand, or the file is read.
    async fn wait_for_lines(&mut self) -> Result<(), BoxError> {
        while self.current.len() == 0 && !self.last {
            match self.chunks.recv().await {
                Some(Chunked::Chunk(decode, last)) => {
                    self.current = joined(decode.await)?.into_iter();
                    self.last = last;
                }
                Some(Chunked::Failed(e)) => return Err(e),
                Some(Chunked::Panicked(e)) => return Err(joined::<()>(Err(e)).unwrap_err()),
                None => return Err("reading a file stopped".into()),
            }
        }
        Ok(())
    }

    fn ended(&self) -> bool {
        self.last && self.current.len() == 0
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
        let (kind, stores) = (self.format.kind, &self.stores);
        let open = self.open.entry(split.id()).or_insert_with(|| Open::start(split, kind, stores));
        // Reading and decoding run on the blocking pool, many lines at a
        // time and ahead; records are handed out `max` at a time.
        open.wait_for_lines().await?;
        for (item, offset, line) in open.current.by_ref().take(max) {
            match item {
                Ok(v) => out.push(v),
                Err(bad) => out.bad(*bad),
            }
            (split.offset, split.line) = (offset, line);
        }
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

impl Chunk {
    /// The lines of `text`, read from the file at byte `offset` after
    /// `line` lines.
    fn split(text: Vec<u8>, offset: u64, line: u64) -> Self {
        let mut lines = Vec::with_capacity(text.len() / 32);
        let mut start = 0;
        while start < text.len() {
            let next = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i + 1);
            let mut end = next;
            while end > start && matches!(text[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            let (offset_before, offset_after) = (offset + start as u64, offset + next as u64);
            lines.push(Line { number: line + lines.len() as u64 + 1, start, end, offset_before, offset_after });
            start = next;
        }
        Self { text, lines }
    }
}

/// Reads about `bytes` bytes at `open` and on to the end of the line under
/// way (in a range, only lines that start before its end), moving its
/// position on: the text, and the byte offset and number of lines read
/// before it.
fn read_chunk(open: &mut Cursor, bytes: u64) -> Result<(Vec<u8>, u64, u64), BoxError> {
    let err = |e: std::io::Error| format!("cannot read {}: {e}", open.at.path.display());
    let (offset, line) = (open.at.offset, open.at.line);
    // A range's lines are those that start before its end.
    let want = match open.at.end {
        Some(end) => bytes.min(end.saturating_sub(offset)),
        None => bytes,
    };
    let mut text = Vec::with_capacity(want as usize + 256);
    if want > 0 {
        let n = (&mut open.reader).take(want).read_to_end(&mut text).map_err(err)?;
        open.eof = (n as u64) < want;
    }
    if !open.eof && !text.is_empty() && !text.ends_with(b"\n") {
        // The line under way started inside: read it to its end.
        open.reader.read_until(b'\n', &mut text).map_err(err)?;
    }
    open.at.offset += text.len() as u64;
    let unended = !text.is_empty() && !text.ends_with(b"\n");
    open.at.line += memchr::memchr_iter(b'\n', &text).count() as u64 + u64::from(unended);
    if text.is_empty() || open.at.end.is_some_and(|end| open.at.offset >= end) {
        open.eof = true;
    }
    Ok((text, offset, line))
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
        let chunk = Chunk::split(format!("{text}\n").into_bytes(), 0, 0);
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

    /// Reads `text` from its start up to a range end `end`, `bytes` at a
    /// time: each line's text, number and offsets.
    fn lines_read(text: &str, end: Option<u64>, bytes: u64) -> Vec<(String, u64, u64, u64)> {
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        let at = FileSplit { path: "f".into(), start: 0, end, offset: 0, line: 0 };
        let mut cursor = Cursor { reader: BufReader::new(reader), headers: None, at, eof: false };
        let mut lines = Vec::new();
        while !cursor.eof {
            let (text, offset, line) = read_chunk(&mut cursor, bytes).unwrap();
            assert_eq!(offset, lines.last().map_or(0, |l: &(String, u64, u64, u64)| l.3));
            assert_eq!(line, lines.len() as u64);
            let chunk = Chunk::split(text, offset, line);
            for l in &chunk.lines {
                let s = String::from_utf8(chunk.text[l.start..l.end].to_vec()).unwrap();
                lines.push((s, l.number, l.offset_before, l.offset_after));
            }
            assert_eq!((cursor.at.offset, cursor.at.line), lines.last().map_or((0, 0), |l| (l.3, l.1)));
        }
        lines
    }

    #[test]
    fn chunks_hold_whole_lines_and_a_range_the_lines_that_start_in_it() {
        for text in ["a\nbb\n\nccc\r\nd", "a\nbb\n\nccc\r\nd\n", "", "\n\n"] {
            // The lines by hand: text, number, offsets before and after.
            let mut want = Vec::new();
            let mut at = 0;
            for (i, l) in text.split_inclusive('\n').enumerate() {
                let s = l.trim_end_matches(['\n', '\r']).to_string();
                want.push((s, i as u64 + 1, at, at + l.len() as u64));
                at += l.len() as u64;
            }
            for bytes in 1..=7 {
                assert_eq!(lines_read(text, None, bytes), want, "{text:?} {bytes}");
                for end in 0..=text.len() as u64 + 1 {
                    let starting: Vec<_> = want.iter().filter(|l| l.2 < end).cloned().collect();
                    assert_eq!(lines_read(text, Some(end), bytes), starting, "{text:?} {bytes} {end}");
                }
            }
        }
    }
}
