//! The PEM/DER stream every filter reads and writes.
//!
//! Input is any number of PEM blocks or concatenated DER objects, told apart
//! by their first byte, read one object at a time so memory stays bounded
//! whatever the stream's length. Explanatory text before a PEM block (what
//! `certtool` and `openssl x509 -text` print) is skipped, as RFC 7468
//! section 2 asks; text that no block follows, binary junk and anything
//! after the last object are errors, so a truncated or spliced stream is
//! noticed instead of silently skipped.

use std::io::{BufRead, IsTerminal, Read, Write};

use crate::error::{Error, Result};

/// No certificate, CSR or key we handle comes near this; anything larger is
/// the wrong input, and reading it whole would defeat bounded memory.
pub const MAX_OBJECT: usize = 1 << 20;

/// One object from the stream: its PEM label (None for DER) and DER bytes.
#[derive(Debug)]
pub struct Object {
    pub label: Option<String>,
    pub der: Vec<u8>,
    /// 1-based position in the stream, for messages.
    pub index: usize,
}

impl Object {
    /// Refuses a PEM block whose label is not one of `labels`; DER input
    /// carries no label and is checked by the decoder instead.
    pub fn expect_label(&self, labels: &[&str]) -> Result<()> {
        match &self.label {
            Some(l) if !labels.contains(&l.as_str()) => Err(Error::new(format!(
                "object {}: PEM label {l:?} where {} was expected",
                self.index,
                labels.join(" or ")
            ))),
            _ => Ok(()),
        }
    }
}

