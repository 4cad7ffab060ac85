//! The writer: finding where the chain ends from the file's tail, and
//! appending a batch of lines under an exclusive lock, in one write,
//! made durable before the append returns.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::event::Event;
use super::line::{format_line, line_hash, parse_line, Who, GENESIS, MAX_LINE};
use crate::dirfd::Dir;
use crate::error::{Context, Error, Result};

/// How much of the end of the file an append reads at first; it reads
/// more (up to [`TAIL_MAX`]) only when the last line does not fit.
const TAIL: u64 = 8 * 1024;

/// The last complete line and a torn one after it always fit in this.
const TAIL_MAX: u64 = 2 * MAX_LINE as u64 + 2;

/// Where the next line goes on from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// `seq` of the next line.
    pub(crate) next_seq: u64,
    /// `prev` of the next line.
    pub(crate) prev: String,
    /// A torn last line: its number and bytes (to be ended and recorded).
    pub(crate) torn: Option<(u64, Vec<u8>)>,
    /// The SHA-256 of the last complete line (the torn line's own prev):
    /// the tear record carries it, so the line before a tear stays chained.
    pub(crate) before_torn: String,
}

/// Reads where the chain ends from the last bytes of the file: `window`
/// is the file's last bytes, `whole` says whether it is the whole file.
/// None: the last line does not fit in the window; read more.
pub(crate) fn tail_of(window: &[u8], whole: bool) -> Result<Option<Tail>> {
    let too_long =
        || Error::new(format!("its last line is longer than {MAX_LINE} bytes: not written by cardca"));
    if window.is_empty() {
        return Ok(Some(Tail { next_seq: 1, prev: GENESIS.into(), torn: None, before_torn: GENESIS.into() }));
    }
    // Split off a torn last line (no newline).
    let (complete, torn) = match window.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&window[..=i], &window[i + 1..]),
        None if whole => (&window[..0], window),
        None => return Ok(None),
    };
    if torn.len() > MAX_LINE {
        return Err(too_long());
    }
    let (last_seq, last_hash) = if complete.is_empty() {
        (0, GENESIS.to_string())
    } else {
        let body = &complete[..complete.len() - 1];
        let start = match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if whole => 0,
            None => return Ok(None),
        };
        let last = &body[start..];
        let parsed = parse_line(last).map_err(|e| {
            e.context("its last line is not an audit line")
                .hint("run cert-store --audit-verify FILE; nothing was appended")
        })?;
        (parsed.seq, line_hash(last))
    };
    // A seq near u64::MAX was not written by cardca: refused, not wrapped.
    let after = |k: u64| {
        last_seq
            .checked_add(k)
            .ok_or_else(|| Error::new(format!("the last line's seq {last_seq} cannot be followed")))
    };
    if torn.is_empty() {
        return Ok(Some(Tail {
            next_seq: after(1)?,
            prev: last_hash.clone(),
            torn: None,
            before_torn: last_hash,
        }));
    }
    Ok(Some(Tail {
        next_seq: after(2)?,
        prev: line_hash(torn),
        torn: Some((after(1)?, torn.to_vec())),
        before_torn: last_hash,
    }))
}

/// An audit log file and who writes to it.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    who: Who,
}

