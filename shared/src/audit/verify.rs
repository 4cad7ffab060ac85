//! The verifier: reads a whole log and checks the chain, the JSON, the
//! sequence numbers and (given the CA's key) the checkpoints' signatures;
//! or names the first line that breaks it and tells the most specific
//! story of why. The only part of the log that depends on `sign`.

use std::collections::{HashMap, VecDeque};
use std::io::BufRead;
use std::ops::RangeInclusive;
use std::path::Path;

use super::line::{
    checkpoint_message, cut_short, line_hash, parse_line, Line, GENESIS, MAX_LINE, MAX_TORN_RUN,
};
use crate::dirfd::Dir;
use crate::error::{Context, Error, Result};
use crate::json::Json;

/// Checks a checkpoint line's signature with the CA's public key.
fn check_checkpoint(line: &Line, ca: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Result<()> {
    use der::Decode;
    let field = |k: &str| {
        line.json
            .get(k)
            .and_then(Json::as_str)
            .ok_or_else(|| Error::new(format!("no {k:?}")))
            .and_then(crate::hex::decode)
    };
    let alg = x509_cert::spki::AlgorithmIdentifierOwned::from_der(&field("alg")?)?;
    let alg = crate::sign::SigAlg::from_identifier(&alg)?;
    crate::sign::verify(ca, alg, &checkpoint_message(line.seq, &line.prev), &field("signature")?)
}

/// A log that verifies.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub lines: u64,
    /// SHA-256 of the last line: what the next line's prev will be.
    pub head: String,
    /// Runs of lines torn by crashes, each recorded by the line after it.
    pub tears: Vec<RangeInclusive<u64>>,
    /// How many lines of each event.
    pub events: std::collections::BTreeMap<String, u64>,
    /// The lines of the checkpoints (their signatures checked when a CA
    /// key was given).
    pub checkpoints: Vec<u64>,
}

/// The first break: its line number and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Break {
    pub line: u64,
    pub why: String,
    /// Only the end is torn (interrupted writes, not yet recorded; the
    /// next append records them): a crash, not tampering.
    pub torn_last: bool,
    /// The lines before the break, which verify.
    pub good: u64,
}

/// A line as read: bytes without the newline, and whether it had one.
struct RawLine {
    bytes: Vec<u8>,
    terminated: bool,
}

fn read_raw(input: &mut impl BufRead) -> Result<Option<RawLine>> {
    let mut bytes = Vec::new();
    let n = std::io::Read::take(input.by_ref(), (MAX_LINE + 2) as u64).read_until(b'\n', &mut bytes)?;
    if n == 0 {
        return Ok(None);
    }
    let terminated = bytes.last() == Some(&b'\n');
    if terminated {
        bytes.pop();
    }
    Ok(Some(RawLine { bytes, terminated }))
}

/// A line read ahead, parsed once.
struct Ahead {
    raw: RawLine,
    line: Result<Line>,
}

/// The lines after the current one, as many as a tear record can be
/// behind the torn line it names, and whether the file ends after them.
struct Lookahead<R> {
    input: R,
    lines: VecDeque<Ahead>,
    end: bool,
}

