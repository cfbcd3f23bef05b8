//! The crate's modules form layers: no module imports one that imports it back, directly or
//! through others. This test reads `src/` as text (every `crate::<module>` a module's files
//! name, `use` lines and paths alike), builds the import graph of the top-level modules and
//! fails naming a cycle if there is one. The layering it checks is drawn in the crate docs
//! (`src/lib.rs`); a new module that is not listed there fails here too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The top-level module a file belongs to (`src/store/s3/check.rs` → `store`).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// The modules named as `crate::<name>` in `text`, comments left out (doc links name
/// modules above without importing them).
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src()) {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let imports = graph.entry(module.clone()).or_default();
        for named in named_modules(&text) {
            if named != module {
                imports.insert(named);
            }
        }
    }
    graph
}

/// A cycle through `graph`, if any, as the path that closes it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|n| n == node).unwrap();
                let mut cycle = path[from..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = import_graph();
    assert!(graph.len() > 10, "read the crate's modules: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" → "));
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle_through_three_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [("http", "app"), ("app", "consent"), ("consent", "http")] {
        graph.entry(a.into()).or_default().insert(b.into());
    }
    let cycle = find_cycle(&graph).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
}

/// The layer table drawn in the crate docs, highest row first: each row's module names.
fn documented_layers() -> Vec<Vec<String>> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let start = lib
        .find("//! ```text\n//! cli")
        .expect("the layer table in src/lib.rs");
    lib[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| {
            let row = l.trim_start_matches("//!").trim();
            let names = row.split("  ").next().unwrap_or("");
            names.split(", ").map(|n| n.trim().to_string()).collect()
        })
        .collect()
}

#[test]
fn every_module_imports_only_modules_in_lower_rows_of_the_documented_layers() {
    let layers = documented_layers();
    let row_of = |m: &str| layers.iter().position(|row| row.iter().any(|n| n == m));
    let graph = import_graph();
    for (module, imports) in &graph {
        let here = row_of(module)
            .unwrap_or_else(|| panic!("module `{module}` is not in the layer table of src/lib.rs"));
        for import in imports {
            let there = row_of(import).unwrap_or_else(|| {
                panic!("`{module}` imports `{import}`, which is not in the layer table")
            });
            assert!(
                there > here,
                "`{module}` (row {here}) imports `{import}` (row {there}): not a lower layer"
            );
        }
    }
}

#[test]
fn the_crate_docs_list_every_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for module in import_graph().keys() {
        assert!(
            lib.contains(&format!("[`{module}`]")) || lib.contains(&format!("[{module}]")),
            "src/lib.rs does not describe module `{module}`"
        );
    }
}
