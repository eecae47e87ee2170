//! Text as part of a file name, and back: `%XX` escapes, so a name taken from config or a
//! URL never leaves its directory nor collides with another.

/// `text` as part of a file name: letters, digits, the bytes of `keep`, and `.` but
/// first kept, anything else `%XX` (so `/` never leaves the directory, a name never
/// starts with `.`, and two names stay apart).
pub fn escape_name(text: &str, keep: &[u8]) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || keep.contains(&byte) || (byte == b'.' && !out.is_empty())
        {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `%XX` escapes decoded (a URL path, or a name [`escape_name`] made); `None` for a broken
/// escape or bytes that do not make UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_and_decode_back() {
        for (text, keep) in [
            ("maintain:daily", &b"_-"[..]),
            ("run:../../etc", b"_-"),
            ("a-b c", b"_"),
        ] {
            let name = escape_name(text, keep);
            assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
            assert_eq!(percent_decode(&name).as_deref(), Some(text));
        }
        assert_eq!(escape_name(".hidden", b""), "%2Ehidden");
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("a%2"), None);
    }
}
