//! Counted words for messages people read: `1 file`, `2 files`. A foundation helper, so
//! that every layer (renderers, domain libraries, the CLI) can use it without importing
//! the printer.

/// `1 file`, `2 files`, `0 files`: a number with the word that agrees with it.
pub fn count(n: impl std::fmt::Display, one: &str, many: &str) -> String {
    if n.to_string() == "1" {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_and_every_other_number_plural() {
        assert_eq!(count(1usize, "file", "files"), "1 file");
        assert_eq!(count(0usize, "file", "files"), "0 files");
        assert_eq!(count(2u64, "entry", "entries"), "2 entries");
        assert_eq!(count(11i64, "day", "days"), "11 days");
        assert_eq!(count(-1i64, "day", "days"), "-1 days");
    }
}
