//! Which snapshot files a table restores from, in which order: the files'
//! headers group them into chains (one per writer: a full file, then
//! deltas) and order each chain, before any entry is read.
//!
//! A chain is named by its writer's key groups and its full file's
//! sequence number (`ChainInfo::key_groups`, `ChainInfo::base`); within
//! it, each delta's `parent` must be the `sequence` of the file before it.
//! A file without a chain (format version 1, or a bytes backend's) is a
//! chain of its own.

use crate::backend::format::{self, ChainInfo, FileHeader, SnapshotKind};
use crate::{KeyGroupRange, StateError};
use std::path::Path;

/// One file to apply.
pub(super) struct Step<'a> {
    pub(super) file: &'a Path,
    pub(super) header: FileHeader,
    /// Whether it is the newest file of its chain (its extra entries are
    /// the ones restored).
    pub(super) newest: bool,
}

/// What a restore reads, and where it leaves the table.
pub(super) struct Plan<'a> {
    /// The files to apply, chain after chain (in the order of each
    /// chain's first file in the input), each chain from its full file on.
    pub(super) steps: Vec<Step<'a>>,
    /// The newest file of the one chain restored, if that chain is of the
    /// restoring table's key groups: the next delta can follow it.
    pub(super) continues: Option<ChainInfo>,
    /// The highest sequence number among the files.
    pub(super) max_sequence: Option<u64>,
}

/// A chain's writer's key groups and its full file's sequence; `None`: a
/// file without a chain.
type ChainName = Option<(KeyGroupRange, u64)>;

fn broken(file: &Path, reason: impl Into<String>) -> StateError {
    StateError::broken_chain(file, reason)
}

fn overlap(a: KeyGroupRange, b: KeyGroupRange) -> bool {
    a.start < b.end && b.start < a.end
}

/// Groups and orders `files` for a table of key groups `range`, checking
/// that every chain is whole.
pub(super) fn plan<'a>(files: &[&'a Path], range: KeyGroupRange) -> Result<Plan<'a>, StateError> {
    // Chains in the order of their first file; `None`: a file on its own.
    let mut chains: Vec<(ChainName, Vec<(&'a Path, FileHeader)>)> = Vec::new();
    let mut max_sequence = None;
    for file in files {
        let header = format::read_file_header(file)?;
        let Some(c) = header.chain else {
            chains.push((None, vec![(*file, header)]));
            continue;
        };
        max_sequence = max_sequence.max(Some(c.sequence));
        let name = Some((c.key_groups, c.base));
        match chains.iter_mut().find(|(n, _)| *n == name) {
            Some((_, members)) => members.push((*file, header)),
            None => chains.push((name, vec![(*file, header)])),
        }
    }

    let mut steps = Vec::new();
    let mut read: Vec<(&Path, KeyGroupRange)> = Vec::new();
    let mut chained = 0;
    let mut continues = None;
    let mut legacy = false;
    for (name, mut members) in chains {
        let Some((key_groups, base)) = name else {
            legacy = true;
            steps.extend(members.into_iter().map(|(file, header)| Step { file, header, newest: true }));
            continue;
        };
        members.sort_by_key(|(_, h)| h.chain.map_or(0, |c| c.sequence));
        // Check the chain even if it is not read: a broken one says the
        // caller lost a file.
        let mut prev: Option<ChainInfo> = None;
        for (file, header) in &members {
            let Some(c) = header.chain else { continue };
            match prev {
                None if c.kind != SnapshotKind::Full || c.sequence != base => {
                    return Err(broken(
                        file,
                        format!(
                            "the full file of its chain (key groups {}..{}, sequence {base}) is not among the files",
                            key_groups.start, key_groups.end
                        ),
                    ));
                }
                Some(p) if p.sequence == c.sequence => {
                    return Err(broken(file, format!("a second file at sequence {} of its chain", c.sequence)));
                }
                Some(p) if c.kind != SnapshotKind::Delta || c.parent != p.sequence => {
                    return Err(broken(
                        file,
                        format!(
                            "it follows sequence {} but the newest earlier file of its chain is sequence {} \
                             (a file between them is missing)",
                            c.parent, p.sequence
                        ),
                    ));
                }
                _ => {}
            }
            prev = Some(c);
        }
        let first = members.first().map(|(f, _)| *f);
        if let (Some(file), Some((other, _))) = (first, read.iter().find(|(_, r)| overlap(*r, key_groups))) {
            return Err(broken(
                file,
                format!(
                    "its chain's key groups {}..{} overlap those of the chain of {} (pass one chain per writer)",
                    key_groups.start,
                    key_groups.end,
                    other.display()
                ),
            ));
        }
        if let Some(file) = first {
            read.push((file, key_groups));
        }
        if !overlap(key_groups, range) {
            continue; // none of its entries are this table's
        }
        chained += 1;
        continues = prev.filter(|c| c.key_groups == range);
        let n = members.len();
        steps.extend(members.into_iter().enumerate().map(|(i, (file, header))| Step {
            file,
            header,
            newest: i + 1 == n,
        }));
    }
    if chained != 1 || legacy {
        continues = None;
    }
    Ok(Plan { steps, continues, max_sequence })
}
