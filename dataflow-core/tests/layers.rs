//! The layering check: modules of `dataflow-core` import downward only.
//!
//! The layers, lowest first, are listed in [`LAYERS`] (and drawn in
//! `docs/architecture.md`). A module may import from its own top-level
//! module and from lower layers, never from a higher layer nor from another
//! module of its own layer, and no two modules (files) may import each other
//! in a cycle. A parent module re-exporting its children (`pub use
//! child::Item`) is naming, not a dependency, and is not counted.
//!
//! The check reads the `crate::…`, `super::…` and `self::…` paths of every
//! file under `src/` (outside comments, strings and `#[cfg(test)]` parts),
//! so it needs no build of the crate; `.ci/run` runs it first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first; each lists its top-level modules.
const LAYERS: &[(&str, &[&str])] = &[
    ("stream types: errors, elements, batches, barriers, watermarks", &["error", "element"]),
    ("time: clocks, watermark strategies and combining, timers", &["time"]),
    ("operators: the operator model, keyed state access, built-ins", &["operator"]),
    ("windows and connectors", &["window", "connectors"]),
    ("graph: logical graph, partitioning, physical plan", &["graph"]),
    ("checkpoint: barriers handling, coordinator, storage, savepoints", &["checkpoint"]),
    ("runtime: exchange, tasks, building and running a job", &["runtime"]),
    ("api: environment and typed streams", &["api"]),
];

type Module = Vec<String>;

/// Source text with comments, strings and characters blanked out.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, s: &[u8]| out.extend(s.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
    while i < b.len() {
        let rest = &b[i..];
        let end = if rest.starts_with(b"//") {
            i + rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            let mut j = i;
            loop {
                if j + 1 >= b.len() {
                    break b.len();
                }
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break j;
                    }
                } else {
                    j += 1;
                }
            }
        } else if rest.starts_with(b"r\"") || rest.starts_with(b"r#") || rest.starts_with(b"br\"") {
            let start = if rest[0] == b'b' { 2 } else { 1 };
            let hashes = rest[start..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(start + hashes) != Some(&b'"')
                || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            {
                out.push(b[i]);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            let body = i + start + hashes + 1;
            b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| body + p + close.len())
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(b.len())
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\u{1F600}'), or a lifetime.
            if rest.get(1) == Some(&b'\\') {
                i + 2 + rest[2..].iter().position(|&c| c == b'\'').map_or(rest.len() - 2, |p| p + 1)
            } else if let Some(len) = std::str::from_utf8(&rest[1..rest.len().min(6)])
                .ok()
                .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(2)]).ok())
                .and_then(|s| s.chars().next())
                .map(char::len_utf8)
                .filter(|&len| rest.get(1 + len) == Some(&b'\''))
            {
                i + 2 + len
            } else {
                out.push(b'\'');
                i += 1;
                continue;
            }
        } else {
            out.push(b[i]);
            i += 1;
            continue;
        };
        blank(&mut out, &b[i..end]);
        i = end;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every path a `use` tree or an inline path starting at `at` names, as
/// lists of segments (`crate::a::{b, c::D}` gives `[a, b]` and `[a, c, D]`).
fn paths_at(s: &[u8], mut at: usize, prefix: Vec<String>) -> Vec<Vec<String>> {
    let mut path = prefix;
    loop {
        while at < s.len() && s[at].is_ascii_whitespace() {
            at += 1;
        }
        if at < s.len() && s[at] == b'{' {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut start = at + 1;
            let mut j = at;
            while j < s.len() {
                match s[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            out.extend(paths_at(s, start, path.clone()));
                            break;
                        }
                    }
                    b',' if depth == 1 => {
                        out.extend(paths_at(s, start, path.clone()));
                        start = j + 1;
                    }
                    _ => {}
                }
                j += 1;
            }
            return out;
        }
        let end = at + s[at..].iter().take_while(|&&c| is_ident(c)).count();
        if end == at {
            return if path.is_empty() { vec![] } else { vec![path] };
        }
        path.push(String::from_utf8_lossy(&s[at..end]).into_owned());
        at = end;
        if s[at..].starts_with(b"::") {
            at += 2;
        } else {
            return vec![path];
        }
    }
}

