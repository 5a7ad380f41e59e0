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
        let buffers: Vec<&[u8]> = buffers.filter(|b| !b.is_empty()).collect();
        let written = write_all_vectored(file, &buffers)?;
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

/// Buffers one `writev` takes at most (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// Writes `buffers` in order with as few `writev` calls as the kernel allows (one per
/// group commit, usually, instead of one `write` per request); the bytes written.
fn write_all_vectored(file: &mut File, buffers: &[&[u8]]) -> std::io::Result<u64> {
    let total: usize = buffers.iter().map(|b| b.len()).sum();
    let (mut index, mut offset, mut done) = (0, 0, 0);
    while index < buffers.len() {
        let end = (index + MAX_IOVECS).min(buffers.len());
        let mut slices: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(end - index);
        slices.push(std::io::IoSlice::new(&buffers[index][offset..]));
        slices.extend(
            buffers[index + 1..end]
                .iter()
                .map(|b| std::io::IoSlice::new(b)),
        );
        let mut n = match file.write_vectored(&slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        done += n;
        // Skip what was written: whole buffers, then into the next one.
        while n > 0 {
            let left = buffers[index].len() - offset;
            if n >= left {
                n -= left;
                index += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
    }
    debug_assert_eq!(done, total);
    Ok(done as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_writes_keep_every_buffer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = File::create(&path).unwrap();
        let owned: Vec<Vec<u8>> = (0..2500).map(|i| format!("{i}\n").into_bytes()).collect();
        let buffers: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let written = write_all_vectored(&mut file, &buffers).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written as usize, text.len());
        assert_eq!(
            text,
            owned
                .concat()
                .iter()
                .map(|&b| b as char)
                .collect::<String>()
        );
    }
}
