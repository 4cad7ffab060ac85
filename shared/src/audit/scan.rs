//! What the log says happened, for `cert-store --reserved` and
//! `--reconcile`: which certificates card-sign signed and released. Not
//! whether the log is intact (that is `verify`): a line that does not
//! parse is passed over, and what is read here only informs the
//! operator, never decides for them.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::Path;

use super::line::{parse_line, MAX_LINE};
use crate::dirfd::Dir;
use crate::error::{Context, Result};
use crate::json::Json;

/// A certificate card-sign signed, verified and released: its `sign`
/// line (logged before the certificate was written, so one without it
/// never left card-sign).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub line: u64,
    pub tbs_sha256: String,
}

/// Every certificate the log at `path` says was signed and released, by
/// serial; None when there is no log there.
pub fn released_certificates(path: &Path) -> Result<Option<HashMap<String, Released>>> {
    let (dir, name) = Dir::holding(path, ": refused")?;
    let Some(file) = dir.open_read(&name)? else { return Ok(None) };
    file.lock_shared().with_context(|| format!("locking {}", path.display()))?;
    let mut input = std::io::BufReader::with_capacity(1 << 16, &file);
    let mut found = HashMap::new();
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        let n = input
            .by_ref()
            .take((MAX_LINE + 2) as u64)
            .read_until(b'\n', &mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        let Ok(line) = parse_line(bytes.strip_suffix(b"\n").unwrap_or(&bytes)) else { continue };
        let text = |k: &str| line.json.get(k).and_then(Json::as_str).map(str::to_string);
        if line.event != "sign"
            || text("kind").as_deref() != Some("certificate")
            || text("result").as_deref() != Some("ok")
        {
            continue;
        }
        if let (Some(serial), Some(tbs_sha256)) = (text("serial"), text("tbs_sha256")) {
            found.insert(serial, Released { line: line.seq, tbs_sha256 });
        }
    }
    Ok(Some(found))
}
