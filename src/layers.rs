//! The module graph is one-way. This test reads every `crate::` path in the code (comments
//! aside) and fails on any arrow that is not in [`ALLOWED`], the list README "Architecture"
//! documents. A new arrow is a design decision: add it here and there, with its reason.

use std::collections::BTreeSet;
use std::path::Path;

/// Which top-level modules each module may name. Lower layers name nothing above them.
const ALLOWED: &[(&str, &[&str])] = &[
    // The pure core: money and ids below everything, then the two domains beside each other.
    ("money", &[]),
    ("ids", &[]),
    ("clock", &[]),
    ("proto", &[]),
    ("ledger", &["money", "ids"]),
    // Quote tokens name the tenant and account they were made for.
    ("pricing", &["money", "ids"]),
    ("auth", &[]),
    ("telemetry", &[]),
    // Config parses amounts and the pool limits the store takes.
    ("config", &["money", "store"]),
    // The only SQL: persists the domains (catalogs, key scopes) and reads the clock's shift.
    (
        "store",
        &["ledger", "pricing", "money", "ids", "auth", "clock"],
    ),
    // Use cases: the store and the domains; `proto` only for the descriptor pool that names
    // the fields of a reused idempotency key.
    (
        "service",
        &[
            "store",
            "ledger",
            "pricing",
            "money",
            "ids",
            "auth",
            "clock",
            "config",
            "proto",
            // Records its metrics: batch sizes, round trips, sweeps, the event reader's lag.
            "telemetry",
        ],
    ),
    // gRPC: the only layer that knows status codes; never the store.
    (
        "api",
        &[
            "service", "ledger", "pricing", "money", "ids", "auth", "config", "proto",
        ],
    ),
    // Wiring and tools above everything.
    (
        "app",
        &[
            "api",
            "service",
            "store",
            "config",
            "clock",
            "proto",
            "telemetry",
        ],
    ),
    ("bench", &["app", "config", "proto", "store"]),
    (
        "cli",
        &[
            "app", "auth", "bench", "clock", "config", "pricing", "service", "store",
        ],
    ),
];

fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::<module>` names on one line of code, comments left out.
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or_default();
    code.match_indices("crate::")
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .filter(|name: &String| !name.is_empty())
        .collect()
}

#[test]
fn every_arrow_between_modules_is_allowed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut unexpected = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("below src/");
        let from = module_of(relative);
        if matches!(from.as_str(), "lib" | "main" | "layers") {
            continue;
        }
        let allowed = ALLOWED
            .iter()
            .find(|(module, _)| *module == from)
            .unwrap_or_else(|| panic!("module `{from}` is missing from ALLOWED"))
            .1;
        let text = std::fs::read_to_string(file).expect("a source file");
        for line in text.lines() {
            for to in named_modules(line) {
                if to == from {
                    continue;
                }
                seen.insert((from.clone(), to.clone()));
                if !allowed.contains(&to.as_str()) {
                    unexpected.insert(format!("{} → {to}", relative.display()));
                }
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "arrows not in the allow-list: {unexpected:?}"
    );
    // The check must see the graph, or it proves nothing.
    assert!(seen.contains(&("api".to_owned(), "service".to_owned())));
}

#[test]
fn a_comment_names_no_module() {
    assert_eq!(named_modules("use crate::money::Credits;"), ["money"]);
    assert!(named_modules("// see crate::store").is_empty());
    assert_eq!(
        named_modules("fn f(x: crate::ledger::A) -> crate::ids::B"),
        ["ledger", "ids"]
    );
}