pub struct Reader<R> {
    inner: R,
    line: usize,
    count: usize,
    /// For key material ([`Reader::secret`]): the most any object's
    /// buffers will hold, allocated up front so that none grows.
    reserve: usize,
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader { inner, line: 0, count: 0, reserve: 0 }
    }

    /// A reader of private keys from `len` bytes in all: its buffers are
    /// allocated once at that size and zeroized, because a Vec that grows
    /// leaves a copy of what it held in each allocation it frees.
    pub fn secret(inner: R, len: usize) -> Reader<R> {
        Reader { inner, line: 0, count: 0, reserve: len }
    }

    /// Numbers the objects from `count + 1` on, for a stream another
    /// reader started.
    pub fn after(mut self, count: usize) -> Reader<R> {
        self.count = count;
        self
    }

    /// The next object, or None at a clean end of input.
    pub fn next_object(&mut self) -> Result<Option<Object>> {
        let first = loop {
            let buf = self.inner.fill_buf()?;
            let Some(&b) = buf.first() else { return Ok(None) };
            if b.is_ascii_whitespace() {
                if b == b'\n' {
                    self.line += 1;
                }
                self.inner.consume(1);
                continue;
            }
            break b;
        };
        self.count += 1;
        let index = self.count;
        let (label, der) = match first {
            0x30 => (None, self.read_der().map_err(|e| e.context(format!("object {index} (DER)")))?),
            b if b == b'-' || b.is_ascii_graphic() => {
                self.read_pem().map_err(|e| e.context(format!("object {index} (PEM)")))?
            }
            other => {
                return Err(Error::new(format!(
                    "object {index}: input is neither PEM nor DER (first byte {other:#04x})"
                )))
            }
        };
        Ok(Some(Object { label, der, index }))
    }

    fn read_line(&mut self, line: &mut Vec<u8>) -> Result<usize> {
        line.clear();
        let n = Read::take(self.inner.by_ref(), MAX_OBJECT as u64).read_until(b'\n', line)?;
        self.line += 1;
        Ok(n)
    }

    fn read_pem(&mut self) -> Result<(Option<String>, Vec<u8>)> {
        let start = self.line + 1;
        // Zeroized, and of their final size for a secret reader:
        // card-keygen reads private keys through this reader.
        let mut block = zeroize::Zeroizing::new(Vec::with_capacity(self.reserve));
        let mut line = zeroize::Zeroizing::new(Vec::with_capacity(self.reserve));
        let mut skipped = 0;
        let label = loop {
            if self.read_line(&mut line)? == 0 {
                return Err(Error::new(format!(
                    "line {start}: text that no -----BEGIN line follows (input is neither PEM nor DER)"
                )));
            }
            if let Some(label) = pem_boundary(&line, "-----BEGIN ") {
                break label;
            }
            let text = std::str::from_utf8(&line)
                .map_err(|_| Error::new(format!("line {}: binary data in PEM input", self.line)))?;
            if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
                || line.starts_with(b"-----")
            {
                return Err(Error::new(format!("line {}: expected a -----BEGIN line", self.line)));
            }
            skipped += line.len();
            if skipped > MAX_OBJECT {
                return Err(Error::new("more than 1 MiB of text before a PEM block"));
            }
        };
        block.extend_from_slice(&line);
        loop {
            if self.read_line(&mut line)? == 0 {
                return Err(Error::new(format!(
                    "truncated: the {label} block from line {start} has no END line"
                )));
            }
            block.extend_from_slice(&line);
            if block.len() > MAX_OBJECT {
                return Err(Error::new("PEM block larger than 1 MiB"));
            }
            if let Some(end) = pem_boundary(&line, "-----END ") {
                if end != label {
                    return Err(Error::new(format!("BEGIN {label} closed by END {end}")));
                }
                break;
            }
        }
        let bad = |e: pem_rfc7468::Error| Error::new(format!("bad PEM block at line {start}: {e}"));
        // Decoded into one allocation of the decoded length.
        let mut decoder = pem_rfc7468::Decoder::new(&block).map_err(bad)?;
        let mut der = vec![0u8; decoder.remaining_len()];
        let len = decoder.decode(&mut der).map_err(bad)?.len();
        der.truncate(len);
        if !decoder.is_finished() {
            return Err(Error::new(format!("bad PEM block at line {start}: data after the decoded length")));
        }
        Ok((Some(decoder.type_label().to_string()), der))
    }

    /// One DER TLV whose outer tag is SEQUENCE. The length must be definite
    /// and minimally encoded; the decoder checks the inside.
    fn read_der(&mut self) -> Result<Vec<u8>> {
        let mut head = [0u8; 2];
        self.read_exact(&mut head)?;
        let mut out = Vec::with_capacity(self.reserve.max(2));
        out.extend_from_slice(&head);
        let len = match head[1] {
            n if n < 0x80 => n as usize,
            0x80 => return Err(Error::new("indefinite length: BER, not DER")),
            n => {
                let count = (n & 0x7f) as usize;
                if count > 3 {
                    return Err(Error::new("object larger than 1 MiB"));
                }
                let mut bytes = vec![0u8; count];
                self.read_exact(&mut bytes)?;
                if bytes[0] == 0 || (count == 1 && bytes[0] < 0x80) {
                    return Err(Error::new("non-minimal length encoding: BER, not DER"));
                }
                out.extend_from_slice(&bytes);
                bytes.iter().fold(0usize, |acc, &b| acc << 8 | b as usize)
            }
        };
        if len > MAX_OBJECT {
            return Err(Error::new("object larger than 1 MiB"));
        }
        let start = out.len();
        out.resize(start + len, 0);
        self.read_exact(&mut out[start..])?;
        Ok(out)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::new("truncated: input ends inside the object")
            } else {
                e.into()
            }
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Object>;
    fn next(&mut self) -> Option<Result<Object>> {
        self.next_object().transpose()
    }
}

/// The label of a `-----BEGIN LABEL-----` or `-----END LABEL-----` line.
fn pem_boundary(line: &[u8], prefix: &str) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?.trim_end_matches(['\n', '\r']);
    let label = text.strip_prefix(prefix)?.strip_suffix("-----")?;
    Some(label.to_string())
}

/// Every object of a PEM or DER file, each with one of `labels` (the
/// file named in every error). A file may hold none: the caller says
/// whether that is an error.
pub fn read_file(path: &std::path::Path, labels: &[&str]) -> Result<Vec<Object>> {
    let reading = |e: Error| e.context(format!("reading {}", path.display()));
    let file =
        std::fs::File::open(path).map_err(|e| Error::new(format!("opening {}: {e}", path.display())))?;
    let mut reader = Reader::new(std::io::BufReader::new(file));
    let mut out = Vec::new();
    while let Some(o) = reader.next_object().map_err(reading)? {
        o.expect_label(labels).map_err(reading)?;
        out.push(o);
    }
    Ok(out)
}

/// Standard input as a stream of objects.
pub fn stdin() -> Reader<std::io::StdinLock<'static>> {
    Reader::new(std::io::stdin().lock())
}

