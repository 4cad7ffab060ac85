//! The OCSP web directory (`cert-store --ocsp-dir`): files served as they
//! are (DIR/SERIAL.der, for a web server's stapling), not the CA database.
//! A thin type over [`crate::dirfd::Dir`], which does the work: each file is read
//! only if it is a regular one within a bound, and files are replaced in
//! batches so that a reader sees each file's old content or its new one,
//! never half of either. Nothing inside is followed if it is a link.

use std::path::Path;

use crate::dirfd::Dir;
use crate::error::Result;

/// How a link inside the directory is refused.
const LINKS: &str = " (or not a plain file): refused, not replaced or followed";

pub struct ServeDir(Dir);

impl ServeDir {
    /// Opens `dir`, creating it if needed; `dir` itself may be a link.
    pub fn open(dir: &Path) -> Result<ServeDir> {
        Ok(ServeDir(Dir::open(dir, true, LINKS)?))
    }

    /// Opens `dir` to read what is served, without creating it.
    pub fn open_existing(dir: &Path) -> Result<ServeDir> {
        Ok(ServeDir(Dir::open(dir, false, LINKS)?))
    }

    /// The content of the regular file `name` in the directory, or None
    /// when there is none; a link, a FIFO or anything but a regular file
    /// is refused, and so is more than `max` bytes.
    pub fn read(&self, name: &str, max: usize) -> Result<Option<Vec<u8>>> {
        self.0.read(name, max as u64)
    }

    /// Replaces each `(name, content)` as one batch: see
    /// [`Dir::replace_all`]. `before_rename` runs once every new
    /// file is durable and before any is renamed into place (where a
    /// server may read it): an error there replaces nothing.
    pub fn replace_all(
        &self,
        files: &[(String, &[u8])],
        before_rename: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        self.0.replace_all(files, before_rename)
    }
}

// The behaviour is dirfd's and tested there; this checks the wording a
// refused link gets here (cert-store's goldens show it).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_in_this_directory_s_words() {
        let path = std::env::temp_dir().join(format!("cardca-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let dir = ServeDir::open(&path).expect("open");
        std::os::unix::fs::symlink("elsewhere", path.join("01.der")).expect("link");
        let e = dir.read("01.der", 100).expect_err("link").to_string();
        assert!(
            e.ends_with("01.der is a symbolic link (or not a plain file): refused, not replaced or followed"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&path);
    }
}