impl Log {
    pub fn new(path: PathBuf, tool: &str) -> Log {
        Log { path, who: Who::current(tool) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file for appending, creating it (and making its
    /// directory entry durable) on first use. The last component is never
    /// followed; anything but a regular file is refused.
    fn open(&self) -> Result<File> {
        let (dir, name) = Dir::holding(&self.path, ": refused")?;
        dir.open_append(&name)
    }

    /// Appends the events as one batch: locked, chained, one write, made
    /// durable before this returns. Nothing the events describe may be
    /// released before it has returned Ok.
    pub fn append(&self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.append_with(|_, _| Ok(events.to_vec())).map(drop)
    }

    /// Appends the events `make` returns, given the `seq` and `prev` the
    /// first of them gets, under the same lock (a checkpoint signs them).
    /// Returns the lines written.
    pub fn append_with(&self, make: impl FnOnce(u64, &str) -> Result<Vec<Event>>) -> Result<Vec<String>> {
        self.append_locked(make).with_context(|| format!("audit log {}", self.path.display()))
    }

    fn append_locked(&self, make: impl FnOnce(u64, &str) -> Result<Vec<Event>>) -> Result<Vec<String>> {
        let file = self.open()?;
        file.lock().context("locking")?;
        let len = file.metadata()?.len();
        // The end of the file, read again larger only when its last line
        // is longer than the first read: never the whole file.
        let mut want = TAIL;
        let tail = loop {
            let start = len.saturating_sub(want);
            let mut window = vec![0u8; (len - start) as usize];
            file.read_exact_at(&mut window, start).context("reading its end")?;
            match tail_of(&window, start == 0)? {
                Some(tail) => break tail,
                None if want < TAIL_MAX => want = (want * 4).min(TAIL_MAX),
                None => {
                    return Err(Error::new(format!(
                        "its last line is longer than {MAX_LINE} bytes: not written by cardca"
                    ))
                    .hint("run cert-store --audit-verify FILE; nothing was appended"))
                }
            }
        };
        let (mut seq, mut prev) = (tail.next_seq, tail.prev);
        let mut text = String::new();
        if let Some((number, torn)) = &tail.torn {
            // End the torn line and say so in the chain: its hash is the
            // tear record's prev, so the verifier checks the torn bytes too.
            text.push('\n');
            let record = Event::new("torn-line")
                .field("torn_line", *number)
                .field("torn_bytes", torn.len() as u64)
                .field("torn_prev", tail.before_torn.clone())
                .failed(&Error::new("the line before was torn by an interrupted write"));
            let line = format_line(&self.who, seq, &record, &prev);
            prev = line_hash(line.as_bytes());
            text.push_str(&line);
            text.push('\n');
            seq += 1;
        }
        let events = make(seq, &prev)?;
        let mut lines = Vec::with_capacity(events.len());
        for e in &events {
            let line = format_line(&self.who, seq, e, &prev);
            prev = line_hash(line.as_bytes());
            text.push_str(&line);
            text.push('\n');
            lines.push(line);
            seq += 1;
        }
        let written = (&file).write_all(text.as_bytes());
        if let Err(e) = written {
            // A full disk: cut back to where it was, so no torn line stays.
            let _ = file.set_len(len).and_then(|_| file.sync_data());
            return Err(Error::from(e).context("appending"));
        }
        file.sync_data().context("fsync")?;
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::line::MAX_VALUE;
    use crate::audit::testing::{broken, join, lines, sample, who};
    use crate::audit::verify::verify_file;

    #[test]
    fn tails() {
        let log = sample(3);
        let t = tail_of(&log, true).expect("tail").expect("fits");
        assert_eq!((t.next_seq, t.torn.is_none()), (4, true));
        assert_eq!(t.prev, line_hash(&lines(&log)[2]));
        // Only the end of a large file: the last line is found all the same.
        let t2 = tail_of(&log[log.len() - lines(&log)[2].len() - 2..], false).expect("window").expect("fits");
        assert_eq!(t2, t);
        let mut torn = log.clone();
        torn.extend_from_slice(b"{\"v\":1,\"se");
        let t = tail_of(&torn, true).expect("torn").expect("fits");
        assert_eq!(t.torn.as_ref().map(|(n, b)| (*n, b.len())), Some((4, 10)));
        assert_eq!(t.next_seq, 5);
        // A complete last line that is no audit line: refused.
        let mut bad = log.clone();
        bad.extend_from_slice(b"junk\n");
        assert!(tail_of(&bad, true).is_err());
        // Not the whole file and no whole line in the window: read more.
        assert!(tail_of(b"no newline in a window", false).expect("more").is_none());
        assert!(tail_of(&log[log.len() - 20..], false).expect("more").is_none());
        assert_eq!(tail_of(b"", true).expect("empty").expect("fits").prev, GENESIS);
    }

    #[test]
    fn appends_chain_and_record_tears() {
        let dir = std::env::temp_dir().join(format!("cardca-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("audit.log");
        let _ = std::fs::remove_file(&path);
        let log = Log::new(path.clone(), "test");
        log.append(&[Event::new("a"), Event::new("b")]).expect("append");
        // A crash in the middle of the next write.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"v\":1,\"seq\":3,\"ti").expect("tear");
        let b = verify_file(&path, None).expect("read").expect_err("torn");
        assert!(b.torn_last && b.line == 3, "{b:?}");
        log.append(&[Event::new("c")]).expect("append after the tear");
        // Lines longer than the first read of the tail: it reads more.
        let long = "\u{1}".repeat(4 * MAX_VALUE);
        let big = Event::new("big").field("a", long.as_str()).field("b", long.as_str());
        log.append(std::slice::from_ref(&big)).expect("a long line");
        log.append(&[big]).expect("after a long line");
        let r = verify_file(&path, None).expect("read").expect("verifies");
        assert_eq!((r.lines, r.tears.clone()), (7, vec![3]));
        let longest = std::fs::read(&path).expect("read").split(|&b| b == b'\n').map(<[u8]>::len).max();
        assert!(longest.is_some_and(|n| n as u64 > TAIL && n <= MAX_LINE), "{longest:?}");
        // A forged tear record on an intact line is a break.
        let text = std::fs::read(&path).expect("read");
        let l = lines(&text);
        let forged =
            format_line(&who(), 2, &Event::new("torn-line").field("torn_line", 1u64), &line_hash(&l[0]));
        let mut f = l.clone();
        f[1] = forged.into_bytes();
        assert_eq!(broken(&join(&f)).line, 2);
        #[cfg(unix)]
        {
            let link = dir.join("link.log");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&path, &link).expect("symlink");
            let e = Log::new(link.clone(), "test").append(&[Event::new("x")]).expect_err("link");
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
