//! A Redis-protocol stand-in on 127.0.0.1 for the cache and queue tests: it answers what
//! the shipped runbooks ask (`PING`, `INFO stats`, `INFO memory`, `LLEN key`) with the
//! values a test gives, to inline commands (`PING\r\n`, as a `tcp` step sends it) and to
//! RESP arrays (as `redis-cli` sends them), for as many commands as a connection sends.
//! Anything else is a Redis error reply, so a runbook asking for more fails loudly.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// What the stand-in reports.
#[derive(Clone, Debug, Default)]
pub struct Redis {
    /// `INFO stats`: keyspace_hits, keyspace_misses, evicted_keys.
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
    /// `INFO memory`: used_memory (bytes).
    pub used_memory: u64,
    /// `LLEN key`: the length of each list (an absent key is 0, as in Redis).
    pub lists: Vec<(String, u64)>,
}

impl Redis {
    /// Serve these values on a loopback port; its number. The server lives as long as
    /// the test process.
    pub fn start(self) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let values = Arc::new(self);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let values = Arc::clone(&values);
                std::thread::spawn(move || serve(stream, &values));
            }
        });
        port
    }

    /// The reply to one command (its words, the command first).
    fn answer(&self, words: &[String]) -> String {
        let command = words.first().map(|w| w.to_ascii_uppercase());
        let arg = words.get(1).map(|w| w.to_ascii_lowercase());
        match (command.as_deref(), arg.as_deref()) {
            (Some("PING"), None) => "+PONG\r\n".to_string(),
            (Some("INFO"), section) => {
                let stats = format!(
                    "# Stats\r\ntotal_connections_received:1\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nevicted_keys:{}\r\n",
                    self.hits, self.misses, self.evicted
                );
                let memory = format!(
                    "# Memory\r\nused_memory:{}\r\nmaxmemory:0\r\n",
                    self.used_memory
                );
                let body = match section {
                    Some("stats") => stats,
                    Some("memory") => memory,
                    None | Some("all" | "everything" | "default") => format!("{memory}\r\n{stats}"),
                    Some(_) => String::new(),
                };
                format!("${}\r\n{body}\r\n", body.len())
            }
            (Some("LLEN"), Some(_)) if words.len() == 2 => {
                let length = self
                    .lists
                    .iter()
                    .find(|(key, _)| *key == words[1])
                    .map_or(0, |(_, n)| *n);
                format!(":{length}\r\n")
            }
            _ => format!("-ERR unknown command {words:?} (opsbook test stand-in)\r\n"),
        }
    }
}

fn serve(stream: TcpStream, values: &Redis) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(words) = command(&mut reader) {
        if writer.write_all(values.answer(&words).as_bytes()).is_err() {
            return;
        }
    }
}

/// The next command: a RESP array of bulk strings, or an inline line of words; `None`
/// when the client has gone or sent something that is neither.
fn command(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let line = read_line(reader)?;
    let Some(count) = line.strip_prefix('*') else {
        return Some(line.split_whitespace().map(str::to_string).collect());
    };
    let count: usize = count.parse().ok()?;
    let mut words = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let len: usize = read_line(reader)?.strip_prefix('$')?.parse().ok()?;
        let mut word = vec![0; len + 2];
        reader.read_exact(&mut word).ok()?;
        word.truncate(len);
        words.push(String::from_utf8_lossy(&word).into_owned());
    }
    Some(words)
}

/// A line without its `\r\n`; `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

/// A stand-in with these figures (no evictions, no lists); its port.
pub fn server(used_memory: u64, hits: u64, misses: u64) -> u16 {
    Redis {
        hits,
        misses,
        used_memory,
        ..Redis::default()
    }
    .start()
}
