//! Formats: how a line of a file becomes a record (text lines, CSV,
//! JSON Lines, through serde), and how the file sink writes one.

use crate::connectors::two_phase::Encoder;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;

/// How a line becomes a record.
pub struct Format<T> {
    pub(super) kind: Kind,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Format<T> {
    fn clone(&self) -> Self {
        Self { kind: self.kind, _t: PhantomData }
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
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
