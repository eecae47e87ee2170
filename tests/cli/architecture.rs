//! The layers ARCHITECTURE.md draws hold in the code: every top-level module of `src/` is
//! in exactly one layer of its table, imports (`crate::NAME` paths in non-test code) only
//! point to the same layer or below, and no modules import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `module → layer number` from the table under `## Layers` in ARCHITECTURE.md: rows
/// `| N. name | `mod`, `mod` | … |`.
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let section = text
        .split("\n## Layers")
        .nth(1)
        .expect("ARCHITECTURE.md has a `## Layers` section");
    let section = section.split("\n## ").next().unwrap();
    let mut layers = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(number) = cells[1]
            .split('.')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                layers.insert(module.to_string(), number).is_none(),
                "ARCHITECTURE.md lists `{module}` in more than one layer"
            );
        }
    }
    assert!(!layers.is_empty(), "no layer rows found in ARCHITECTURE.md");
    layers
}

/// The top-level modules of `src/`: `NAME.rs` files and `NAME/` folders (not main, lib).
fn modules() -> BTreeSet<String> {
    std::fs::read_dir(root().join("src"))
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let name = name.strip_suffix(".rs").unwrap_or(&name).to_string();
            (name != "main" && name != "lib").then_some(name)
        })
        .collect()
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    if dir.is_file() {
        into.push(dir.to_path_buf());
        return;
    }
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// `source` without comments: `//` and `/* */` outside string and char literals become
/// spaces (line breaks kept), so a comment names no module and a `//` in a string hides
/// nothing.
fn uncommented(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if c == b'\\' && i + 1 < bytes.len() {
                out.push_str(&source[i..i + 2]);
                i += 2;
                continue;
            }
            in_string = c != b'"';
        } else if c == b'"' {
            in_string = true;
        } else if c == b'\'' && bytes.get(i + 2) == Some(&b'\'') {
            out.push_str(&source[i..i + 3]); // a char literal such as '"' or '{'
            i += 3;
            continue;
        } else if c == b'\'' && bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'')
        {
            out.push_str(&source[i..i + 4]); // an escaped one such as '\"'
            i += 4;
            continue;
        } else if source[i..].starts_with("//") {
            let end = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
            i = end;
            continue;
        } else if source[i..].starts_with("/*") {
            let end = source[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |n| i + 2 + n + 2);
            out.extend(
                source[i..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' }),
            );
            i = end;
            continue;
        }
        let len = source[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&source[i..i + len]);
        i += len;
    }
    out
}

/// The source without comments and without its `#[cfg(test)]` items: from a
/// `#[cfg(test)]` line, the next item up to the matching closing brace (or `;`) is dropped.
fn without_tests(source: &str) -> String {
    let mut kept = String::new();
    let uncommented = uncommented(source);
    let mut lines = uncommented.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            kept.push_str(line);
            kept.push('\n');
            continue;
        }
        let mut depth = 0i64;
        let mut opened = false;
        for line in lines.by_ref() {
            depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            opened |= line.contains('{');
            if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
                break;
            }
        }
    }
    kept
}

