//! The layout's rules, checked on the source: only `edge` touches the
//! Workers runtime, the domain depends on nothing but itself and the error
//! type, and no two modules import each other, however indirectly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module under `src/` (`domain::email`, `edge`, ...) and its source.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, found: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
                    .unwrap();
                let name = rel.with_extension("").to_string_lossy().replace('/', "::");
                let name = name.strip_suffix("::mod").unwrap_or(&name).to_owned();
                if name != "lib" {
                    found.insert(name, std::fs::read_to_string(&path).unwrap());
                }
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut found,
    );
    found
}

/// The modules each module names through `crate::` paths, its own
/// submodules left out.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    modules
        .iter()
        .map(|(name, source)| {
            let used = source
                .split("crate::")
                .skip(1)
                .filter_map(|rest| {
                    let path: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    let parts: Vec<&str> = path.split("::").collect();
                    (1..=parts.len())
                        .rev()
                        .map(|n| parts[..n].join("::"))
                        .find(|m| modules.contains_key(m))
                })
                .filter(|m| m != name && !m.starts_with(&format!("{name}::")))
                .collect();
            (name.clone(), used)
        })
        .collect()
}

#[test]
fn the_module_graph_has_no_cycles() {
    let graph = imports(&modules());
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == m) {
            panic!("import cycle: {} -> {m}", path[at..].join(" -> "));
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_owned());
        for next in &graph[m] {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn only_edge_touches_the_workers_runtime() {
    for (name, source) in modules() {
        if name == "edge" || name.starts_with("edge::") {
            continue;
        }
        assert!(
            !source.contains("worker::") && !source.contains("use worker"),
            "{name} uses the `worker` crate"
        );
    }
}

#[test]
fn the_domain_depends_only_on_itself_and_the_error_type() {
    for (name, used) in imports(&modules()) {
        if name.starts_with("domain") {
            for m in used {
                assert!(
                    m.starts_with("domain") || m == "error",
                    "{name} imports {m}"
                );
            }
        }
    }
}
