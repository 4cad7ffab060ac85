//! The writer: finding where the chain ends from the file's tail, and
//! appending a batch of lines under an exclusive lock, in one write,
//! made durable before the append returns.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::event::Event;
use super::line::{cut_short, format_line, line_hash, parse_line, Who, GENESIS, MAX_LINE, MAX_TORN_RUN};
use crate::dirfd::Dir;
use crate::error::{Context, Error, Result};

/// How much of the end of the file an append reads at first; it reads
/// more (up to [`TAIL_MAX`]) only when its last lines do not fit.
const TAIL: u64 = 8 * 1024;

/// The last good line and the torn lines after it always fit in this
/// (the newline before the good line included, to know where it starts).
const TAIL_MAX: u64 = (MAX_TORN_RUN as u64 + 1) * (MAX_LINE as u64 + 1) + 1;

/// How many times an append opens the log again when, once locked, the
/// name no longer leads to the file it opened (rotated or replaced in
/// between). One is what a rotation costs; more in a row is refused.
const OPEN_TRIES: usize = 3;

/// Where the next line goes on from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// `seq` of the next line.
    pub(crate) next_seq: u64,
    /// `prev` of the next line.
    pub(crate) prev: String,
    /// Lines a crash cut short at the end, to be recorded.
    pub(crate) torn: Option<Torn>,
}

/// The lines a crash cut short at the end of the log: one torn line, or
/// more when the appends that were recording it crashed too.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Torn {
    /// The first and last torn line's numbers.
    pub(crate) first: u64,
    pub(crate) last: u64,
    /// How many bytes they are, with the newlines between them (the
    /// record's `prev` is their SHA-256).
    pub(crate) bytes: u64,
    /// The SHA-256 of the last good line before them (their first one's
    /// own prev, which may be lost with its end).
    pub(crate) before: String,
    /// The last of them still has no newline.
    pub(crate) unended: bool,
}

fn too_long() -> Error {
    Error::new(format!("its last line is longer than {MAX_LINE} bytes: not written by cardca"))
        .hint("run cert-store --audit-verify FILE; nothing was appended")
}

/// Reads where the chain ends from the last bytes of the file: `window`
/// is the file's last bytes, `whole` says whether it is the whole file.
/// None: the last lines do not fit in the window; read more.
///
/// Going back from the end: a last line without a newline is torn;
/// before it, each line that is no audit line but begins as one does was
/// torn too (a crash cut it short and an append ended it, then crashed
/// itself); the first audit line is where the chain goes on from. A line
/// that is neither is refused.
pub(crate) fn tail_of(window: &[u8], whole: bool) -> Result<Option<Tail>> {
    let unended = window.last().is_some_and(|&b| b != b'\n');
    // The torn lines found, from the end: [start, stop) without newline.
    let mut torn: Vec<(usize, usize)> = Vec::new();
    let mut good = None;
    let mut end = window.len();
    while end > 0 {
        let stop = if torn.is_empty() && unended { end } else { end - 1 };
        let start = match window[..stop].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if whole => 0,
            None => return Ok(None),
        };
        let line = &window[start..stop];
        if line.len() > MAX_LINE {
            return Err(too_long());
        }
        if !(torn.is_empty() && unended) {
            match parse_line(line) {
                Ok(parsed) => {
                    good = Some((parsed.seq, line_hash(line)));
                    break;
                }
                Err(_) if cut_short(line) => {}
                Err(e) => {
                    let which =
                        if torn.is_empty() { "its last line" } else { "the line before its torn end" };
                    return Err(e
                        .context(format!("{which} is not an audit line"))
                        .hint("run cert-store --audit-verify FILE; nothing was appended"));
                }
            }
        }
        torn.push((start, stop));
        if torn.len() > MAX_TORN_RUN {
            return Err(Error::new(format!(
                "more than {MAX_TORN_RUN} lines at its end are cut short: not left by crashes alone"
            ))
            .hint("run cert-store --audit-verify FILE; nothing was appended"));
        }
        end = start;
    }
    let (last_seq, before) = good.unwrap_or_else(|| (0, GENESIS.to_string()));
    // A seq near u64::MAX was not written by cardca: refused, not wrapped.
    let after = |k: usize| {
        last_seq
            .checked_add(k as u64)
            .ok_or_else(|| Error::new(format!("the last line's seq {last_seq} cannot be followed")))
    };
    let (Some(&(_, stop)), Some(&(start, _))) = (torn.first(), torn.last()) else {
        return Ok(Some(Tail { next_seq: after(1)?, prev: before, torn: None }));
    };
    let bytes = &window[start..stop];
    Ok(Some(Tail {
        next_seq: after(torn.len() + 1)?,
        prev: line_hash(bytes),
        torn: Some(Torn {
            first: after(1)?,
            last: after(torn.len())?,
            bytes: bytes.len() as u64,
            before,
            unended,
        }),
    }))
}

