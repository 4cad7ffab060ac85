//! The database's append-only line files (index.txt, reserved.txt), read
//! whole once and then only as they grow: what a crash may leave at their
//! end, and what is an error.
//!
//! A write appends whole lines in one write(2) and fdatasync's them before
//! anyone is told; so a crash can leave only a torn last line (cut short,
//! no newline), which nobody was told about and which is cut off here. A
//! whole line that does not parse is an error that changes nothing: it
//! was written by someone, and only a person should decide.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use crate::dirfd::Dir;
use crate::error::{Error, Result};

/// How far this run has read one line file.
#[derive(Default)]
pub(super) struct Tail {
    /// The file this describes (device, inode).
    file: Option<(u64, u64)>,
    pub(super) len: u64,
    pub(super) lines: usize,
}

impl Tail {
    /// The lines appended to `file` (DIR/`name`) since the last read,
    /// each through `parse` with its line number. `Restart` when the file
    /// is another one, or shorter, than last time (replaced by a rename:
    /// the caller forgets what it knew and takes the whole file). Under
    /// the database's lock. A line with at least `fields` tab-separated
    /// fields is whole: if it does not parse, that is an error.
    pub(super) fn read<T>(
        &mut self,
        dir: &Dir,
        file: &File,
        name: &str,
        max: u64,
        fields: usize,
        parse: impl Fn(&str) -> Result<T>,
    ) -> Result<Appended<T>> {
        let st = rustix::fs::fstat(file).map_err(std::io::Error::from)?;
        let id = (st.st_dev, st.st_ino);
        let len = st.st_size as u64;
        dir.check_size(name, len, max)?;
        let restart = self.file != Some(id) || len < self.len;
        if restart {
            *self = Tail { file: Some(id), ..Tail::default() };
        }
        let mut reader = file;
        reader.seek(SeekFrom::Start(self.len))?;
        let mut data = Vec::new();
        reader.read_to_end(&mut data).map_err(|e| Error::from(e).context(format!("reading {name}")))?;
        let path = dir.join(name);
        let mut parsed = Vec::new();
        let mut line_no = self.lines;
        let mut rest = &data[..];
        while !rest.is_empty() {
            line_no += 1;
            let (line, terminated) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[(line.len() + 1).min(rest.len())..];
            let value = std::str::from_utf8(line).map_err(|_| Error::new("not ASCII")).and_then(&parse);
            let whole = line.split(|&b| b == b'\t').count() >= fields;
            match (value, terminated) {
                (Ok(v), true) => parsed.push((line_no, v)),
                (Ok(v), false) => {
                    (&*file)
                        .write_all(b"\n")
                        .and_then(|_| file.sync_data())
                        .map_err(|e| Error::from(e).context(format!("terminating {name}")))?;
                    crate::report::warn(format_args!(
                        "{} line {line_no} lacked its final newline; kept it and added the newline",
                        path.display()
                    ));
                    parsed.push((line_no, v));
                }
                (Err(_), false) if !whole => {
                    let keep = self.len + (data.len() - line.len()) as u64;
                    file.set_len(keep)
                        .and_then(|_| file.sync_data())
                        .map_err(|e| Error::from(e).context(format!("cutting {name}")))?;
                    crate::report::warn(format_args!(
                        "{} ended in a torn line {line_no} (an interrupted write); cut it off",
                        path.display()
                    ));
                }
                (Err(e), _) => {
                    return Err(e
                        .context(format!("{} line {line_no}", path.display()))
                        .hint("nothing was changed; correct or remove that line by hand"))
                }
            }
        }
        self.lines = line_no;
        self.len = rustix::fs::fstat(file).map_err(std::io::Error::from)?.st_size as u64;
        Ok(Appended { restart, lines: parsed })
    }

    /// Appends `text` (whole lines, `count` of them) in one write and
    /// makes it durable; on failure the file is cut back to where it was,
    /// so no line is half there. `file` was read up to its end by
    /// [`Tail::read`] under the same lock.
    pub(super) fn append(&mut self, file: &File, name: &str, text: &str, count: usize) -> Result<()> {
        let before = file.metadata()?.len();
        let appended = (&*file).write_all(text.as_bytes()).and_then(|_| file.sync_data());
        if let Err(e) = appended {
            let _ = file.set_len(before).and_then(|_| file.sync_data());
            return Err(Error::from(e).context(format!("appending to {name}")));
        }
        self.len = before + text.len() as u64;
        self.lines += count;
        Ok(())
    }
}

/// What [`Tail::read`] found: whether to start over, and the new lines
/// with their numbers.
pub(super) struct Appended<T> {
    pub(super) restart: bool,
    pub(super) lines: Vec<(usize, T)>,
}

#[cfg(test)]
mod tests {
    use super::super::Db;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cardca-lines-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    const LINE: &str = "V\t270101000000Z\t\t01\tunknown\t/CN=a\n";

    /// A whole last line without its newline that does not parse (a
    /// serial openssl never writes) is an error that changes nothing, not a
    /// torn line to cut off: only a line cut short is torn.
    #[test]
    fn a_whole_bad_last_line_is_not_cut() {
        let dir = scratch("whole-bad");
        let mut db = Db::open(&dir).expect("open");
        let text = format!("{LINE}R\t270101000000Z\t260101000000Z\t0a\tunknown\t/CN=b");
        std::fs::write(dir.join("index.txt"), &text).expect("write");
        let e = db.entries().expect_err("refused");
        assert!(e.to_string().contains("line 2"), "{e}");
        assert_eq!(std::fs::read_to_string(dir.join("index.txt")).expect("read"), text);
    }

    #[test]
    fn torn_and_unterminated_last_lines() {
        let dir = scratch("torn");
        let mut db = Db::open(&dir).expect("open");
        // A complete last line without its newline is kept and terminated.
        std::fs::write(dir.join("index.txt"), LINE.trim_end()).expect("write");
        assert_eq!(db.entries().expect("entries").len(), 1);
        assert_eq!(std::fs::read_to_string(dir.join("index.txt")).expect("read"), LINE);
        // A torn one is cut off.
        std::fs::write(dir.join("index.txt"), format!("{LINE}V\t2701")).expect("write");
        let mut db = Db::open(&dir).expect("open");
        assert_eq!(db.entries().expect("entries").len(), 1);
        assert_eq!(std::fs::read_to_string(dir.join("index.txt")).expect("read"), LINE);
        // A complete line that does not parse is an error naming it; nothing changes.
        let bad = format!("{LINE}V\tjunk\n{LINE}");
        std::fs::write(dir.join("index.txt"), &bad).expect("write");
        let mut db = Db::open(&dir).expect("open");
        let e = db.entries().expect_err("bad line").to_string();
        assert!(e.contains("line 2"), "{e}");
        assert_eq!(std::fs::read_to_string(dir.join("index.txt")).expect("read"), bad);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
