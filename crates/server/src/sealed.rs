//! Sealed files: a file made from children's data (an export, a letter
//! kept as evidence) is written to disk encrypted under a file key from the
//! vault, never in plain text. Destroying the key makes every copy of the
//! file — backups included — unreadable.
//!
//! The format is the STREAM construction (Hoang, Reyhanitabar, Rogaway,
//! Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
//! Misuse-Resistance", 2015) over XChaCha20-Poly1305, so that a file of any
//! size is written and read in bounded memory: a header (`MAGIC`, then a
//! random 19-byte nonce prefix), then chunks of `CHUNK` plaintext bytes,
//! each sealed with the nonce `prefix ‖ counter (u32, big-endian) ‖ last
//! (0 or 1)` and the file's binding (what the file is, whose it is) as
//! associated data. The last chunk (possibly empty) is marked, so a file
//! cut short, chunks reordered or a file moved to another name do not open.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::random::random_bytes;
use crate::vault::FileKey;

const MAGIC: &[u8; 16] = b"baobao-sealed-v1";
const PREFIX: usize = 19;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

fn nonce(prefix: &[u8; PREFIX], counter: u32, last: bool) -> XNonce {
    let mut nonce = [0u8; 24];
    nonce[..PREFIX].copy_from_slice(prefix);
    nonce[PREFIX..PREFIX + 4].copy_from_slice(&counter.to_be_bytes());
    nonce[23] = u8::from(last);
    XNonce::from(nonce)
}

fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sealed file: {what}"))
}

/// Writes a sealed file; `finish` seals the last chunk and returns the
/// inner writer. A writer dropped without `finish` leaves a file that does
/// not open (its last chunk is missing).
pub struct SealedWriter<W: Write> {
    inner: W,
    cipher: XChaCha20Poly1305,
    binding: String,
    prefix: [u8; PREFIX],
    counter: u32,
    buffer: Vec<u8>,
}

impl<W: Write> SealedWriter<W> {
    pub fn new(mut inner: W, key: &FileKey, binding: String) -> io::Result<SealedWriter<W>> {
        let prefix: [u8; PREFIX] = random_bytes();
        inner.write_all(MAGIC)?;
        inner.write_all(&prefix)?;
        Ok(SealedWriter {
            inner,
            cipher: XChaCha20Poly1305::new((&key.0).into()),
            binding,
            prefix,
            counter: 0,
            buffer: Vec::with_capacity(CHUNK),
        })
    }

