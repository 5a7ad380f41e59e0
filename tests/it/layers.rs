//! The house has no import cycle: between the top-level modules (the layers), nor
//! between the sibling files of any module directory. A module's `mod.rs` is its
//! façade: its children may use what it declares, and it may re-export them.
//!
//! References are read from the source text: `crate::a::b`, `crate::a::{b, c}`,
//! `super::x` and `super::{x, y}` (inline `#[cfg(test)] mod tests` blocks excluded).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every file of `src/` as its module path (`src/admin/auth.rs` → `admin::auth`).
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Module, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let mut module = prefix.to_vec();
        if path.is_dir() {
            module.push(name);
            modules(&path, &module, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            if !["mod", "lib", "main"].contains(&name.as_str()) {
                module.push(name);
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text
                .split("#[cfg(test)]\nmod tests {")
                .next()
                .unwrap()
                .to_string();
            out.insert(module, text);
        }
    }
}

/// The deepest known module a path points into.
fn resolve(path: &[String], known: &BTreeMap<Module, String>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| known.contains_key(m))
        .unwrap_or_default()
}

/// `a::b::{c, d::e}` → `a::b::c`, `a::b::d::e`; `a::b` → `a::b`.
fn expand(rest: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| s.chars().all(|c| c.is_alphanumeric() || c == '_') && !s.is_empty();
    let (head, group) = match rest.strip_prefix('{') {
        Some(group) => ("", group.split('}').next().unwrap_or("")),
        None => match rest.split_once("::{") {
            Some((head, group)) if !head.contains([' ', ';', '(', '\n']) => {
                (head, group.split('}').next().unwrap_or(""))
            }
            _ => (rest, ""),
        },
    };
    let head: Vec<String> = head
        .split("::")
        .take_while(|s| ident(s))
        .map(String::from)
        .collect();
    if group.is_empty() {
        return vec![head];
    }
    group
        .split(',')
        .map(|item| {
            let first = item
                .trim()
                .split("::")
                .next()
                .unwrap_or("")
                .split(' ')
                .next()
                .unwrap_or("");
            let mut path = head.clone();
            if ident(first) {
                path.push(first.to_string());
            }
            path
        })
        .collect()
}

/// The modules a file refers to.
fn references(module: &Module, text: &str, known: &BTreeMap<Module, String>) -> BTreeSet<Module> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        for path in expand(&text[at + "crate::".len()..]) {
            out.insert(resolve(&path, known));
        }
    }
    for (at, _) in text.match_indices("super::") {
        if text[..at].ends_with("super::") {
            continue;
        }
        let mut rest = &text[at..];
        let mut base = module.clone();
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        }
        for path in expand(rest) {
            let mut full = base.clone();
            full.extend(path);
            out.insert(resolve(&full, known));
        }
    }
    out.remove(module);
    out
}

/// A cycle of the graph, if it has one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut known = BTreeMap::new();
    modules(&src, &[], &mut known);
    let dirs: BTreeSet<Module> = known
        .keys()
        .filter(|m| !m.is_empty())
        .map(|m| m[..m.len() - 1].to_vec())
        .collect();
    let mut edges: Vec<(Module, Module)> = Vec::new();
    for (module, text) in &known {
        for target in references(module, text, &known) {
            edges.push((module.clone(), target));
        }
    }
    assert!(
        edges.len() > 50,
        "the references were read ({} edges)",
        edges.len()
    );
    // Each directory's children (the top level is the crate root's), grandchildren
    // folded into their child.
    for dir in &dirs {
        let child = |m: &Module| {
            (m.len() > dir.len() && m[..dir.len()] == dir[..]).then(|| m[dir.len()].clone())
        };
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in &edges {
            if let (Some(a), Some(b)) = (child(from), child(to)) {
                if a != b {
                    graph.entry(a).or_default().insert(b);
                }
            }
        }
        if let Some(found) = cycle(&graph) {
            panic!(
                "import cycle in `crate::{}`: {}",
                dir.join("::"),
                found.join(" → ")
            );
        }
    }
}

#[test]
fn the_check_sees_a_cycle_through_braces_and_super() {
    let mut known = BTreeMap::new();
    let module = |p: &str| p.split("::").map(String::from).collect::<Module>();
    known.insert(module("admin"), String::new());
    known.insert(
        module("admin::openapi"),
        "use super::{workspaces::create};".into(),
    );
    known.insert(
        module("admin::workspaces"),
        "use crate::admin::openapi::Body;".into(),
    );
    let a = references(
        &module("admin::openapi"),
        &known[&module("admin::openapi")],
        &known,
    );
    let b = references(
        &module("admin::workspaces"),
        &known[&module("admin::workspaces")],
        &known,
    );
    assert_eq!(a, BTreeSet::from([module("admin::workspaces")]));
    assert_eq!(b, BTreeSet::from([module("admin::openapi")]));
    let graph = BTreeMap::from([
        (
            "openapi".to_string(),
            BTreeSet::from(["workspaces".to_string()]),
        ),
        (
            "workspaces".to_string(),
            BTreeSet::from(["openapi".to_string()]),
        ),
    ]);
    assert!(cycle(&graph).is_some());
}