impl<R: BufRead> Lookahead<R> {
    fn fill(&mut self) -> Result<()> {
        while !self.end && self.lines.len() < MAX_TORN_RUN {
            match read_raw(&mut self.input)? {
                Some(raw) => {
                    let line = parse_line(&raw.bytes);
                    self.lines.push_back(Ahead { raw, line });
                }
                None => self.end = true,
            }
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Option<Ahead>> {
        self.fill()?;
        let line = self.lines.pop_front();
        self.fill()?;
        Ok(line)
    }

    /// The record of a run of torn lines that starts at the current line,
    /// line `n`: how many of the lines ahead are in the run with it, and
    /// the record, the line after them, that names lines `n` to the last.
    /// The last such record wins: a record whose append crashed before
    /// its newline was itself torn, and the next record names it too.
    fn tear_record(&self, n: u64) -> Option<(usize, &Line)> {
        let whole = |a: &Ahead| a.raw.terminated && a.raw.bytes.len() <= MAX_LINE;
        let run = self.lines.iter().take_while(|a| whole(a)).count();
        self.lines.iter().take(run + 1).enumerate().rev().find_map(|(i, a)| {
            let record = a.line.as_ref().ok().filter(|l| l.event == "torn-line")?;
            let first = record.json.get("torn_line").and_then(Json::as_u64)?;
            // Records written before runs were named have no torn_last.
            let last = record.json.get("torn_last").map_or(Some(first), Json::as_u64)?;
            (first == n && last == n + i as u64).then_some((i, record))
        })
    }

    /// Whether the log ends torn from the current line on (`current`,
    /// which is no audit line): it and every line after it are lines a
    /// crash cut short and an append ended, but for the last, which may
    /// have no newline; no more of them than a record may name. What
    /// [`super::append::tail_of`] reads as a torn end.
    fn torn_end(&self, current: &RawLine) -> bool {
        let count = self.lines.len();
        let torn = |i: usize, a: &Ahead| {
            a.raw.bytes.len() <= MAX_LINE
                && if a.raw.terminated { a.line.is_err() && cut_short(&a.raw.bytes) } else { i + 1 == count }
        };
        self.end
            && cut_short(&current.bytes)
            && count < MAX_TORN_RUN
            && self.lines.iter().enumerate().all(|(i, a)| torn(i, a))
    }
}

/// Verifies a whole log read from `input`; with `ca`, every checkpoint's
/// signature too.
pub(crate) fn verify(
    input: impl BufRead,
    ca: Option<&x509_cert::spki::SubjectPublicKeyInfoOwned>,
) -> Result<std::result::Result<Report, Break>> {
    let mut checkpoints = Vec::new();
    // Hash (its first 64 bits) -> line number, to name where a line that
    // breaks the chain belongs: 16 bytes a line however long the log, and
    // no accidental match among billions of lines.
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let key = |hex: &str| -> u64 { hex.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(0) };
    let mut prev = GENESIS.to_string();
    let mut tears = Vec::new();
    let mut events = std::collections::BTreeMap::new();
    let mut n: u64 = 0;
    let mut ahead = Lookahead { input, lines: VecDeque::new(), end: false };
    let mut prev_torn = false;
    let broken = |line: u64, good: u64, why: String| Break { line, why, torn_last: false, good };
    while let Some(Ahead { raw, line }) = ahead.next()? {
        n += 1;
        let hash = line_hash(&raw.bytes);
        if raw.bytes.len() > MAX_LINE {
            return Ok(Err(broken(n, n - 1, format!("longer than {MAX_LINE} bytes: not written by cardca"))));
        }
        if !raw.terminated {
            return Ok(Err(Break {
                line: n,
                why:
                    "torn last line (no newline): a write interrupted by a crash; the next append records it"
                        .into(),
                torn_last: true,
                good: n - 1,
            }));
        }
        // Lines a record after them names as torn are checked through
        // that record's prev (the SHA-256 of all their bytes), not by
        // their content.
        if let Some((more, record)) = ahead.tear_record(n) {
            let last = n + more as u64;
            // The first torn line's own prev may be lost with its end:
            // the record carries it, so the line before stays chained.
            if record.json.get("torn_prev").and_then(Json::as_str) != Some(prev.as_str()) {
                return Ok(Err(broken(
                    last + 1,
                    n - 1,
                    format!(
                        "its torn_prev is not the SHA-256 of line {}: line {} or this record was edited",
                        n - 1,
                        n - 1
                    ),
                )));
            }
            let mut run = raw.bytes.clone();
            for a in ahead.lines.iter().take(more) {
                run.push(b'\n');
                run.extend_from_slice(&a.raw.bytes);
            }
            let run_hash = line_hash(&run);
            if record.prev != run_hash {
                let which =
                    if more == 0 { "its".to_string() } else { format!("the torn lines {n} to {last}'s") };
                let r = last + 1;
                return Ok(Err(broken(
                    n,
                    n - 1,
                    format!("edited: {which} SHA-256 is not the prev line {r} records (or line {r}'s prev was edited)"),
                )));
            }
            seen.insert(key(&hash), n);
            for (j, a) in ahead.lines.drain(..more).enumerate() {
                seen.insert(key(&line_hash(&a.raw.bytes)), n + 1 + j as u64);
            }
            ahead.fill()?;
            tears.push(n..=last);
            n = last;
            prev = run_hash;
            prev_torn = true;
            continue;
        }
        let line = match line {
            Ok(l) => l,
            // Cut short and ended by an append that crashed before its
            // record was written: a crash, recorded by the next append.
            Err(_) if ahead.torn_end(&raw) => {
                let last = n + ahead.lines.len() as u64;
                let why = if last == n {
                    "torn last line: a write interrupted by a crash, and the append that ended it too; the \
                     next append records it"
                        .to_string()
                } else {
                    format!(
                        "torn last lines {n} to {last}: a write interrupted by a crash, and the appends \
                         recording it too; the next append records them"
                    )
                };
                return Ok(Err(Break { line: n, why, torn_last: true, good: n - 1 }));
            }
            Err(e) => {
                return Ok(Err(broken(n, n - 1, format!("not an audit line ({e}): edited or inserted"))))
            }
        };
        if line.event == "torn-line" && !prev_torn {
            return Ok(Err(broken(n, n - 1, "a torn-line record, but no torn line precedes it".into())));
        }
        prev_torn = false;
        if line.prev != prev || line.seq != n {
            let next = ahead.lines.front().map(|a| &a.raw);
            return Ok(Err(diagnose(n, &line, &prev, &hash, next, &seen, key)));
        }
        // Two lines with equal first 64 bits of their hashes: the later
        // one is kept. A copy made to agree would have broken the chain
        // above already, so a repeat here is no finding.
        seen.insert(key(&hash), n);
        if line.event == "checkpoint" {
            if let Some(ca) = ca {
                if let Err(e) = check_checkpoint(&line, ca) {
                    return Ok(Err(broken(
                        n,
                        n - 1,
                        format!(
                            "a checkpoint whose signature does not verify with the CA's key ({e}): forged, or \
                             the log was rewritten"
                        ),
                    )));
                }
            }
            checkpoints.push(n);
        }
        *events.entry(line.event).or_insert(0) += 1;
        prev = hash;
    }
    Ok(Ok(Report { lines: n, head: prev, tears, events, checkpoints }))
}

/// Why line `n` breaks the chain: the most specific story its `seq` and
/// `prev` tell.
fn diagnose(
    n: u64,
    line: &Line,
    prev: &str,
    hash: &str,
    next: Option<&RawLine>,
    seen: &HashMap<u64, u64>,
    key: impl Fn(&str) -> u64,
) -> Break {
    let b = |at: u64, why: String| Break { line: at, why, torn_last: false, good: at.saturating_sub(1) };
    if line.prev == prev {
        return b(n, format!("edited: its seq is {}, not {n}", line.seq));
    }
    if let Some(&k) = seen.get(&key(hash)) {
        return b(n, format!("a copy of line {k} (an inserted line)"));
    }
    if n == 1 {
        let from = if line.seq > 1 {
            format!(" (it is entry {}: entries 1 to {} are gone)", line.seq, line.seq - 1)
        } else {
            String::new()
        };
        return b(1, format!("does not start the chain (its prev is not the genesis value): the start of the log was cut off{from}"));
    }
    if next.is_some_and(|r| line_hash(&r.bytes) == line.prev) {
        return b(n, format!("reordered: it belongs after line {}, which records it as its prev", n + 1));
    }
    if let Some(&j) = seen.get(&key(&line.prev)) {
        if j + 1 < n {
            let inserted = if j + 2 == n {
                format!("line {} was inserted", j + 1)
            } else {
                format!("lines {} to {} were inserted", j + 1, n - 1)
            };
            return b(j + 1, format!("{inserted}: line {n} records line {j} as its prev"));
        }
    }
    if line.seq > n {
        let missing = line.seq - n;
        let what = if missing == 1 { "1 line was".to_string() } else { format!("{missing} lines were") };
        return b(n, format!("{what} deleted before it (it is entry {}, at line {n})", line.seq));
    }
    if line.seq < n {
        return b(n, format!("it is entry {}, which belongs earlier: inserted or reordered", line.seq));
    }
    b(n - 1, format!("edited: its SHA-256 is not the prev line {n} records (or line {n}'s prev was edited)"))
}

/// Verifies the log at `path` under a shared lock (no append half-seen).
pub fn verify_file(
    path: &Path,
    ca: Option<&x509_cert::spki::SubjectPublicKeyInfoOwned>,
) -> Result<std::result::Result<Report, Break>> {
    // Refused at once: a link, a FIFO (never waited on), anything but a
    // regular file.
    let (dir, name) = Dir::holding(path, ": refused")?;
    let file = dir.open_read(&name)?.ok_or_else(|| {
        Error::from(std::io::Error::from(std::io::ErrorKind::NotFound)).context(path.display())
    })?;
    file.lock_shared().with_context(|| format!("locking {}", path.display()))?;
    verify(std::io::BufReader::with_capacity(1 << 16, &file), ca)
        .with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::Event;
    use crate::audit::line::format_line;
    use crate::audit::testing::{broken, join, lines, sample, who};

    #[test]
    fn intact_log_verifies() {
        let log = sample(5);
        let r = verify(&log[..], None).expect("read").expect("intact");
        assert_eq!(r.lines, 5);
        assert_eq!(r.head, line_hash(&lines(&log)[4]));
        assert_eq!(verify(&b""[..], None).expect("read").expect("empty").lines, 0);
    }

    #[test]
    fn tampering_is_named() {
        let l = lines(&sample(8));
        // Edited line 4.
        let mut e = l.clone();
        e[3] = String::from_utf8(e[3].clone()).expect("utf8").replace("\"03\"", "\"FF\"").into_bytes();
        let b = broken(&join(&e));
        assert_eq!(b.line, 4, "{b:?}");
        assert!(b.why.contains("edited"), "{b:?}");
        // Deleted line 4.
        let mut d = l.clone();
        d.remove(3);
        let b = broken(&join(&d));
        assert_eq!((b.line, b.why.contains("deleted")), (4, true), "{b:?}");
        // Lines 4 and 5 swapped.
        let mut s = l.clone();
        s.swap(3, 4);
        let b = broken(&join(&s));
        assert_eq!((b.line, b.why.contains("reordered")), (4, true), "{b:?}");
        // A copy of line 2 inserted as line 5.
        let mut i = l.clone();
        i.insert(4, l[1].clone());
        let b = broken(&join(&i));
        assert_eq!((b.line, b.why.contains("inserted")), (5, true), "{b:?}");
        // A forged line, correctly chained, inserted as line 5.
        let forged = format_line(&who(), 5, &Event::new("x"), &line_hash(&l[3]));
        let mut f = l.clone();
        f.insert(4, forged.into_bytes());
        let b = broken(&join(&f));
        assert_eq!((b.line, b.why.contains("inserted")), (5, true), "{b:?}");
        // The first two lines cut off.
        let b = broken(&join(&l[2..]));
        assert_eq!((b.line, b.why.contains("start of the log")), (1, true), "{b:?}");
        // Truncated inside the last line.
        let whole = join(&l);
        let b = broken(&whole[..whole.len() - 10]);
        assert_eq!((b.line, b.torn_last), (8, true), "{b:?}");
        // Garbage.
        let mut g = l.clone();
        g[2] = b"hello".to_vec();
        assert_eq!(broken(&join(&g)).line, 3);
    }

    /// A log of three lines, then `torn` named by a record as lines 4 on
    /// (`torn_last` as given, None: left out, as before runs were named),
    /// then one more line.
    fn with_tear(torn: &[&[u8]], torn_last: Option<u64>) -> Vec<u8> {
        let mut l = lines(&sample(3));
        let run = torn.join(&b"\n"[..]);
        let mut record = Event::new("torn-line")
            .field("torn_line", 4u64)
            .field("torn_prev", line_hash(&l[2]))
            .failed(&crate::error::Error::new("torn"));
        if let Some(last) = torn_last {
            record = record.field("torn_last", last);
        }
        let seq = 4 + torn.len() as u64;
        let record = format_line(&who(), seq, &record, &line_hash(&run));
        let after = format_line(&who(), seq + 1, &Event::new("x"), &line_hash(record.as_bytes()));
        l.extend(torn.iter().map(|t| t.to_vec()));
        l.extend([record.into_bytes(), after.into_bytes()]);
        join(&l)
    }

    #[test]
    fn a_run_of_torn_lines_named_by_one_record() {
        let (a, b) = (&b"{\"v\":1,\"seq\":4,\"time\":\"2026"[..], &b"{\"v\":1,\"seq\":5,\"ti"[..]);
        let r = verify(&with_tear(&[a, b], Some(5))[..], None).expect("read").expect("verifies");
        assert_eq!((r.lines, r.tears), (7, vec![4..=5]));
        // A record from before runs: one line, no torn_last.
        let r = verify(&with_tear(&[a], None)[..], None).expect("read").expect("verifies");
        assert_eq!((r.lines, r.tears), (6, vec![4..=4]));
        // The record's prev covers every torn line: one edited breaks it.
        let mut l = lines(&with_tear(&[a, b], Some(5)));
        l[3] = b"{\"v\":1,\"seq\":4,\"time\":\"2027".to_vec();
        let b2 = broken(&join(&l));
        assert_eq!(b2.line, 4, "{b2:?}");
        assert!(b2.why.contains("the torn lines 4 to 5's SHA-256 is not the prev line 6 records"), "{b2:?}");
        // A record that names fewer or more lines than precede it.
        assert!(!broken(&with_tear(&[a, b], Some(4))).torn_last);
        assert!(!broken(&with_tear(&[a, b], Some(6))).torn_last);
        assert!(!broken(&with_tear(&[a, b], None)).torn_last);
    }

    #[test]
    fn an_unrecorded_torn_end_is_a_crash() {
        let log = sample(3);
        for (end, line) in [
            (&b"{\"v\":1,\"seq\":4,\"ti"[..], 4),
            (b"{\"v\":1,\"seq\":4,\"ti\n", 4),
            (b"{\"v\":1,\"seq\":4,\"ti\n{\"v\":1,\"s", 4),
            (b"{\"v\":1,\"seq\":4,\"ti\n{\"v\":1,\"s\n{\"v", 4),
        ] {
            let b = broken(&[&log[..], end].concat());
            assert!(b.torn_last && b.line == line && b.good == 3, "{b:?}");
        }
        // Not what a crash leaves: garbage after a cut line, an empty line.
        for end in [&b"{\"v\":1,\"seq\":4,\"ti\nnot json\n"[..], b"{\"v\":1,\"seq\":4,\"ti\n\n"] {
            assert!(!broken(&[&log[..], end].concat()).torn_last);
        }
    }
}
