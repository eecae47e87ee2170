//! A stand-in for a Redis server on 127.0.0.1: enough of the protocol for the commands the
//! shipped cache checks use (`PING` inline or as RESP, `INFO memory`, `INFO stats`), with
//! fixed figures, so redis-cli itself talks to it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// A stand-in for Redis that speaks what `cache-check` uses: `PING` inline (as the `tcp`
/// step sends it) or as a RESP array (as redis-cli sends it), and `INFO memory|stats`
/// with these figures. Returns its port.
pub fn server(used_memory: u64, hits: u64, misses: u64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                while let Some(words) = read_command(&mut reader) {
                    let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
                    let reply = match upper.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                        ["PING"] => "+PONG\r\n".to_string(),
                        ["INFO", "MEMORY"] => {
                            bulk(&format!("# Memory\r\nused_memory:{used_memory}\r\n"))
                        }
                        ["INFO", "STATS"] => bulk(&format!(
                            "# Stats\r\nkeyspace_hits:{hits}\r\nkeyspace_misses:{misses}\r\n"
                        )),
                        _ => "-ERR unknown command\r\n".to_string(),
                    };
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn bulk(text: &str) -> String {
    format!("${}\r\n{text}\r\n", text.len())
}

/// One command: a RESP array of bulk strings, or an inline line of words.
fn read_command(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let Some(count) = line.trim_end().strip_prefix('*') else {
        return Some(line.split_whitespace().map(str::to_string).collect());
    };
    let count: usize = count.parse().ok()?;
    let mut words = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut word = vec![0u8; len + 2];
        reader.read_exact(&mut word).ok()?;
        word.truncate(len);
        words.push(String::from_utf8_lossy(&word).into_owned());
    }
    Some(words)
}
