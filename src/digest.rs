//! SHA-256 of what streams through: archives hash each file as they add it, and check
//! each member as they read it back.

use std::io::Read;

/// An incremental SHA-256. ring's assembly (SHA-NI, AVX2 or SSSE3, picked at run time) is
/// about twice as fast as a portable implementation on CPUs without SHA extensions, and
/// hashing is most of a backup's CPU time there.
pub struct Sha256(ring::digest::Context);

impl Sha256 {
    pub fn new() -> Self {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest's 32 bytes.
    pub fn finalize(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }

    /// The SHA-256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> Vec<u8> {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        hasher.finalize()
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hashing,
    len: u64,
}

/// Where the hashing happens: on the reading thread, or, for a big file, on a thread of
/// its own fed in 1 MiB pieces, so that hashing and compressing (or writing) use both cores.
enum Hashing {
    Inline(Sha256),
    Background {
        pending: Vec<u8>,
        pieces: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
        done: Option<std::thread::JoinHandle<Vec<u8>>>,
    },
}

/// Files at least this big are hashed on a thread of their own.
const BACKGROUND_FROM: u64 = 1 << 20;
const PIECE: usize = 1 << 20;

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hashing::Inline(Sha256::new()),
            len: 0,
        }
    }

    /// For `size` bytes to come: a big file is hashed on another thread while the caller
    /// goes on with what it reads (falls back to hashing inline if no thread can start).
    pub fn sized(inner: R, size: u64) -> Self {
        if size < BACKGROUND_FROM {
            return HashingReader::new(inner);
        }
        let (pieces, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let started = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for piece in received {
                    hasher.update(&piece);
                }
                hasher.finalize()
            });
        let Ok(done) = started else {
            return HashingReader::new(inner);
        };
        HashingReader {
            inner,
            hasher: Hashing::Background {
                pending: Vec::with_capacity(PIECE),
                pieces: Some(pieces),
                done: Some(done),
            },
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
        let digest = match self.hasher {
            Hashing::Inline(hasher) => hasher.finalize(),
            Hashing::Background {
                pending,
                mut pieces,
                mut done,
            } => finish_background(pending, pieces.take(), done.take()),
        };
        (self.len, hex(&digest))
    }
}

/// Hand over the last piece, close the channel and wait for the digest. A hashing thread
/// cannot fail short of a panic, which `join` reports; an empty digest then never matches.
fn finish_background(
    pending: Vec<u8>,
    pieces: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    done: Option<std::thread::JoinHandle<Vec<u8>>>,
) -> Vec<u8> {
    if let Some(pieces) = pieces
        && !pending.is_empty()
    {
        let _ = pieces.send(pending);
    }
    done.and_then(|d| d.join().ok()).unwrap_or_default()
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = &buf[..n];
        match &mut self.hasher {
            Hashing::Inline(hasher) => hasher.update(read),
            Hashing::Background {
                pending, pieces, ..
            } => {
                pending.extend_from_slice(read);
                if pending.len() >= PIECE
                    && let Some(sender) = pieces
                {
                    let piece = std::mem::replace(pending, Vec::with_capacity(PIECE));
                    if sender.send(piece).is_err() {
                        return Err(std::io::Error::other("the hashing thread stopped"));
                    }
                }
            }
        }
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
    fn a_big_file_hashed_in_the_background_gives_the_same_digest() {
        use std::io::Read;
        let data: Vec<u8> = (0..3 * super::PIECE + 12345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut inline = super::HashingReader::new(&data[..]);
        let mut background = super::HashingReader::sized(&data[..], data.len() as u64);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        inline.read_to_end(&mut a).unwrap();
        background.read_to_end(&mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(inline.finish(), background.finish());
    }

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