/// One file's imports: each named path and whether a `pub use` names it.
fn imports(code: &str) -> Vec<(Vec<String>, bool)> {
    let s = code.as_bytes();
    let mut out = Vec::new();
    // `use` statements: their ranges and whether they re-export.
    let mut uses = Vec::new();
    let mut i = 0;
    while let Some(p) = code[i..].find("use ") {
        let at = i + p;
        i = at + 4;
        if at > 0 && is_ident(s[at - 1]) {
            continue;
        }
        let before = code[..at].trim_end();
        let public = before.ends_with("pub")
            || (before.ends_with(')')
                && before
                    .rfind("pub(")
                    .is_some_and(|q| before[q..].find(')').is_some_and(|c| q + c + 1 == before.len())));
        let end = code[at..].find(';').map_or(code.len(), |e| at + e);
        uses.push((at + 4, end, public));
    }
    let in_pub_use = |at: usize| uses.iter().any(|&(a, b, p)| p && a <= at && at < b);
    for (a, _, public) in &uses {
        // A `use` tree that does not start with crate/super/self: relative
        // to the module (a child module) or an external crate.
        for path in paths_at(s, *a, vec![]) {
            if !matches!(path[0].as_str(), "crate" | "super" | "self") {
                out.push((path, *public));
            }
        }
    }
    for key in ["crate::", "super::", "self::"] {
        let mut i = 0;
        while let Some(p) = code[i..].find(key) {
            let at = i + p;
            i = at + key.len();
            if at > 0 && (is_ident(s[at - 1]) || (s[at - 1] == b':' && key != "crate::")) {
                continue;
            }
            let head = key.trim_end_matches(':').to_string();
            for path in paths_at(s, at + key.len(), vec![head]) {
                out.push((path, in_pub_use(at)));
            }
        }
    }
    out
}

/// Resolves `path` named in module `from` to the module it imports from.
fn resolve(path: &[String], from: &Module, modules: &BTreeSet<Module>) -> Option<Module> {
    let mut base: Module;
    let mut rest = path;
    match path[0].as_str() {
        "crate" => {
            base = vec![];
            rest = &path[1..];
        }
        "self" | "super" => {
            base = from.clone();
            while let Some(seg) = rest.first() {
                match seg.as_str() {
                    "self" => {}
                    "super" => {
                        base.pop()?;
                    }
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => {
            let mut child = from.clone();
            child.push(path[0].clone());
            if !modules.contains(&child) {
                return None; // an external crate or a local item
            }
            base = from.clone();
        }
    }
    for seg in rest {
        let mut next = base.clone();
        next.push(seg.clone());
        if modules.contains(&next) {
            base = next;
        } else {
            break;
        }
    }
    Some(base)
}

fn layer_of(module: &Module) -> Option<usize> {
    let top = module.first()?;
    LAYERS.iter().position(|(_, mods)| mods.contains(&top.as_str()))
}

fn show(m: &Module) -> String {
    if m.is_empty() { "crate".into() } else { m.join("::") }
}

/// The module a file under `src/` defines.
fn module_of(file: &str) -> Module {
    let file = file.trim_end_matches(".rs");
    let mut segs: Module = file.split('/').map(String::from).collect();
    if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
        segs.pop();
    }
    segs
}

/// Every layering violation and cycle among `files` (path under `src/` →
/// source text), as readable lines.
fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let modules: BTreeSet<Module> = files.keys().map(|f| module_of(f)).collect();
    let mut errors = Vec::new();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (file, src) in files {
        let from = module_of(file);
        // Unit tests (at the end of a file) may reach anywhere.
        let src = src.find("#[cfg(test)]").map_or(src.as_str(), |t| &src[..t]);
        for (path, reexport) in imports(&code_only(src)) {
            let Some(to) = resolve(&path, &from, &modules) else { continue };
            if to == from || (reexport && to.starts_with(&from)) {
                continue;
            }
            if to.is_empty() && !from.is_empty() {
                errors.push(format!(
                    "{file}: `{}` goes through the crate root; name the module it lives in",
                    path.join("::")
                ));
                continue;
            }
            if let (Some(lf), Some(lt)) = (layer_of(&from), layer_of(&to))
                && from[0] != to[0]
                && lt >= lf
            {
                errors.push(format!(
                    "{file}: `{}` imports from `{}`, which is {} layer ({}) than `{}` ({})",
                    path.join("::"),
                    show(&to),
                    if lt == lf { "the same" } else { "a higher" },
                    LAYERS[lt].0,
                    from[0],
                    LAYERS[lf].0,
                ));
            }
            edges.entry(from.clone()).or_default().insert(to);
        }
    }
    errors.dedup();
    for cycle in cycles(&edges) {
        let names: Vec<String> = cycle.iter().map(show).collect();
        errors.push(format!("import cycle between modules: {}", names.join(" <-> ")));
    }
    errors
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, (usize, usize)>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(st: &mut State<'a>, v: &'a Module) {
        let n = st.index.len();
        st.index.insert(v, (n, n));
        st.stack.push(v);
        st.on_stack.insert(v);
        for w in st.edges.get(v).into_iter().flatten() {
            if !st.index.contains_key(w) {
                visit(st, w);
                let low = st.index[w].1.min(st.index[v].1);
                st.index.get_mut(v).expect("visited").1 = low;
            } else if st.on_stack.contains(w) {
                let low = st.index[w].0.min(st.index[v].1);
                st.index.get_mut(v).expect("visited").1 = low;
            }
        }
        if st.index[v].0 == st.index[v].1 {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on_stack.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                st.out.push(comp);
            }
        }
    }
    let mut st = State { edges, index: BTreeMap::new(), stack: vec![], on_stack: BTreeSet::new(), out: vec![] };
    for v in edges.keys() {
        if !st.index.contains_key(v) {
            visit(&mut st, v);
        }
    }
    st.out
}

