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

/// The source without its `#[cfg(test)]` items: from a `#[cfg(test)]` line, the next
/// item up to the matching closing brace (or `;`) is dropped.
fn without_tests(source: &str) -> String {
    let mut kept = String::new();
    // Comments name modules without importing them.
    let uncommented: Vec<&str> = source
        .lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect();
    let mut lines = uncommented.into_iter();
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

/// The top-level modules `source` names through `crate::NAME` or `crate::{NAME, …}`.
fn imports(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in source.match_indices("crate::") {
        let before = source[..i].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` or `my_crate::`
        }
        let rest = &source[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for name in group.split(',') {
                found.insert(ident(name.trim()));
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|name| !name.is_empty());
    found
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
            uses.extend(imports(&without_tests(&source)));
        }
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
fn the_import_reader_sees_groups_and_skips_tests() {
    let source = "use crate::{fsutil, redact::mask};\nfn f() { crate::model::round(1.0, 1); }\n\
                  #[cfg(test)]\nmod tests {\n    use crate::cli::x;\n    fn g() {}\n}\n\
                  #[cfg(test)]\nuse crate::runbook::y;\nuse $crate::engine::z;\n\
                  // see crate::health\n";
    let found: Vec<String> = imports(&without_tests(source)).into_iter().collect();
    assert_eq!(found, ["fsutil", "model", "redact"]);
}
