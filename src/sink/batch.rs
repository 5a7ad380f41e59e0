//! What a request hands to the sink: its accepted events' envelopes as NDJSON lines
//! back to back, with where each line and its messageId end, so that a sink that
//! needs per-event fields (a NATS subject, a `Nats-Msg-Id`, a dedup check) never
//! parses the JSON again. All envelopes of a batch share one write key, so one
//! workspace and connection.

use super::dedup::{self, Fingerprint};
use crate::model::Id;

/// One request's envelopes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch {
    /// Workspace of the request's write key.
    pub workspace_id: Id,
    /// Connection of the request's write key.
    pub connection_id: Id,
    /// Newline-terminated envelopes, back to back.
    lines: Vec<u8>,
    /// The envelopes' messageIds, back to back.
    ids: String,
    /// Per envelope: end of its line in `lines`, end of its messageId in `ids`, and
    /// whether the id came from the sender (so a copy of it may arrive again).
    ends: Vec<(usize, usize, bool)>,
    /// Per envelope, its dedup fingerprint, once `fingerprint` computed them (empty
    /// before).
    prints: Vec<Option<Fingerprint>>,
}

/// One envelope of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The envelope's JSON, without the newline.
    pub line: &'a [u8],
    /// The event's messageId (a webhook envelope's own).
    pub message_id: &'a str,
    /// Whether the sender chose the id: only such ids are deduplicated (an id intake
    /// made up is new by construction).
    pub sender_id: bool,
}

impl Batch {
    /// An empty batch for a write key's connection, with room for `bytes` of lines.
    pub fn new(workspace_id: Id, connection_id: Id, bytes: usize) -> Self {
        Self {
            workspace_id,
            connection_id,
            lines: Vec::with_capacity(bytes),
            ids: String::new(),
            ends: Vec::new(),
            prints: Vec::new(),
        }
    }

    /// Computes every envelope's dedup fingerprint (`dedup::fingerprints`) now, on the
    /// request's own task, so that the sink's single writer, which every request
    /// waits on, only reads them.
    pub fn fingerprint(&mut self) {
        let prints = dedup::fingerprints(self).collect();
        self.prints = prints;
    }

    /// The fingerprints `fingerprint` computed, one per envelope, if it was called
    /// since the last envelope was added.
    pub fn computed_fingerprints(&self) -> Option<&[Option<Fingerprint>]> {
        (!self.ends.is_empty() && self.prints.len() == self.ends.len()).then_some(&self.prints)
    }

    /// Makes room for `events` more envelopes' ids and ends (UUID-long ids), so that a
    /// batch of many events does not grow its index step by step.
    pub fn reserve_events(&mut self, events: usize) {
        self.ids.reserve(events * 36);
        self.ends.reserve(events);
    }

    /// Appends one envelope: `write` puts its JSON (no newline) at the end of the
    /// buffer it is given; on error nothing of it stays. `sender_id`: the sender chose
    /// `message_id` (see `Entry::sender_id`).
    pub fn push<E>(
        &mut self,
        message_id: &str,
        sender_id: bool,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.lines.len();
        if let Err(error) = write(&mut self.lines) {
            self.lines.truncate(start);
            return Err(error);
        }
        self.lines.push(b'\n');
        self.ids.push_str(message_id);
        self.ends
            .push((self.lines.len(), self.ids.len(), sender_id));
        Ok(())
    }

    /// Keeps the envelopes whose `keep` entry is true (one per envelope, in order):
    /// what is left once duplicates are dropped.
    pub fn retain(&mut self, keep: &[bool]) {
        if keep.iter().all(|&k| k) {
            return;
        }
        let mut kept = Batch::new(self.workspace_id, self.connection_id, self.lines.len());
        kept.reserve_events(self.len());
        for (entry, _) in self.entries().zip(keep).filter(|(_, &k)| k) {
            let copied: Result<(), std::convert::Infallible> =
                kept.push(entry.message_id, entry.sender_id, |buf| {
                    buf.extend_from_slice(entry.line);
                    Ok(())
                });
            let Ok(()) = copied;
        }
        if self.computed_fingerprints().is_some() {
            kept.prints = self
                .prints
                .iter()
                .zip(keep)
                .filter_map(|(&print, &k)| k.then_some(print))
                .collect();
        }
        *self = kept;
    }

    /// Every envelope line, newline-terminated, back to back (what a log stores).
    pub fn lines(&self) -> &[u8] {
        &self.lines
    }

    /// How many envelopes.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no envelope.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The envelopes in order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        let mut line_start = 0;
        let mut id_start = 0;
        self.ends.iter().map(move |&(line_end, id_end, sender_id)| {
            let entry = Entry {
                line: &self.lines[line_start..line_end - 1],
                message_id: &self.ids[id_start..id_end],
                sender_id,
            };
            (line_start, id_start) = (line_end, id_end);
            entry
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_give_back_each_line_and_id() {
        let mut batch = Batch::new(1, 2, 64);
        batch
            .push("m1", true, |buf| {
                buf.extend_from_slice(b"{\"a\":1}");
                Ok::<_, ()>(())
            })
            .unwrap();
        assert!(batch
            .push("bad", true, |buf| {
                buf.extend_from_slice(b"{\"half");
                Err(())
            })
            .is_err());
        batch
            .push("m2", false, |buf| {
                buf.extend_from_slice(b"{\"b\":2}");
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(batch.lines(), b"{\"a\":1}\n{\"b\":2}\n");
        let entries: Vec<_> = batch.entries().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].line, b"{\"a\":1}");
        assert_eq!(entries[0].message_id, "m1");
        assert_eq!(entries[1].line, b"{\"b\":2}");
        assert_eq!(entries[1].message_id, "m2");
        assert_eq!(batch.len(), 2);
        assert!(entries[0].sender_id && !entries[1].sender_id);
        batch.retain(&[false, true]);
        assert_eq!(batch.lines(), b"{\"b\":2}\n");
        assert_eq!(batch.entries().next().unwrap().message_id, "m2");
    }

    #[test]
    fn fingerprints_computed_early_are_those_the_writer_would_compute_and_follow_retain() {
        let mut batch = Batch::new(1, 2, 64);
        for (id, sender) in [("a", true), ("b", false), ("c", true)] {
            batch
                .push(id, sender, |buf| {
                    buf.extend_from_slice(b"{}");
                    Ok::<_, ()>(())
                })
                .unwrap();
        }
        assert_eq!(batch.computed_fingerprints(), None);
        let late: Vec<_> = dedup::fingerprints(&batch).collect();
        batch.fingerprint();
        assert_eq!(batch.computed_fingerprints(), Some(&late[..]));
        assert_eq!(late[1], None);
        assert_eq!(dedup::fingerprints(&batch).collect::<Vec<_>>(), late);
        batch.retain(&[false, true, true]);
        assert_eq!(batch.computed_fingerprints(), Some(&late[1..]));
        assert_eq!(dedup::fingerprints(&batch).collect::<Vec<_>>(), &late[1..]);
        // An envelope added afterwards makes the early ones stale: computed again.
        batch
            .push("d", true, |buf| {
                buf.extend_from_slice(b"{}");
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(batch.computed_fingerprints(), None);
        assert_eq!(dedup::fingerprints(&batch).count(), 3);
    }
}