/// The bytes an append writes after `tail`, and the lines of the events:
/// first, if the log ends torn, the record of its torn lines, then the
/// events `make` gives for the `seq` and `prev` they start from.
///
/// Recording a tear is safe to repeat. The newline that ends a torn line
/// and the record go out in the same write(2) as the events, but one
/// write is not atomic against a crash (a kill between pages of a large
/// batch, a power cut before the fdatasync): any beginning of these bytes
/// may be all that is left. Whatever is left is again a torn end that
/// [`tail_of`] reads: the torn line ended but not recorded, or a record
/// cut short after it. The next append's record then names every one of
/// those lines (`torn_line` the first, `torn_last` the last) and its
/// `prev` is the SHA-256 of all their bytes, so one record covers a run
/// however many recoveries crashed. Writing the newline and the record
/// separately, or truncating the torn bytes, would not close that window
/// and would lose the bytes the chain vouches for.
pub(crate) fn compose(
    who: &Who,
    tail: Tail,
    make: impl FnOnce(u64, &str) -> Result<Vec<Event>>,
) -> Result<(String, Vec<String>)> {
    let (mut seq, mut prev) = (tail.next_seq, tail.prev);
    let mut text = String::new();
    if let Some(torn) = &tail.torn {
        if torn.unended {
            text.push('\n');
        }
        let why = if torn.first == torn.last {
            "the line before was torn by an interrupted write".to_string()
        } else {
            format!(
                "the {} lines before were torn by an interrupted write and the appends that crashed while \
                 recording it",
                torn.last - torn.first + 1
            )
        };
        // Its prev is the torn bytes' hash, so the verifier checks them
        // too; torn_prev chains the line before them, whose hash the
        // first torn line may have lost with its end.
        let record = Event::new("torn-line")
            .field("torn_line", torn.first)
            .field("torn_last", torn.last)
            .field("torn_bytes", torn.bytes)
            .field("torn_prev", torn.before.clone())
            .failed(&Error::new(why));
        let line = format_line(who, seq, &record, &prev);
        prev = line_hash(line.as_bytes());
        text.push_str(&line);
        text.push('\n');
        seq += 1;
    }
    let events = make(seq, &prev)?;
    let mut lines = Vec::with_capacity(events.len());
    for e in &events {
        let line = format_line(who, seq, e, &prev);
        prev = line_hash(line.as_bytes());
        text.push_str(&line);
        text.push('\n');
        lines.push(line);
        seq += 1;
    }
    Ok((text, lines))
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

    /// Opens the file for appending (creating it, and making its
    /// directory entry durable, on first use; the last component never
    /// followed; anything but a regular file refused) and locks it
    /// exclusively. `after_open` runs between the open and the lock (the
    /// tests move the file there).
    ///
    /// A rotation or an attacker may rename or replace the file between
    /// the open and the lock: the lock would then guard a file that is no
    /// longer the log, and the lines would go there. So once locked, the
    /// name is looked up again (not followed) and must still be the file
    /// locked, same device and inode; if not, the lock is dropped with
    /// the file and the name opened again.
    fn open_locked(&self, mut after_open: impl FnMut()) -> Result<File> {
        let (dir, name) = Dir::holding(&self.path, ": refused")?;
        for _ in 0..OPEN_TRIES {
            let file = dir.open_append(&name)?;
            after_open();
            file.lock().context("locking")?;
            if dir.still_names(&name, &file)? {
                return Ok(file);
            }
        }
        Err(Error::new(format!(
            "it was renamed or replaced between its open and its lock, {OPEN_TRIES} times in a row"
        ))
        .hint("something is moving the log; nothing was appended"))
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
        self.append_locked(make, || ()).with_context(|| format!("audit log {}", self.path.display()))
    }

    fn append_locked(
        &self,
        make: impl FnOnce(u64, &str) -> Result<Vec<Event>>,
        after_open: impl FnMut(),
    ) -> Result<Vec<String>> {
        let file = self.open_locked(after_open)?;
        let len = file.metadata()?.len();
        // The end of the file, read again larger only when its last lines
        // are longer than the first read: never the whole file.
        let mut want = TAIL;
        let tail = loop {
            let start = len.saturating_sub(want);
            let mut window = vec![0u8; (len - start) as usize];
            file.read_exact_at(&mut window, start).context("reading its end")?;
            match tail_of(&window, start == 0)? {
                Some(tail) => break tail,
                None if want < TAIL_MAX => want = (want * 4).min(TAIL_MAX),
                None => return Err(too_long()),
            }
        };
        let (text, lines) = compose(&self.who, tail, make)?;
        let written = (&file).write_all(text.as_bytes());
        if let Err(e) = written {
            // A full disk: cut back to where it was, so no torn line stays.
            let _ = file.set_len(len).and_then(|_| file.sync_data());
            return Err(Error::from(e).context("appending"));
        }
        if let Err(e) = file.sync_data() {
            // Not durable is not logged: cut the lines back too, or the log
            // would say done for what the caller, told of this error, does
            // not do (and logs no failure line for).
            let _ = file.set_len(len).and_then(|_| file.sync_data());
            return Err(Error::from(e).context("fsync"));
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::line::MAX_VALUE;
    use crate::audit::testing::{broken, join, lines, sample, temp_dir, who};
    use crate::audit::verify::{verify, verify_file, Report};

    /// What the next append writes to a log that is `state`, with one
    /// event "next": the whole file afterwards.
    fn append_to(state: &[u8]) -> Result<Vec<u8>> {
        let tail = tail_of(state, true)?.expect("the whole file");
        let (text, _) = compose(&who(), tail, |_, _| Ok(vec![Event::new("next")]))?;
        Ok([state, text.as_bytes()].concat())
    }

    fn verifies(log: &[u8]) -> Report {
        verify(log, None)
            .expect("read")
            .unwrap_or_else(|b| panic!("{b:?} in\n{}", String::from_utf8_lossy(log)))
    }

    /// A log of three lines and the first `keep` bytes of a fourth (None:
    /// all of them, a line whole but for its newline) torn by a crash,
    /// then `more`.
    fn torn_log(keep: Option<usize>, more: &[u8]) -> Vec<u8> {
        let mut log = sample(4);
        let fourth = lines(&log)[3].len();
        log.truncate(log.len() - 1 - fourth + keep.unwrap_or(fourth));
        log.extend_from_slice(more);
        log
    }

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
        let expected =
            Torn { first: 4, last: 4, bytes: 10, before: line_hash(&lines(&log)[2]), unended: true };
        assert_eq!(t.torn, Some(expected));
        assert_eq!((t.next_seq, t.prev), (5, line_hash(b"{\"v\":1,\"se")));
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
        assert_eq!((r.lines, r.tears.clone()), (7, vec![3..=3]));
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

    #[test]
    fn recording_a_tear_survives_a_crash_at_every_byte() {
        // A torn line that is no audit line, and one that is whole but
        // for its newline.
        for keep in [Some(40), None] {
            let base = torn_log(keep, b"");
            let tail = tail_of(&base, true).expect("tail").expect("fits");
            let (text, _) =
                compose(&who(), tail, |_, _| Ok(vec![Event::new("a"), Event::new("b")])).expect("compose");
            for cut in 0..=text.len() {
                // What a crash at this byte leaves reads as a crash, not
                // as tampering ...
                let state = [&base[..], &text.as_bytes()[..cut]].concat();
                if let Err(b) = verify(&state[..], None).expect("read") {
                    assert!(b.torn_last, "cut at {cut}: {b:?}");
                }
                // ... and the next append records it: the log verifies.
                let after = append_to(&state).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
                let r = verifies(&after);
                assert_eq!(
                    lines(&after).last().map(|l| parse_line(l).expect("line").event),
                    Some("next".into())
                );
                assert!(r.tears.len() <= 2, "cut at {cut}: {:?}", r.tears);
            }
        }
    }

    #[test]
    fn each_crash_point_of_a_recovery() {
        let base = torn_log(Some(40), b"");
        let g = line_hash(&lines(&base)[2]);
        let tail = tail_of(&base, true).expect("tail").expect("fits");
        let (text, _) = compose(&who(), tail, |_, _| Ok(vec![Event::new("a")])).expect("compose");
        let record = lines(text.as_bytes())[0].clone();
        let cases: [(&str, Vec<u8>, Option<Torn>); 5] = [
            (
                "nothing written",
                base.clone(),
                Some(Torn { first: 4, last: 4, bytes: 40, before: g.clone(), unended: true }),
            ),
            (
                "the newline only",
                [&base[..], b"\n"].concat(),
                Some(Torn { first: 4, last: 4, bytes: 40, before: g.clone(), unended: false }),
            ),
            (
                "half the record",
                [&base[..], b"\n", &record[..50]].concat(),
                Some(Torn { first: 4, last: 5, bytes: 91, before: g.clone(), unended: true }),
            ),
            (
                "the record but its newline",
                [&base[..], b"\n", &record[..]].concat(),
                Some(Torn {
                    first: 4,
                    last: 5,
                    bytes: 41 + record.len() as u64,
                    before: g.clone(),
                    unended: true,
                }),
            ),
            ("the record", [&base[..], b"\n", &record[..], b"\n"].concat(), None),
        ];
        for (what, state, torn) in cases {
            let tail = tail_of(&state, true).expect(what).expect("fits");
            assert_eq!(tail.torn, torn, "{what}");
            let r = verifies(&append_to(&state).expect(what));
            let run = torn.map_or(4..=4, |t| t.first..=t.last);
            assert_eq!(r.tears.last(), Some(&run), "{what}");
        }
    }

    #[test]
    fn a_tear_recorded_by_one_of_many_interrupted_appends() {
        // Every append recording the tear crashes halfway through its
        // record: each adds a torn line, and one record names them all.
        let mut state = torn_log(Some(40), b"");
        for _ in 1..MAX_TORN_RUN {
            let tail = tail_of(&state, true).expect("tail").expect("fits");
            let (text, _) = compose(&who(), tail, |_, _| Ok(vec![Event::new("a")])).expect("compose");
            state.extend_from_slice(&text.as_bytes()[..text.len() / 4]);
            let b = verify(&state[..], None).expect("read").expect_err("torn");
            assert!(b.torn_last && b.line == 4, "{b:?}");
        }
        let after = append_to(&state).expect("recovers");
        let r = verifies(&after);
        assert_eq!(r.tears, vec![4..=3 + MAX_TORN_RUN as u64]);
        assert_eq!(r.lines, 3 + MAX_TORN_RUN as u64 + 2);
        // One more is more than crashes leave: refused, not recorded.
        let tail = tail_of(&state, true).expect("tail").expect("fits");
        let (text, _) = compose(&who(), tail, |_, _| Ok(vec![])).expect("compose");
        state.extend_from_slice(&text.as_bytes()[..text.len() / 4]);
        let e = append_to(&state).expect_err("too many");
        assert!(e.to_string().contains("more than 8 lines at its end are cut short"), "{e}");
    }

    #[test]
    fn garbage_is_not_a_tear() {
        for (state, why) in [
            (torn_log(Some(0), b"not json\n"), "its last line is not an audit line"),
            (torn_log(Some(0), b"\n"), "its last line is not an audit line"),
            (torn_log(Some(40), b"\nnot json\n"), "its last line is not an audit line"),
            (
                torn_log(Some(0), b"not json\n{\"v\":1,\"se"),
                "the line before its torn end is not an audit line",
            ),
            (
                torn_log(Some(0), b"not json\n{\"v\":1,\"se\n"),
                "the line before its torn end is not an audit line",
            ),
        ] {
            let e = append_to(&state).expect_err("garbage");
            assert!(e.to_string().starts_with(why), "{e}");
            assert!(!verify(&state[..], None).expect("read").expect_err("broken").torn_last);
        }
    }

    #[test]
    fn a_log_moved_between_open_and_lock_is_opened_again() {
        let dir = temp_dir("moved");
        let (path, old) = (dir.join("audit.log"), dir.join("audit.log.1"));
        let log = Log::new(path.clone(), "test");
        log.append(&[Event::new("a")]).expect("append");
        // Rotated between the open and the lock: the lines go to the
        // new file under the name, not to the one rotated away.
        let mut moves = 0;
        let rotate = || {
            if moves == 0 {
                std::fs::rename(&path, &old).expect("rotate");
            }
            moves += 1;
        };
        log.append_locked(|_, _| Ok(vec![Event::new("b")]), rotate).expect("append");
        assert_eq!(moves, 2);
        for p in [&path, &old] {
            assert_eq!(verify_file(p, None).expect("read").expect("verifies").lines, 1, "{}", p.display());
        }
        // Replaced by a link each time: opened again, and the link refused.
        let link = || {
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink(&old, &path).expect("symlink");
        };
        let e = log.append_locked(|_, _| Ok(vec![Event::new("c")]), link).expect_err("link");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // Replaced every time: a bounded number of tries, then refused.
        std::fs::remove_file(&path).expect("unlink");
        let mut tries = 0;
        let replace = || {
            let _ = std::fs::remove_file(&path);
            std::fs::write(&path, b"").expect("replace");
            tries += 1;
        };
        let e = log.append_locked(|_, _| Ok(vec![Event::new("c")]), replace).expect_err("moving");
        assert_eq!(tries, OPEN_TRIES);
        assert!(
            e.to_string().ends_with("renamed or replaced between its open and its lock, 3 times in a row"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