    fn seal_buffer(&mut self, last: bool) -> io::Result<()> {
        let sealed = self
            .cipher
            .encrypt(
                &nonce(&self.prefix, self.counter, last),
                Payload { msg: &self.buffer, aad: self.binding.as_bytes() },
            )
            .map_err(|_| broken("encryption failed"))?;
        self.inner.write_all(&sealed)?;
        self.counter = self.counter.checked_add(1).ok_or_else(|| broken("too large"))?;
        self.buffer.clear();
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.seal_buffer(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if bytes.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more data follows it: the last
        // chunk is always sealed by `finish`, marked as last.
        if self.buffer.len() == CHUNK {
            self.seal_buffer(false)?;
        }
        let taken = bytes.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a sealed file chunk by chunk; every chunk is authenticated before
/// any of it is handed out, and a file that ends before its last chunk is
/// an error, never a short read.
pub struct SealedReader<R: Read> {
    inner: R,
    cipher: XChaCha20Poly1305,
    binding: String,
    prefix: [u8; PREFIX],
    counter: u32,
    /// The next sealed chunk, read ahead to know whether it is the last.
    ahead: Vec<u8>,
    plain: Vec<u8>,
    position: usize,
    done: bool,
}

/// Reads until `buffer` holds `want` bytes or the input ends.
fn fill(inner: &mut impl Read, want: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::with_capacity(want);
    inner.take(want as u64).read_to_end(&mut buffer)?;
    Ok(buffer)
}

impl<R: Read> SealedReader<R> {
    pub fn new(mut inner: R, key: &FileKey, binding: String) -> io::Result<SealedReader<R>> {
        let header = fill(&mut inner, MAGIC.len() + PREFIX)?;
        if header.len() != MAGIC.len() + PREFIX || &header[..MAGIC.len()] != MAGIC {
            return Err(broken("not a sealed file"));
        }
        let mut prefix = [0u8; PREFIX];
        prefix.copy_from_slice(&header[MAGIC.len()..]);
        let ahead = fill(&mut inner, CHUNK + TAG)?;
        Ok(SealedReader {
            inner,
            cipher: XChaCha20Poly1305::new((&key.0).into()),
            binding,
            prefix,
            counter: 0,
            ahead,
            plain: Vec::new(),
            position: 0,
            done: false,
        })
    }

    /// The next chunk of plaintext; `None` after the last.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let current = std::mem::take(&mut self.ahead);
        if current.len() < TAG {
            return Err(broken("cut short"));
        }
        let last = if current.len() < CHUNK + TAG {
            true
        } else {
            self.ahead = fill(&mut self.inner, CHUNK + TAG)?;
            self.ahead.is_empty()
        };
        let plain = self
            .cipher
            .decrypt(&nonce(&self.prefix, self.counter, last), Payload { msg: &current, aad: self.binding.as_bytes() })
            .map_err(|_| broken("altered, cut short, or sealed for something else"))?;
        self.counter = self.counter.checked_add(1).ok_or_else(|| broken("too large"))?;
        self.done = last;
        Ok(Some(plain))
    }

    /// The whole plaintext (for small files such as evidence).
    pub fn read_all(mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            all.extend_from_slice(&chunk);
        }
        Ok(all)
    }
}

impl<R: Read> Read for SealedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.position == self.plain.len() {
            match self.next_chunk()? {
                Some(chunk) => {
                    self.plain = chunk;
                    self.position = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.plain.len() - self.position);
        out[..n].copy_from_slice(&self.plain[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FileKey {
        FileKey(random_bytes())
    }

    fn seal(key: &FileKey, binding: &str, plain: &[u8]) -> Vec<u8> {
        let mut writer = SealedWriter::new(Vec::new(), key, binding.to_owned()).unwrap();
        // Odd-sized writes, to cross chunk boundaries at every offset.
        for piece in plain.chunks(7919) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    fn open(key: &FileKey, binding: &str, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut plain = Vec::new();
        SealedReader::new(sealed, key, binding.to_owned())?.read_to_end(&mut plain)?;
        Ok(plain)
    }

    #[test]
    fn every_size_round_trips_including_exact_chunk_multiples() {
        let key = key();
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&key, "export|fam_a|exp_1", &plain);
            assert_eq!(open(&key, "export|fam_a|exp_1", &sealed).unwrap(), plain, "size {size}");
            if size >= 64 {
                assert!(!sealed.windows(64).any(|w| w == &plain[..64]), "plaintext on disk");
            }
        }
    }

    #[test]
    fn a_wrong_key_binding_cut_or_change_does_not_open() {
        let key = key();
        let plain: Vec<u8> = (0..(2 * CHUNK + 100)).map(|i| (i % 13) as u8).collect();
        let sealed = seal(&key, "b", &plain);
        assert!(open(&self::key(), "b", &sealed).is_err(), "another key");
        assert!(open(&key, "c", &sealed).is_err(), "another binding");
        // Cut at a chunk boundary: the last chunk marker is missing.
        let boundary = MAGIC.len() + PREFIX + 2 * (CHUNK + TAG);
        assert!(open(&key, "b", &sealed[..boundary]).is_err(), "cut at a chunk boundary");
        assert!(open(&key, "b", &sealed[..sealed.len() - 1]).is_err(), "cut by a byte");
        let mut changed = sealed.clone();
        changed[MAGIC.len() + PREFIX + 10] ^= 1;
        assert!(open(&key, "b", &changed).is_err(), "a flipped bit");
        // Two chunks swapped.
        let mut swapped = sealed[..MAGIC.len() + PREFIX].to_vec();
        let body = &sealed[MAGIC.len() + PREFIX..];
        swapped.extend_from_slice(&body[CHUNK + TAG..2 * (CHUNK + TAG)]);
        swapped.extend_from_slice(&body[..CHUNK + TAG]);
        swapped.extend_from_slice(&body[2 * (CHUNK + TAG)..]);
        assert!(open(&key, "b", &swapped).is_err(), "chunks reordered");
        assert!(open(&key, "b", b"not sealed").is_err());
    }
}