fn read_tree(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src").to_string_lossy().replace('\\', "/");
            out.insert(rel, std::fs::read_to_string(&path).expect("utf-8 source"));
        }
    }
}

#[test]
fn modules_import_downward_only_and_without_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    for module in files.keys().map(|f| module_of(f)) {
        if let Some(top) = module.first() {
            assert!(layer_of(&module).is_some(), "top-level module `{top}` is in no layer: add it to LAYERS");
        }
    }
    let errors = violations(&files);
    assert!(errors.is_empty(), "layering violations:\n  {}", errors.join("\n  "));
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect()
}

#[test]
fn the_check_catches_an_upward_import() {
    let files = tree(&[
        ("lib.rs", "pub mod element; mod runtime;"),
        ("element/mod.rs", "use crate::runtime::task::Thing;\n"),
        ("runtime/mod.rs", "pub(crate) mod task;"),
        ("runtime/task.rs", "use crate::element::Data;"),
    ]);
    let errors = violations(&files);
    assert!(errors.iter().any(|e| e.contains("element/mod.rs") && e.contains("a higher layer")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("import cycle")), "{errors:?}");
}

#[test]
fn the_check_reads_use_trees_inline_paths_and_super() {
    let files = tree(&[
        ("lib.rs", "mod error; mod time; mod operator;"),
        ("error.rs", ""),
        ("time/mod.rs", "mod a; pub use a::X;"),
        ("time/a.rs", "use crate::{error::E, operator::{keyed::{K}}};"),
        ("operator/mod.rs", "mod keyed; mod b;"),
        ("operator/keyed.rs", "fn f() { super::b::g() }"),
        ("operator/b.rs", "// crate::api::Nothing in a comment\nfn g() { let _ = \"crate::api::X\"; }"),
    ]);
    let errors = violations(&files);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("time/a.rs: `crate::operator::keyed::K` imports from `operator::keyed`"));
    // The parent's re-export of its child is not a dependency.
    let ok = tree(&[
        ("lib.rs", "mod time;"),
        ("time/mod.rs", "mod a; pub use a::X; pub struct T;"),
        ("time/a.rs", "use super::T;"),
    ]);
    assert_eq!(violations(&ok), Vec::<String>::new());
    // A parent that uses its child's item while the child uses the parent is a cycle.
    let cyc = tree(&[
        ("lib.rs", "mod time;"),
        ("time/mod.rs", "mod a; use a::X; pub struct T;"),
        ("time/a.rs", "use super::T;"),
    ]);
    assert!(violations(&cyc)[0].contains("import cycle between modules: time <-> time::a"));
}

#[test]
fn characters_and_lifetimes_do_not_confuse_the_reader() {
    let code = code_only("fn f<'a>(x: &'a str) -> char { let q = '\"'; crate::x::y(q) }");
    assert!(code.contains("crate::x::y"), "{code}");
    assert!(!code.contains('"'), "{code}");
}
