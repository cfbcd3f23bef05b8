//! The crate's modules form layers: no module imports one that imports it back, directly or
//! through others. This test reads `src/` as Rust tokens (comments and string literals left
//! out) and resolves every path that starts at `crate`, `super` or `self` — in `use` lines,
//! grouped imports (`use crate::{a, b::c}`, on one line or several) and paths in code alike —
//! against the module the file and its inline `mod` blocks declare, builds the import graph of
//! the top-level modules and fails naming a cycle, and the file and line of each import in it,
//! if there is one. The layering it checks is drawn in the crate docs (`src/lib.rs`); a new
//! module that is not listed there fails here too.

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

/// The module a file is (`src/store/s3/check.rs` → `store::s3::check`, `src/store/mod.rs` →
/// `store`); `None` for the crate root and the binary.
fn module_path_of(file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut path: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = path.pop()?;
    let stem = last.trim_end_matches(".rs");
    if path.is_empty() && (stem == "lib" || stem == "main") {
        return None;
    }
    if stem != "mod" {
        path.push(stem.to_string());
    }
    Some(path)
}

/// A token of Rust source, with the line it stands on.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// The tokens of `text`, comments (line, block, doc) and literals (strings, raw strings,
/// characters, numbers) left out.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips a quoted literal whose opening quote is at `i`, escapes honoured.
    let quoted = |i: &mut usize, line: &mut usize, quote: char| {
        *i += 1;
        while *i < c.len() && c[*i] != quote {
            if c[*i] == '\\' {
                *i += 1;
            }
            if *i < c.len() && c[*i] == '\n' {
                *line += 1;
            }
            *i += 1;
        }
        *i += 1;
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            quoted(&mut i, &mut line, '"');
        } else if ch == '\'' {
            // A character literal ('x', '\n', '"') or a lifetime ('a).
            if next == Some('\\') || c.get(i + 2) == Some(&'\'') {
                quoted(&mut i, &mut line, '\'');
            } else {
                i += 1;
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let hashes = c[i..].iter().take_while(|&&h| h == '#').count();
            match (word.as_str(), c.get(i + hashes)) {
                // Raw strings: r"…", r#"…"#, br"…", cr#"…"#.
                ("r" | "br" | "cr", Some('"')) => {
                    i += hashes + 1;
                    let close: Vec<char> = format!("\"{}", "#".repeat(hashes)).chars().collect();
                    while i < c.len() && !c[i..].starts_with(&close) {
                        if c[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                    i += close.len();
                }
                // Byte and C strings, byte characters: b"…", c"…", b'x'.
                ("b" | "c", Some('"')) if hashes == 0 => quoted(&mut i, &mut line, '"'),
                ("b", Some('\'')) if hashes == 0 => quoted(&mut i, &mut line, '\''),
                // A raw identifier: r#type.
                ("r", _) if hashes == 1 => {
                    let start = i + 1;
                    i = start;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                    out.push((Tok::Ident(c[start..i].iter().collect()), line));
                }
                _ => out.push((Tok::Ident(word), line)),
            }
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The top-level modules the paths in `text` name, each with the first line naming it, for a
/// file that is module `module` (`["store", "s3", "check"]`). Every path that starts at
/// `crate`, `super` or `self` is resolved to the crate root, `super` against `module` and the
/// inline `mod name { … }` blocks around it; grouped imports name every module in the group.
/// A module's own name is among them when it names its own items. A glob of the crate root
/// (`crate::*`, `super::*` in a top-level file) hides what it imports and is named `*`.
fn named_modules(module: &[&str], text: &str) -> BTreeMap<String, usize> {
    let toks = tokens(text);
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    // One entry per open brace: the inline module it opens, if it does.
    let mut braces: Vec<Option<String>> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let here: Vec<String> = module
            .iter()
            .map(|s| s.to_string())
            .chain(braces.iter().flatten().cloned())
            .collect();
        match &toks[i].0 {
            Tok::Punct('{') => {
                let name = match (i >= 2).then(|| (&toks[i - 2].0, &toks[i - 1].0)) {
                    Some((Tok::Ident(m), Tok::Ident(n))) if m == "mod" => Some(n.clone()),
                    _ => None,
                };
                braces.push(name);
                i += 1;
            }
            Tok::Punct('}') => {
                braces.pop();
                i += 1;
            }
            Tok::Ident(w)
                if matches!(w.as_str(), "crate" | "super" | "self")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep)
                    && (i == 0 || toks[i - 1].0 != Tok::PathSep) =>
            {
                let mut base = if w == "crate" {
                    Vec::new()
                } else {
                    here.clone()
                };
                if w == "super" {
                    assert!(
                        base.pop().is_some(),
                        "`super` above the crate root in {here:?}"
                    );
                }
                i = use_tree(&toks, i + 2, base, &mut out);
            }
            _ => i += 1,
        }
    }
    out
}

/// Reads the rest of a path or use tree from `toks[i]` on, the part before it resolved to
/// `prefix` (from the crate root); records the top-level module each resolved path names and
/// returns where the tree ends.
fn use_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut BTreeMap<String, usize>,
) -> usize {
    fn record(out: &mut BTreeMap<String, usize>, prefix: &[String], name: &str, line: usize) {
        let top = prefix.first().map(String::as_str).unwrap_or(name);
        out.entry(top.to_string()).or_insert(line);
    }
    loop {
        match toks.get(i) {
            Some((Tok::Ident(w), _)) if w == "super" && prefix.is_empty() => {
                panic!("`super` above the crate root")
            }
            Some((Tok::Ident(w), _)) if w == "super" => {
                prefix.pop();
            }
            Some((Tok::Ident(w), _)) if w == "self" => {}
            Some((Tok::Ident(w), line)) => record(out, &prefix, w, *line),
            Some((Tok::Punct('*'), line)) => {
                record(out, &prefix, "*", *line);
                return i + 1;
            }
            Some((Tok::Punct('{'), _)) => {
                // A group: each member is a tree of its own under `prefix`.
                i += 1;
                loop {
                    match toks.get(i) {
                        None => return i,
                        Some((Tok::Punct('}'), _)) => return i + 1,
                        Some((Tok::Punct(','), _)) => i += 1,
                        Some(_) => {
                            i = use_tree(toks, i, prefix.clone(), out);
                            // Past `as name` or anything else up to the next member.
                            while let Some((t, _)) = toks.get(i) {
                                if matches!(t, Tok::Punct(',' | '}')) {
                                    break;
                                }
                                i += 1;
                            }
                        }
                    }
                }
            }
            _ => return i,
        }
        let Some((Tok::Ident(w), _)) = toks.get(i) else {
            unreachable!()
        };
        if w != "super" && w != "self" {
            prefix.push(w.clone());
        }
        if toks.get(i + 1).map(|t| &t.0) != Some(&Tok::PathSep) {
            return i + 1;
        }
        i += 2;
    }
}

/// The import graph of the top-level modules, and where (`file:line`) each import is first
/// written.
struct Imports {
    graph: BTreeMap<String, BTreeSet<String>>,
    sites: BTreeMap<(String, String), String>,
}

fn import_graph() -> Imports {
    let mut imports = Imports {
        graph: BTreeMap::new(),
        sites: BTreeMap::new(),
    };
    let mut files = rust_files(&src());
    files.sort();
    for file in files {
        let Some(path) = module_path_of(&file) else {
            continue;
        };
        let module = path[0].clone();
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = imports.graph.entry(module.clone()).or_default();
        for (named, line) in named_modules(&path, &text) {
            if named != module {
                edges.insert(named.clone());
                let rel = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
                imports
                    .sites
                    .entry((module.clone(), named))
                    .or_insert_with(|| format!("{}:{line}", rel.display()));
            }
        }
    }
    imports
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
    let imports = import_graph();
    let graph = &imports.graph;
    assert!(graph.len() > 10, "read the crate's modules: {graph:?}");
    if let Some(cycle) = find_cycle(graph) {
        let sites: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let site = &imports.sites[&(w[0].clone(), w[1].clone())];
                format!("{} → {} at {site}", w[0], w[1])
            })
            .collect();
        panic!("import cycle: {}\n{}", cycle.join(" → "), sites.join("\n"));
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
    let imports = import_graph();
    let mut wrong = Vec::new();
    for (module, named) in &imports.graph {
        let here = row_of(module)
            .unwrap_or_else(|| panic!("module `{module}` is not in the layer table of src/lib.rs"));
        for import in named {
            let site = &imports.sites[&(module.clone(), import.clone())];
            match row_of(import) {
                None => wrong.push(format!(
                    "{site}: `{module}` imports `{import}`, which is not in the layer table"
                )),
                Some(there) if there <= here => wrong.push(format!(
                    "{site}: `{module}` (row {here}) imports `{import}` (row {there}): not a lower layer"
                )),
                Some(_) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_crate_docs_list_every_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for module in import_graph().graph.keys() {
        assert!(
            lib.contains(&format!("[`{module}`]")) || lib.contains(&format!("[{module}]")),
            "src/lib.rs does not describe module `{module}`"
        );
    }
}

/// The modules `text` names, as a file that is module `module` (`"store::s3::check"`).
fn named(module: &str, text: &str) -> Vec<String> {
    let path: Vec<&str> = module.split("::").collect();
    named_modules(&path, text).into_keys().collect()
}

#[test]
fn a_grouped_import_names_every_module_in_it_on_one_line_or_several() {
    assert_eq!(
        named("capture", "use crate::{delivery, release::x};"),
        ["delivery", "release"]
    );
    let spread = "use crate::{\n    delivery::{self, outbox},\n    release::x as y,\n    \
                  vocab::{Scope, Item},\n};\nfn f() {}\n";
    let found = named_modules(&["capture", "session"], spread);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        [
            ("delivery".to_string(), 2),
            ("release".to_string(), 3),
            ("vocab".to_string(), 4)
        ],
        "each module with the line that names it"
    );
    assert_eq!(
        named(
            "http",
            "use crate::{app::{Kiroku, self}, {consent, audit::Actor}};"
        ),
        ["app", "audit", "consent"],
        "groups in groups"
    );
}

#[test]
fn super_in_a_top_level_file_is_the_crate_root() {
    assert_eq!(
        named(
            "placement",
            "use super::consent::Ledger;\nfn f() { super::vocab::x(); }"
        ),
        ["consent", "vocab"]
    );
    assert_eq!(
        named("placement", "use super::{catalog, ids::CountryCode};"),
        ["catalog", "ids"]
    );
    assert_eq!(
        named("placement", "use super::*;"),
        ["*"],
        "a glob of the crate root is named, so it cannot pass unnoticed"
    );
}

#[test]
fn super_in_a_nested_file_resolves_against_its_module_path() {
    // src/store/s3/check.rs is store::s3::check: `super` is store::s3, `super::super` store.
    assert_eq!(
        named(
            "store::s3::check",
            "use super::client::x;\nuse super::super::spool::Spool;\nuse super::super::super::catalog::C;"
        ),
        ["catalog", "store"]
    );
    // src/analysis/mod.rs is analysis: `super` is the crate root.
    assert_eq!(named("analysis", "use super::release::Y;"), ["release"]);
    // Inline modules count: in `mod tests` of analysis::report, super::super is analysis.
    assert_eq!(
        named(
            "analysis::report",
            "mod tests {\n    use super::super::features::F;\n    use super::super::super::events::E;\n}\nuse super::super::seal::K;"
        ),
        ["analysis", "events", "seal"]
    );
}

#[test]
fn a_double_slash_inside_a_string_does_not_hide_the_rest_of_the_line() {
    assert_eq!(
        named(
            "bench",
            r#"let u = "https://example.invalid/x"; let k = crate::delivery::sign(u);"#
        ),
        ["delivery"]
    );
    assert_eq!(
        named(
            "bench",
            "let u = r#\"a \" // b\"#; let c = '\"'; crate::seal::open(u, c); // crate::http"
        ),
        ["seal"],
        "raw strings and character literals hold no comment either"
    );
}

#[test]
fn comments_and_strings_name_no_module() {
    let text = "//! See [`crate::http`].\n/// [`crate::cli`]\n// crate::node\n\
                /* crate::bench /* nested */ crate::capture */\n\
                let s = \"crate::delivery\"; let b = b\"crate::release\";\n\
                fn f<'a>(x: &'a str) -> &'a str { crate::util::g(x) }";
    assert_eq!(named("analysis", text), ["util"]);
}

#[test]
fn module_paths_follow_the_file_layout() {
    let m = |rel: &str| module_path_of(&src().join(rel));
    assert_eq!(m("store/s3/check.rs").unwrap(), ["store", "s3", "check"]);
    assert_eq!(m("store/mod.rs").unwrap(), ["store"]);
    assert_eq!(m("util/secret.rs").unwrap(), ["util", "secret"]);
    assert_eq!(m("placement.rs").unwrap(), ["placement"]);
    assert_eq!(m("lib.rs"), None);
}
