//! Compression, written once: the two stream formats opsbook writes and reads (gzip, zstd),
//! how an encoder or a decoder of either is built, and how a format is told from a file's
//! first bytes or its name, and a config's choice of one (or none). Log rotation, log
//! archives, backups, restores and incident bundles all build their streams here.

use std::io::{BufRead, Read, Write};
use std::path::Path;

/// zstd's level: its own default, fast with a good ratio.
const ZSTD_LEVEL: i32 = 3;
/// gzip's level: `gzip -6`, what `gzip` and `logrotate` use by default.
const GZIP_LEVEL: u32 = 6;

/// A stream format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
}

/// A config's choice: a stream format, or none (`compress: gzip | zstd | none`).
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// The default, so `zcat` and `zgrep` keep working.
    #[default]
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// The stream format (none for `none`).
    pub fn codec(self) -> Option<Codec> {
        match self {
            Compression::Gzip => Some(Codec::Gzip),
            Compression::Zstd => Some(Codec::Zstd),
            Compression::None => None,
        }
    }

    /// The file name extension (empty for `none`).
    pub fn extension(self) -> &'static str {
        self.codec().map_or("", Codec::extension)
    }
}

/// How many cores an encoder may use: zstd can spread one stream over every core (gzip's
/// encoder is single-threaded either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    One,
    All,
}

impl Codec {
    /// The file name extension of a stream in this format.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
        }
    }

    /// The format whose magic number `head` (a file's first bytes) starts with.
    pub fn sniff(head: &[u8]) -> Option<Codec> {
        match head {
            [0x1f, 0x8b, ..] => Some(Codec::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// The format a file's name says it holds (`.gz`, `.zst`).
    pub fn of_name(path: &Path) -> Option<Codec> {
        let name = path.as_os_str().as_encoded_bytes();
        [Codec::Gzip, Codec::Zstd]
            .into_iter()
            .find(|codec| name.ends_with(codec.extension().as_bytes()))
    }
}

/// A compressing writer, finished explicitly: dropping one would swallow the error of its
/// last write (a full disk), so callers end the stream with [`Encoder::finish`].
pub enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// A stream of `codec` into `out`; a zstd stream carries a frame checksum, so any later
    /// `zstdcat` verifies it.
    pub fn new(codec: Codec, out: W, threads: Threads) -> std::io::Result<Self> {
        Ok(match codec {
            Codec::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Codec::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                if threads == Threads::All {
                    let n = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
                    let _ = e.multithread(n);
                }
                let _ = e.include_checksum(true);
                Encoder::Zstd(e)
            }
        })
    }

    /// End the stream and hand back the writer (not yet flushed or synced: that is the
    /// caller's, who knows what the writer is).
    pub fn finish(self) -> std::io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// A decompressing reader of `codec` over `reader` (already buffered, as the caller sizes
/// it). gzip streams of several members (`cat a.gz b.gz`) are read whole, as `zcat` does.
pub fn decoder<'a, R: BufRead + Send + 'a>(
    codec: Codec,
    reader: R,
) -> std::io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match codec {
        Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_reads_back_what_it_wrote_and_is_told_by_its_magic_and_name() {
        let text = b"2025-01-15 10:30:00,123 - app - ERROR - boom\n".repeat(2000);
        for codec in [Codec::Gzip, Codec::Zstd] {
            for threads in [Threads::One, Threads::All] {
                let mut encoder = Encoder::new(codec, Vec::new(), threads).unwrap();
                encoder.write_all(&text).unwrap();
                let bytes = encoder.finish().unwrap();
                assert!(bytes.len() < text.len());
                assert_eq!(Codec::sniff(&bytes), Some(codec));
                let mut back = Vec::new();
                decoder(codec, std::io::Cursor::new(bytes))
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, text);
            }
            let name = format!("app.log.1{}", codec.extension());
            assert_eq!(Codec::of_name(Path::new(&name)), Some(codec));
        }
        assert_eq!(Codec::sniff(b"plain text"), None);
        assert_eq!(Codec::sniff(&[0x1f]), None);
        assert_eq!(Codec::of_name(Path::new("app.log.1")), None);
    }

    #[test]
    fn a_gzip_stream_of_two_members_reads_whole() {
        let mut both = Vec::new();
        for part in [&b"first\n"[..], b"second\n"] {
            let mut encoder = Encoder::new(Codec::Gzip, Vec::new(), Threads::One).unwrap();
            encoder.write_all(part).unwrap();
            both.extend(encoder.finish().unwrap());
        }
        let mut back = String::new();
        decoder(Codec::Gzip, &both[..])
            .unwrap()
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, "first\nsecond\n");
    }
}