/// Writes whole objects to stdout, PEM or DER. Each object is flushed as
/// soon as it is complete, so a downstream filter can act on it while the
/// next one is made, and a failure never leaves half an object behind.
pub struct Writer {
    out: std::io::Stdout,
    der: bool,
}

impl Writer {
    /// Refuses DER on a terminal: binary on a screen helps nobody.
    pub fn stdout(der: bool) -> Result<Writer> {
        let out = std::io::stdout();
        if der && out.is_terminal() {
            return Err(Error::usage("refusing to write DER to a terminal; redirect stdout"));
        }
        Ok(Writer { out, der })
    }

    pub fn write(&mut self, label: &str, der: &[u8]) -> Result<()> {
        let mut out = self.out.lock();
        if self.der {
            out.write_all(der)?;
        } else {
            out.write_all(pem(label, der).as_bytes())?;
        }
        out.flush()?;
        Ok(())
    }
}

/// PEM text with 64-character lines and LF endings.
pub fn pem(label: &str, der: &[u8]) -> String {
    // Encoding cannot fail for a valid label and in-memory output.
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der)
        .unwrap_or_else(|e| format!("# cannot encode {label}: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Result<Vec<Object>> {
        Reader::new(input).collect()
    }

    #[test]
    fn pem_and_der_mixed() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        let mut input = pem("TEST", &der).into_bytes();
        input.extend_from_slice(b"\n\n");
        input.extend_from_slice(&der);
        input.extend_from_slice(&der);
        let objs = read_all(&input).expect("read");
        assert_eq!(objs.len(), 3);
        assert_eq!(objs[0].label.as_deref(), Some("TEST"));
        assert!(objs.iter().all(|o| o.der == der));
    }

    /// A secret reader reads what the plain one reads, into buffers that
    /// were never reallocated (the decoded DER is exactly its length).
    #[test]
    fn secret_reader() {
        let der: Vec<u8> = [&[0x30, 0x81, 0x96][..], &[0x5a; 0x96]].concat();
        let mut input = pem("PRIVATE KEY", &der).into_bytes();
        input.extend_from_slice(&der);
        let objs: Vec<Object> = Reader::secret(&input[..], input.len()).collect::<Result<_>>().expect("read");
        assert_eq!(objs.len(), 2);
        assert!(objs.iter().all(|o| o.der == der));
        assert_eq!(objs[0].der.capacity(), der.len());
        let err = Reader::secret(&b"-----BEGIN X-----\n!!!!\n-----END X-----\n"[..], 40)
            .next()
            .expect("one")
            .expect_err("bad base64");
        assert!(err.to_string().contains("bad PEM block at line 1"), "{err}");
    }

    #[test]
    fn refusals() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0x30, 0x80, 0x02, 0x01, 0x05, 0, 0], "BER"),
            (vec![0x30, 0x81, 0x03, 0x02, 0x01, 0x05], "non-minimal"),
            (der[..4].to_vec(), "truncated"),
            (b"hello".to_vec(), "neither PEM nor DER"),
            (vec![0x01, 0x02], "neither PEM nor DER"),
            (pem("TEST", &der).replace("-----END TEST-----\n", "").into_bytes(), "truncated"),
            (pem("TEST", &der).replace("END TEST", "END OTHER").into_bytes(), "closed by"),
            (vec![0x30, 0x84, 0x10, 0, 0, 0], "larger than 1 MiB"),
        ];
        for (input, want) in cases {
            let err = read_all(&input).expect_err(want);
            assert!(err.to_string().contains(want), "{err} should mention {want}");
        }
        let mut trailing = pem("TEST", &der).into_bytes();
        trailing.extend_from_slice(b"garbage\n");
        assert!(read_all(&trailing).is_err());
    }

    #[test]
    fn explanatory_text_before_a_block() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        let input = format!("Certificate:\n    Data: ...\n{}", pem("CERTIFICATE", &der));
        let objs = read_all(input.as_bytes()).expect("read");
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].der, der);
    }

    #[test]
    fn labels() {
        let objs = read_all(pem("CERTIFICATE", &[0x30, 0]).as_bytes()).expect("read");
        assert!(objs[0].expect_label(&["CERTIFICATE"]).is_ok());
        assert!(objs[0].expect_label(&["X509 CRL"]).is_err());
    }
}
