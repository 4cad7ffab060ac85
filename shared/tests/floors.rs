//! ARCHITECTURE.md's floors, checked: every module of shared/src is on a
//! floor there, uses only modules on its own floor or below, and no
//! modules use each other in a circle. A change that moves a room must
//! move it in ARCHITECTURE.md too, or this test fails and names the edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules of `src`: a file `name.rs` or a directory `name/`, with the
/// text of every file in it (test modules cut off: tests may reach up).
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("shared/src") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|n| n.to_str()).expect("UTF-8 name").to_string();
        // lib.rs declares the modules; a data file is none.
        if name == "lib" || !(path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            continue;
        }
        let mut files = vec![path.clone()];
        if path.is_dir() {
            files = std::fs::read_dir(&path)
                .expect("module directory")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                // Test helpers may use anything.
                .filter(|p| !p.ends_with("tests.rs") && !p.ends_with("testing.rs"))
                .collect();
        }
        let mut text = String::new();
        for file in files {
            let body = std::fs::read_to_string(&file).expect("source");
            let code = body.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
            // Comments may name any module.
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                text.push_str(line);
                text.push('\n');
            }
        }
        out.insert(name, text);
    }
    out
}

/// The modules `text` names as `crate::NAME` or in `use crate::{NAME, ...}`.
fn uses(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(list) => list.split('}').next().unwrap_or_default().split(',').collect(),
            None => vec![rest],
        };
        for name in names {
            let name: String = name.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if known.contains(&name) {
                out.insert(name);
            }
        }
    }
    out
}

/// ARCHITECTURE.md's floors block: lines `N  module module/ ...`, nothing else.
fn floors(doc: &str) -> BTreeMap<String, u32> {
    let block = doc.split("### The library's floors").nth(1).expect("a floors section in ARCHITECTURE.md");
    let block = block.split("```text").nth(1).and_then(|b| b.split("```").next()).expect("a text block");
    let mut out = BTreeMap::new();
    for line in block.lines() {
        let mut words = line.split_whitespace();
        let Some(floor) = words.next().and_then(|w| w.parse::<u32>().ok()) else { continue };
        for word in words {
            out.insert(word.trim_end_matches('/').to_string(), floor);
        }
    }
    out
}

#[test]
fn floors_point_down_and_nothing_goes_round() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let floor = floors(&doc);
    let src: PathBuf = root.join("src");
    let modules = modules(&src);
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let mut problems = Vec::new();
    let mut graph = BTreeMap::new();
    for (name, text) in &modules {
        let Some(&own) = floor.get(name) else {
            problems.push(format!("{name} is on no floor of ARCHITECTURE.md"));
            continue;
        };
        let used: BTreeSet<String> = uses(text, &known).into_iter().filter(|u| u != name).collect();
        for u in &used {
            match floor.get(u) {
                Some(&f) if f > own => problems.push(format!("{name} (floor {own}) uses {u} (floor {f})")),
                _ => {}
            }
        }
        graph.insert(name.clone(), used);
    }
    for name in floor.keys() {
        if !known.contains(name) {
            problems.push(format!("ARCHITECTURE.md names {name}, which shared/src does not have"));
        }
    }
    // A circle: a module that reaches itself.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph[start].iter().collect();
        while let Some(m) = todo.pop() {
            if m == start {
                problems.push(format!("{start} reaches itself through the modules it uses"));
                break;
            }
            if seen.insert(m) {
                todo.extend(graph.get(m).into_iter().flatten());
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