fn ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The first names of a `{ … }` group's entries (nested groups skipped over whole), and
/// the text after the group.
fn group_heads(group: &str) -> Vec<String> {
    let (mut depth, mut start, mut heads) = (0usize, 0usize, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                heads.push(ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                heads.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    heads
}

/// The top-level modules `source` names, for a file whose module path under `src/` is
/// `module` (`["backup", "restore", "stage"]`): through `crate::NAME`, `crate::{NAME, …}`
/// (nested groups too) and `super::` chains that climb to the crate root. `crate as X`
/// is reported as the name `crate as`, which no module may write.
fn imports_in(source: &str, module: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let word_before = |i: usize| {
        source[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == ':')
    };
    for (i, _) in source.match_indices("crate") {
        if word_before(i) {
            continue; // `$crate`, `my_crate`, or inside a path
        }
        let rest = &source[i + "crate".len()..];
        if let Some(rest) = rest.strip_prefix("::") {
            if let Some(group) = rest.strip_prefix('{') {
                found.extend(group_heads(group));
            } else {
                found.insert(ident(rest));
            }
        } else if rest.trim_start().starts_with("as ") {
            found.insert("crate as".to_string());
        }
    }
    // `super::super::x` from backup/restore/stage climbs to the root at the third `super`.
    for (i, _) in source.match_indices("super::") {
        if word_before(i) {
            continue;
        }
        let mut rest = &source[i..];
        let mut climbs = 0;
        while let Some(after) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = after;
        }
        if climbs >= module.len() {
            if let Some(group) = rest.strip_prefix('{') {
                found.extend(group_heads(group));
            } else {
                found.insert(ident(rest));
            }
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

/// As `imports_in`, for a file directly under a top-level module.
fn imports(source: &str) -> BTreeSet<String> {
    imports_in(source, &["m".to_string(), "f".to_string()])
}

/// The module path of a source file: `src/a.rs` and `src/a/mod.rs` → `[a]`,
/// `src/a/b.rs` → `[a, b]`.
fn module_path(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root().join("src")).unwrap();
    let mut path: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|p| p == "mod") {
        path.pop();
    }
    path
}

/// `module → modules it imports`, from non-test code.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let known = modules();
    let mut graph = BTreeMap::new();
    for module in &known {
        let mut files = Vec::new();
        let dir = root().join("src").join(module);
        rust_files(
            &if dir.is_dir() {
                dir
            } else {
                root().join("src").join(format!("{module}.rs"))
            },
            &mut files,
        );
        let mut uses = BTreeSet::new();
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            uses.extend(imports_in(&without_tests(&source), &module_path(&file)));
        }
        assert!(
            !uses.contains("crate as"),
            "src/{module} renames the crate (`crate as …`), which hides what it imports"
        );
        uses.retain(|m| m != module && known.contains(m));
        graph.insert(module.clone(), uses);
    }
    graph
}

#[test]
fn every_module_is_in_exactly_one_layer() {
    let layers = layers();
    let modules = modules();
    let unlisted: Vec<&String> = modules
        .iter()
        .filter(|m| !layers.contains_key(*m))
        .collect();
    let gone: Vec<&String> = layers.keys().filter(|m| !modules.contains(*m)).collect();
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "ARCHITECTURE.md's layer table is out of date: modules in src/ but not in the table: \
         {unlisted:?}; in the table but not in src/: {gone:?}"
    );
}

#[test]
fn imports_point_down_or_across_never_up() {
    let layers = layers();
    let mut upward = Vec::new();
    for (module, uses) in graph() {
        let Some(&mine) = layers.get(&module) else {
            continue; // the test above names it
        };
        for used in uses {
            if let Some(&theirs) = layers.get(&used)
                && theirs > mine
            {
                upward.push(format!(
                    "{module} (layer {mine}) imports {used} (layer {theirs})"
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up a layer (move the thing needed down, or pass it in):\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let graph = graph();
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let circle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "modules import each other in a circle: {}",
            circle.unwrap_or_default().join(" → ")
        );
    }
}

#[test]
fn the_import_reader_sees_nested_groups_super_chains_and_strings() {
    let source = "use crate::{fsutil::{publish, Publish}, cli::x};\nlet u = \"http://a\"; crate::health::f();\n\
                  use super::super::report::y;\nuse super::z;\n/* crate::runbook */\nuse crate as c;\n";
    let found: Vec<String> = imports_in(&without_tests(source), &["engine".into(), "steps".into()])
        .into_iter()
        .collect();
    assert_eq!(found, ["cli", "crate as", "fsutil", "health", "report"]);
}

#[test]
fn the_import_reader_sees_groups_and_skips_tests() {
    let source = "use crate::{fsutil, redact::mask};\nfn f() { crate::model::round(1.0, 1); }\n\
                  #[cfg(test)]\nmod tests {\n    use crate::cli::x;\n    fn g() {}\n}\n\
                  #[cfg(test)]\nuse crate::runbook::y;\nuse $crate::engine::z;\n\
                  // see crate::health\n";
    let found: Vec<String> = imports(&without_tests(source)).into_iter().collect();
    assert_eq!(found, ["fsutil", "model", "redact"]);
}
