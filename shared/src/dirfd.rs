//! Every file inside a directory, opened relative to the directory and
//! never through a symbolic link: the CA database (`db`), the OCSP web
//! directory (`serve`) and the audit log's directory all go through here,
//! so each refusal and each durability step is written once.
//!
//! ```text
//! Dir::open(path, create, links)  the directory itself, as the operator
//!                                 named it (it may be reached through a
//!                                 link; nothing inside it is followed)
//! dir.subdir(name)                a directory inside, O_NOFOLLOW
//! dir.make_subdir(name)           the same, created if missing
//! dir.open_read(name)             O_NOFOLLOW | O_NONBLOCK, then fstat: a
//!                                 regular file or a refusal naming it
//! dir.read(name, max)             the same, whole, at most `max` bytes; the
//!                                 size is checked before anything is read
//! dir.open_file(name, flags)      any other access, the same checks
//! dir.open_append(name)           O_APPEND, created (O_EXCL, directory
//!                                 fsync'd) if missing
//! dir.still_names(name, file)     whether `name` (not followed) is still
//!                                 `file`: same device and inode
//! dir.create_new(name, content)   O_EXCL, durable; false if it existed
//! dir.create_fresh(name)          O_EXCL; a regular file in the way (an
//!                                 orphan a crash left) is removed first
//! dir.replace(name, content)      NAME.tmp (O_EXCL) + write + fsync +
//!                                 renameat + directory fsync; for callers
//!                                 that hold the directory's lock
//! dir.replace_all(files, hook)    a batch of replacements under this
//!                                 process's temporary names, fsync'd
//!                                 together, renamed, one directory fsync
//! sync_files(files)               fsync of many files from a few threads
//! ```
//!
//! Why each step: O_NOFOLLOW (and `statat` without following before a
//! replacement) so that a planted link is never read or written through;
//! O_NONBLOCK so that a FIFO in a file's place is refused at once rather
//! than waited on (an open for reading of a FIFO blocks until a writer
//! comes); fstat so that only regular files are used; a size bound checked
//! on the fstat, so that a huge (or sparse) file is refused before it is
//! read; O_EXCL for every new file and temporary name; and a rename of a
//! fsync'd temporary file, so that a reader or a crash sees the old
//! content or the new one, never half of either.
//!
//! The audit log is a single file the operator names: `Dir::holding(path)`
//! opens the directory it is in, then `open_append` (the writer) or
//! `open_read` (the verifier, a streaming reader without a bound: the log
//! grows without one).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};

/// The mode of every file created here (before the umask).
const FILE_MODE: u32 = 0o644;

/// An open directory whose files are only reached relative to it.
pub struct Dir {
    path: PathBuf,
    fd: OwnedFd,
    /// What a refusal of a link says after "PATH is a symbolic link": each
    /// user words why (its messages are part of its interface).
    links: &'static str,
}

/// The error for a failed open of `path`: a link (ELOOP, or ENOTDIR for a
/// directory) is refused in the directory's words; anything else is the
/// system's error, naming the path.
fn refuse(links: &str, e: Errno, path: &Path) -> Error {
    if e == Errno::LOOP || e == Errno::NOTDIR {
        Error::new(format!("{} is a symbolic link{links}", path.display()))
    } else {
        io_error(e).context(path.display().to_string())
    }
}

fn io_error(e: Errno) -> Error {
    Error::from(std::io::Error::from(e))
}

/// What a file that is not a regular one is, for a refusal.
fn kind(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::Directory => "a directory",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Symlink => "a symbolic link",
        _ => "something else",
    }
}

impl Dir {
    /// Opens the directory `path`, creating it (and its parents) if
    /// `create`. `links` completes the refusal of a link inside it, e.g.
    /// `": refused"`.
    pub fn open(path: &Path, create: bool, links: &'static str) -> Result<Dir> {
        if create {
            std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        }
        let fd = rustix::fs::open(path, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| refuse(links, e, path))?;
        Ok(Dir { path: path.to_path_buf(), fd, links })
    }

