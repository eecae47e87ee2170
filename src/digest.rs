//! SHA-256 of what streams through: archives hash each file as they add it, and check
//! each member as they read it back.

use sha2::{Digest, Sha256};
use std::io::Read;

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Bytes read so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The byte count and the SHA-256 in hex.
    pub fn finish(self) -> (u64, String) {
        (self.len, hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Read `reader` to its end: byte count and SHA-256 in hex.
pub fn sha256_of(reader: impl Read) -> std::io::Result<(u64, String)> {
    let mut hashing = HashingReader::new(reader);
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    Ok(hashing.finish())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digest() {
        let (len, sum) = super::sha256_of(&b"abc"[..]).unwrap();
        assert_eq!(len, 3);
        assert_eq!(
            sum,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
