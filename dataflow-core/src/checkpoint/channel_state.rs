//! Channel state: the in-flight records of an unaligned checkpoint, as
//! one task logged them (see `runtime::alignment`), and their replay.
//!
//! The log is a sequence of entries, each the input channel's number
//! followed by one batch (values, then timestamps), in postcard. A
//! two-input task numbers the second input's channels after the first's,
//! so the number also says how to decode the batch. The file's checksum
//! is in the checkpoint's `_metadata`.

use crate::element::Batch;
use crate::element::Data;
use crate::error::Error;
use std::path::{Path, PathBuf};

/// Appends `batch`, delivered by `channel`, to `log`.
pub(crate) fn append<T: Data>(log: &mut Vec<u8>, channel: usize, batch: &Batch<T>, task: &str) -> Result<(), Error> {
    let (values, timestamps) = batch.parts();
    let entry = (channel as u32, values, timestamps);
    *log = postcard::to_extend(&entry, std::mem::take(log))
        .map_err(|e| Error::Internal(format!("cannot log an in-flight record of {task}: {e}")))?;
    Ok(())
}

/// A channel-state file being read back, entry by entry.
pub(crate) struct Replay {
    bytes: Vec<u8>,
    at: usize,
    file: PathBuf,
}

impl Replay {
    /// Reads the channel-state file `file`.
    pub(crate) fn open(file: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(file).map_err(Error::checkpoint_io(file))?;
        Ok(Self { bytes, at: 0, file: file.to_path_buf() })
    }

    fn corrupt(&self, reason: impl std::fmt::Display) -> Error {
        Error::CheckpointCorrupt { path: self.file.clone(), reason: format!("at byte {}: {reason}", self.at) }
    }

    /// The channel number of the next entry, if any is left.
    pub(crate) fn next_channel(&mut self) -> Result<Option<usize>, Error> {
        if self.at == self.bytes.len() {
            return Ok(None);
        }
        let (ch, rest) = postcard::take_from_bytes::<u32>(&self.bytes[self.at..]).map_err(|e| self.corrupt(e))?;
        self.at = self.bytes.len() - rest.len();
        Ok(Some(ch as usize))
    }

    /// The batch of the entry whose channel [`next_channel`](Self::next_channel) returned.
    pub(crate) fn batch<T: Data>(&mut self) -> Result<Batch<T>, Error> {
        let ((values, timestamps), rest) =
            postcard::take_from_bytes::<(Vec<T>, Vec<i64>)>(&self.bytes[self.at..]).map_err(|e| self.corrupt(e))?;
        self.at = self.bytes.len() - rest.len();
        Batch::from_parts(values, timestamps).ok_or_else(|| self.corrupt("a batch with the wrong number of timestamps"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_replays_in_order_and_damage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Vec::new();
        let mut a = Batch::new();
        a.push_with(String::from("x"), Some(5));
        append(&mut log, 1, &a, "t").unwrap();
        append(&mut log, 0, &Batch::from(vec![String::from("y"), String::from("z")]), "t").unwrap();
        let file = dir.path().join("ch");
        std::fs::write(&file, &log).unwrap();
        let mut r = Replay::open(&file).unwrap();
        assert_eq!(r.next_channel().unwrap(), Some(1));
        assert_eq!(r.batch::<String>().unwrap(), a);
        assert_eq!(r.next_channel().unwrap(), Some(0));
        assert_eq!(r.batch::<String>().unwrap().values(), ["y", "z"]);
        assert_eq!(r.next_channel().unwrap(), None);
        std::fs::write(&file, &log[..log.len() - 1]).unwrap();
        let mut r = Replay::open(&file).unwrap();
        r.next_channel().unwrap();
        r.batch::<String>().unwrap();
        r.next_channel().unwrap();
        let err = r.batch::<String>().unwrap_err().to_string();
        assert!(err.contains(&file.display().to_string()), "{err}");
    }
}