    /// The directory holding the file `file` (the current one when the
    /// path names none) and the file's name in it. Messages name the file
    /// as the operator gave it.
    pub fn holding(file: &Path, links: &'static str) -> Result<(Dir, String)> {
        let name = file
            .file_name()
            .ok_or_else(|| Error::new(format!("{}: names no file", file.display())))?
            .to_str()
            .ok_or_else(|| Error::new(format!("{}: not a UTF-8 file name", file.display())))?;
        let parent = file.parent().unwrap_or(Path::new(""));
        let at = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let mut dir = Dir::open(at, false, links)?;
        dir.path = parent.to_path_buf();
        Ok((dir, name.to_string()))
    }

    /// The directory `name` inside this one, never through a link; None
    /// if it does not exist.
    pub fn subdir(&self, name: &str) -> Result<Option<Dir>> {
        let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir { path: self.join(name), fd, links: self.links })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.refuse(e, &self.join(name))),
        }
    }

    /// [`Dir::subdir`], created first if it does not exist.
    pub fn make_subdir(&self, name: &str) -> Result<Dir> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(self.refuse(e, &self.join(name))),
        }
        self.subdir(name)?.ok_or_else(|| Error::new(format!("{} vanished", self.join(name).display())))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn refuse(&self, e: Errno, path: &Path) -> Error {
        refuse(self.links, e, path)
    }

    /// `file` (just opened as `name`) if it is a regular file.
    fn regular(&self, name: &str, file: File) -> Result<File> {
        let st = rustix::fs::fstat(&file)
            .map_err(io_error)
            .with_context(|| self.join(name).display().to_string())?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return Err(Error::new(format!(
                "{} is {}, not a regular file: refused",
                self.join(name).display(),
                kind(t)
            )));
        }
        Ok(file)
    }

    /// Refuses a file of `size` bytes when more than `max` are allowed.
    pub fn check_size(&self, name: &str, size: u64, max: u64) -> Result<()> {
        if size > max {
            return Err(Error::new(format!(
                "{} is larger than {max} bytes ({size}): refused",
                self.join(name).display()
            )));
        }
        Ok(())
    }

    /// Opens the regular file `name` for reading; None if there is none.
    /// For readers that stream (the audit verifier); [`Dir::read`] for
    /// whole files.
    pub fn open_read(&self, name: &str) -> Result<Option<File>> {
        match self.open_raw(name, OFlags::RDONLY) {
            Ok(file) => Ok(Some(self.regular(name, file)?)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.refuse(e, &self.join(name))),
        }
    }

    /// The whole content of the regular file `name`, or None when there is
    /// none; more than `max` bytes is refused, before reading when the
    /// size says so (and while reading, should it grow meanwhile).
    pub fn read(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let Some(file) = self.open_read(name)? else { return Ok(None) };
        let size = rustix::fs::fstat(&file).map_err(io_error)?.st_size as u64;
        self.check_size(name, size, max)?;
        let mut content = Vec::new();
        file.take(max + 1)
            .read_to_end(&mut content)
            .with_context(|| format!("reading {}", self.join(name).display()))?;
        self.check_size(name, content.len() as u64, max)?;
        Ok(Some(content))
    }

    /// openat relative to the directory, adding O_NOFOLLOW, O_NONBLOCK
    /// (no wait on a FIFO) and O_CLOEXEC.
    fn open_raw(&self, name: &str, flags: OFlags) -> std::result::Result<File, Errno> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(FILE_MODE)).map(File::from)
    }

    /// Opens `name` with `flags` (O_CREAT allowed), adding O_NOFOLLOW,
    /// O_NONBLOCK and O_CLOEXEC; anything but a regular file is refused,
    /// and so is a missing one.
    pub fn open_file(&self, name: &str, flags: OFlags) -> Result<File> {
        let file = self.open_raw(name, flags).map_err(|e| self.refuse(e, &self.join(name)))?;
        self.regular(name, file)
    }

    /// Opens `name` for reading and appending, creating it on first use
    /// (O_EXCL, then a directory fsync so that the new entry is durable;
    /// another process creating it meanwhile is fine).
    pub fn open_append(&self, name: &str) -> Result<File> {
        let flags = OFlags::RDWR | OFlags::APPEND;
        let file = match self.open_raw(name, flags) {
            Err(Errno::NOENT) => match self.open_raw(name, flags | OFlags::CREATE | OFlags::EXCL) {
                Ok(file) => {
                    self.fsync()
                        .with_context(|| format!("making the new {} durable", self.join(name).display()))?;
                    Ok(file)
                }
                // Another process created it meanwhile.
                Err(Errno::EXIST) => self.open_raw(name, flags),
                Err(e) => Err(e),
            },
            other => other,
        };
        let file = file.map_err(|e| self.refuse(e, &self.join(name)))?;
        self.regular(name, file)
    }

    /// Whether `name` still leads to `file`, opened from it before: the
    /// same device and inode, `name` not followed if it is a link (a link
    /// in its place is another file). False when `name` is gone.
    pub fn still_names(&self, name: &str, file: &File) -> Result<bool> {
        let ctx = || self.join(name).display().to_string();
        let open = rustix::fs::fstat(file).map_err(io_error).with_context(ctx)?;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(named) => Ok((named.st_dev, named.st_ino) == (open.st_dev, open.st_ino)),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io_error(e).context(ctx())),
        }
    }

    /// Creates `name`, which must not exist yet, with `content`, durably
    /// (the file and the directory fsync'd); false if it existed.
    pub fn create_new(&self, name: &str, content: &[u8]) -> Result<bool> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut file = match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(FILE_MODE)) {
            Ok(fd) => File::from(fd),
            Err(Errno::EXIST) => return Ok(false),
            Err(e) => return Err(self.refuse(e, &self.join(name))),
        };
        let ctx = || format!("creating {}", self.join(name).display());
        file.write_all(content).and_then(|_| file.sync_all()).with_context(ctx)?;
        self.fsync().with_context(ctx)?;
        Ok(true)
    }

    /// Creates `name` with O_EXCL for a file nothing names yet: a regular
    /// file already there is an orphan (a crash left it before it was
    /// named) and is removed first; anything else there (a planted link)
    /// is refused, not replaced. Not synced: the caller decides when.
    pub fn create_fresh(&self, name: &str) -> Result<File> {
        let path = self.join(name);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(FILE_MODE);
        let fd = match rustix::fs::openat(&self.fd, name, flags, mode) {
            Err(Errno::EXIST) => {
                self.refuse_unless_regular(name)?;
                rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(|e| self.refuse(e, &path))?;
                rustix::fs::openat(&self.fd, name, flags, mode)
            }
            other => other,
        }
        .map_err(|e| self.refuse(e, &path))?;
        Ok(File::from(fd))
    }

    /// Removes `name` (a link itself, never its target); a missing file
    /// is no error.
    pub fn remove(&self, name: &str) -> Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_error(e).context(self.join(name).display().to_string())),
        }
    }

    /// Refuses `name` if it exists and is not a regular file: a link is
    /// replaced by nothing, and followed by nothing.
    fn refuse_unless_regular(&self, name: &str) -> Result<()> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile => {
                Err(self.refuse(Errno::LOOP, &self.join(name)))
            }
            _ => Ok(()),
        }
    }

    /// Creates the temporary file `tmp` (O_EXCL, after removing one a
    /// crash left under that name).
    fn create_temp(&self, tmp: &str) -> Result<File> {
        // unlink removes a link itself, never its target.
        let _ = rustix::fs::unlinkat(&self.fd, tmp, AtFlags::empty());
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, tmp, flags, Mode::from_raw_mode(FILE_MODE))
            .map_err(|e| self.refuse(e, &self.join(tmp)))?;
        Ok(File::from(fd))
    }

    /// Replaces `name` so that a reader, or a crash, sees the old file or
    /// the new one: `NAME.tmp` (O_EXCL) is written and fsync'd, renamed
    /// over `name`, and the directory is fsync'd. One fixed temporary name,
    /// so the caller must hold the directory's lock; what a crash left
    /// under it is removed. A target that is a link or not a regular file
    /// is refused, not replaced.
    pub fn replace(&self, name: &str, content: &[u8]) -> Result<()> {
        self.refuse_unless_regular(name)?;
        let tmp = format!("{name}.tmp");
        let result = (|| -> Result<()> {
            let mut file = self.create_temp(&tmp)?;
            file.write_all(content).and_then(|_| file.sync_all())?;
            rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(io_error)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        result.and_then(|_| self.fsync()).with_context(|| format!("writing {}", self.join(name).display()))
    }

    /// Replaces each `(name, content)`, names plain (no slash, no leading
    /// dot); a later entry for the same name wins. No lock is needed: the
    /// temporary names are this process's. `before_rename` runs once every
    /// new file is durable and before any is renamed into place (where a
    /// reader may see it): an error there replaces nothing. On an error,
    /// the files renamed before it stay replaced and no temporary file is
    /// left.
    pub fn replace_all(
        &self,
        files: &[(String, &[u8])],
        before_rename: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut temps: Vec<(String, &str)> = Vec::new();
        let mut written: Vec<File> = Vec::new();
        let result = (|| -> Result<()> {
            for (i, (name, content)) in files.iter().enumerate() {
                if name.is_empty() || name.contains('/') || name.starts_with('.') {
                    return Err(Error::new(format!("{name:?} is not a plain file name")));
                }
                self.refuse_unless_regular(name)?;
                // One a crashed run of the same pid left behind is ours.
                let tmp = format!(".{name}.{}.{i}.tmp", std::process::id());
                let mut file = self.create_temp(&tmp)?;
                temps.push((tmp, name));
                file.write_all(content).with_context(|| format!("writing {}", self.join(name).display()))?;
                written.push(file);
            }
            sync_files(&written)
                .with_context(|| format!("syncing the new files in {}", self.path.display()))?;
            drop(written);
            before_rename()?;
            while let Some((tmp, name)) = temps.first() {
                rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, *name)
                    .map_err(io_error)
                    .with_context(|| format!("renaming into {}", self.join(name).display()))?;
                temps.remove(0);
            }
            self.sync()
        })();
        for (tmp, _) in temps {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        result
    }

    /// fsync of the directory: the entries created, renamed or removed
    /// in it are durable.
    pub fn sync(&self) -> Result<()> {
        self.fsync().with_context(|| format!("syncing {}", self.path.display()))
    }

    /// [`Dir::sync`] for callers that say what it was for.
    fn fsync(&self) -> Result<()> {
        rustix::fs::fsync(&self.fd).map_err(io_error)
    }
}

/// fsync of every file, from a few threads at once: the disk then
/// completes many small writes per round trip, and the files of a batch
/// are durable in a fraction of the time one after another would take
/// (a syncfs would also wait for everything else dirty on the file
/// system, which on a busy machine is far more).
pub fn sync_files(files: &[File]) -> std::io::Result<()> {
    const THREADS: usize = 8;
    let per = files.len().div_ceil(THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per)
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(File::sync_all)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("sync thread panicked"))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("cardca-dirfd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Dir::open(&path, true, ": refused").expect("open")
    }

    /// Runs `f` on another thread and fails the test, rather than hanging
    /// it, if it does not return within a few seconds.
    fn at_once<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("it blocked")
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = scratch("fifo");
        rustix::fs::mknodat(&dir.fd, "index.txt", FileType::Fifo, Mode::from_raw_mode(0o644), 0)
            .expect("mkfifo");
        let path = dir.path().to_path_buf();
        let (read, append) = at_once(move || {
            let dir = Dir::open(&path, false, ": refused").expect("open");
            (dir.read("index.txt", 1 << 20).map(|_| ()), dir.open_append("index.txt").map(|_| ()))
        });
        for e in [read.expect_err("read"), append.expect_err("append")] {
            assert!(e.to_string().ends_with("index.txt is a FIFO, not a regular file: refused"), "{e}");
        }
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn links_are_refused() {
        let dir = scratch("links");
        std::fs::write(dir.join("target"), b"old").expect("write");
        std::os::unix::fs::symlink("target", dir.join("link")).expect("link");
        let e = dir.read("link", 100).expect_err("read").to_string();
        assert!(e.ends_with("link is a symbolic link: refused"), "{e}");
        assert!(dir.open_append("link").is_err());
        assert!(dir.replace("link", b"new").is_err());
        assert!(dir.replace_all(&[("link".into(), b"new")], || Ok(())).is_err());
        assert!(dir.create_fresh("link").is_err());
        assert_eq!(std::fs::read(dir.join("target")).expect("read"), b"old");
        assert!(dir.join("link").symlink_metadata().expect("link").file_type().is_symlink());
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn a_file_over_the_bound_is_refused() {
        let dir = scratch("bound");
        std::fs::write(dir.join("small"), b"0123456789").expect("write");
        assert_eq!(dir.read("small", 10).expect("read").expect("some"), b"0123456789");
        let e = dir.read("small", 9).expect_err("bound").to_string();
        assert!(e.ends_with("small is larger than 9 bytes (10): refused"), "{e}");
        // Sparse: refused on its size, before a byte is read.
        File::create(dir.join("huge")).and_then(|f| f.set_len(1 << 30)).expect("sparse");
        let path = dir.path().to_path_buf();
        let e =
            at_once(move || Dir::open(&path, false, "").expect("open").read("huge", 512 << 20).map(|_| ()));
        assert!(e.expect_err("huge").to_string().contains("is larger than 536870912 bytes"));
        assert_eq!(dir.read("missing", 10).expect("none"), None);
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn replace_leaves_the_old_content_or_the_new() {
        let dir = scratch("replace");
        std::fs::write(dir.join("crlnumber"), b"old").expect("write");
        dir.replace("crlnumber", b"new").expect("replace");
        assert_eq!(std::fs::read(dir.join("crlnumber")).expect("read"), b"new");
        assert!(!dir.join("crlnumber.tmp").exists());
        // A temporary name that cannot be taken: the old content stays.
        std::fs::create_dir_all(dir.join("crlnumber.tmp/x")).expect("mkdir");
        assert!(dir.replace("crlnumber", b"newer").is_err());
        assert_eq!(std::fs::read(dir.join("crlnumber")).expect("read"), b"new");
        // A batch stopped before its renames replaces nothing and leaves
        // no temporary file; one that goes through replaces every file.
        let files = [("a.der".to_string(), &b"A2"[..]), ("b.der".to_string(), &b"B2"[..])];
        std::fs::write(dir.join("a.der"), b"A1").expect("write");
        let e = dir.replace_all(&files, || Err(Error::new("stop"))).expect_err("stopped");
        assert_eq!(e.to_string(), "stop");
        assert_eq!(std::fs::read(dir.join("a.der")).expect("read"), b"A1");
        assert!(!dir.join("b.der").exists());
        dir.replace_all(&files, || Ok(())).expect("replace_all");
        assert_eq!(std::fs::read(dir.join("a.der")).expect("read"), b"A2");
        assert_eq!(std::fs::read(dir.join("b.der")).expect("read"), b"B2");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".tmp") && n != "crlnumber.tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn create_new_and_fresh() {
        let dir = scratch("create");
        assert!(dir.create_new("issuer.der", b"x").expect("create"));
        assert!(!dir.create_new("issuer.der", b"y").expect("exists"));
        assert_eq!(std::fs::read(dir.join("issuer.der")).expect("read"), b"x");
        // An orphan regular file is replaced by a fresh one.
        let mut f = dir.create_fresh("issuer.der").expect("fresh");
        f.write_all(b"z").expect("write");
        assert_eq!(std::fs::read(dir.join("issuer.der")).expect("read"), b"z");
        let sub = dir.make_subdir("certs").expect("mkdir");
        assert_eq!(sub.path(), dir.join("certs"));
        assert!(dir.subdir("newcerts").expect("none").is_none());
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn still_names_the_file_opened() {
        let dir = scratch("still");
        let file = dir.open_append("audit.log").expect("open");
        assert!(dir.still_names("audit.log", &file).expect("stat"));
        std::fs::rename(dir.join("audit.log"), dir.join("audit.log.1")).expect("rename");
        assert!(!dir.still_names("audit.log", &file).expect("gone"));
        std::os::unix::fs::symlink("audit.log.1", dir.join("audit.log")).expect("link");
        assert!(!dir.still_names("audit.log", &file).expect("a link to it is not it"));
        let _ = std::fs::remove_dir_all(dir.path());
    }
}
