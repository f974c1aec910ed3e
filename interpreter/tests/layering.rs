//! The interpreter's modules import one another without a circle, so that
//! each can be understood (and changed) on top of the ones below it.
//! Reads the sources: an import is a `crate::<module>` path outside a
//! comment; a module's files are `src/<module>.rs` or `src/<module>/*.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module and the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let module = path.file_name().unwrap().to_string_lossy().into_owned();
            for inner in std::fs::read_dir(&path).unwrap().flatten() {
                files.push((module.clone(), inner.path()));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            files.push((module, path));
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                // `crate::x::` is a module; `crate::f(` or `crate::T` is not.
                if !name.is_empty() && rest[name.len()..].starts_with("::") && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph.remove("lib");
    graph
}

/// The modules on or behind an import circle: peels off modules that
/// import nothing left until none can go.
fn in_circles(mut left: BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    loop {
        let free: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| m.clone())
            .collect();
        if free.is_empty() {
            break;
        }
        for m in free {
            left.remove(&m);
        }
    }
    left
}

#[test]
fn the_modules_import_one_another_without_a_circle() {
    let graph = graph();
    assert!(graph.contains_key("interpreter") && graph.contains_key("protocol"));
    let left = in_circles(graph);
    assert!(left.is_empty(), "modules in an import circle: {left:#?}");
}

#[test]
fn the_layering_check_sees_a_circle() {
    // The check above is worth something only if it finds a circle: the
    // graph it reads has edges, and adding the edge back from a leaf to
    // the interpreter would close one.
    let mut graph = graph();
    assert!(graph["interpreter"].contains("protocol"));
    graph
        .get_mut("protocol")
        .unwrap()
        .insert("interpreter".to_owned());
    let left = in_circles(graph);
    assert!(left.contains_key("interpreter") && left.contains_key("protocol"));
}
