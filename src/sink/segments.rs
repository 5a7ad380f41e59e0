//! Append-only segment files: NDJSON written with one fsync per group of buffers,
//! rolled by size, never rewritten (a failed write is cut off again). Shared by the log
//! sink and the spool of the Redis and NATS sinks.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

/// Segment file suffix.
const SEGMENT_SUFFIX: &str = ".ndjson";

/// Append-only NDJSON segment files in one directory, named by a growing sequence.
pub struct Segments {
    dir: PathBuf,
    roll_at: u64,
    next_sequence: u64,
    current: Option<(File, u64)>,
}

impl Segments {
    /// Continues after the highest segment already in `dir`.
    pub fn new(dir: PathBuf, roll_at: u64) -> std::io::Result<Self> {
        let mut highest = 0;
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(SEGMENT_SUFFIX)
                .and_then(|s| s.parse().ok())
            {
                highest = highest.max(n);
            }
        }
        Ok(Self {
            dir,
            roll_at,
            next_sequence: highest + 1,
            current: None,
        })
    }

    /// Writes every buffer, then one fsync. On error the segment is cut back to its
    /// last acknowledged byte and kept for the next attempt, so a partly written batch
    /// is never followed by acknowledged data, and a full disk does not leave one
    /// empty segment per attempt. Only if that cut fails is the segment abandoned.
    pub fn append<'a>(&mut self, buffers: impl Iterator<Item = &'a [u8]>) -> std::io::Result<()> {
        let outcome = self.append_inner(buffers);
        if outcome.is_err() {
            let cut = self
                .current
                .as_mut()
                .map(|(file, size)| file.set_len(*size).and_then(|()| file.sync_data()));
            if let Some(Err(error)) = cut {
                tracing::warn!(%error, "could not cut a failed segment back; starting a new one");
                self.current = None;
            }
        }
        outcome
    }

    fn append_inner<'a>(&mut self, buffers: impl Iterator<Item = &'a [u8]>) -> std::io::Result<()> {
        if self
            .current
            .as_ref()
            .is_none_or(|(_, size)| *size >= self.roll_at)
        {
            self.roll()?;
        }
        let Some((file, size)) = self.current.as_mut() else {
            return Err(std::io::Error::other("no open segment"));
        };
        let mut written = 0;
        for buffer in buffers {
            file.write_all(buffer)?;
            written += buffer.len() as u64;
        }
        file.sync_data()?;
        *size += written;
        Ok(())
    }

    /// Closes the current segment so that the next append starts a new one; every
    /// existing file is then complete and may be read and removed.
    pub fn seal(&mut self) -> std::io::Result<()> {
        if let Some((file, _)) = self.current.take() {
            file.sync_all()?;
        }
        Ok(())
    }

    /// The segment files, oldest first.
    pub fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(SEGMENT_SUFFIX))
            .collect();
        files.sort();
        Ok(files)
    }

    fn roll(&mut self) -> std::io::Result<()> {
        if let Some((file, _)) = self.current.take() {
            file.sync_all()?;
        }
        let path = self
            .dir
            .join(format!("{:020}{SEGMENT_SUFFIX}", self.next_sequence));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        self.next_sequence += 1;
        self.current = Some((file, 0));
        // The new name must survive a crash too (a failure here leaves the segment
        // current, to be reused by the next attempt).
        File::open(&self.dir)?.sync_all()
    }
}
