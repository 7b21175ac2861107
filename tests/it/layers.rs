//! The house is one-way: a module of the library uses only the modules `src/lib.rs` declares
//! before it (the order of the flow), and only the command-line layer knows clap.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// The top-level modules in the order `src/lib.rs` declares them.
fn declared_order() -> Vec<String> {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).expect("src/lib.rs");
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').trim().to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (doc links name modules without using them).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string (a URL) is rare in this code base and harmless to cut.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a file's code names through `crate::`.
fn used_modules(code: &str) -> Vec<String> {
    let mut out = vec![];
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c}`: the first segment of each item at the top level.
            let mut depth = 0;
            let mut start = 0;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident_at(group[start..k].trim()).to_string());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident_at(group[start..k].trim()).to_string());
                        start = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident_at(rest).to_string());
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

#[test]
fn no_module_uses_one_the_flow_puts_after_it() {
    let order = declared_order();
    assert!(
        order.len() > 10,
        "src/lib.rs declares too few modules: {order:?}"
    );
    let rank: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut files = vec![];
    rust_files(Path::new(SRC), &mut files);
    let mut violations = vec![];
    for f in &files {
        let rel = f.strip_prefix(SRC).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a path")
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let own = *rank
            .get(top.as_str())
            .unwrap_or_else(|| panic!("{} is not declared in src/lib.rs", rel.display()));
        let code = code_of(&std::fs::read_to_string(f).expect("read"));
        for m in used_modules(&code) {
            match rank.get(m.as_str()) {
                Some(&r) if r <= own => {}
                Some(_) => violations.push(format!("{} uses crate::{m}", rel.display())),
                None => violations.push(format!("{} names unknown crate::{m}", rel.display())),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "modules using ones the flow puts after them (order: {}):\n{}",
        order.join(" → "),
        violations.join("\n")
    );
}

#[test]
fn only_the_command_line_layer_knows_clap() {
    let mut files = vec![];
    rust_files(Path::new(SRC), &mut files);
    let cli = Path::new(SRC).join("cli");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(&cli))
        .filter(|f| code_of(&std::fs::read_to_string(f).expect("read")).contains("clap"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "library files using clap: {offenders:?}"
    );
}

#[test]
fn the_scanner_finds_grouped_and_plain_uses() {
    let code =
        "use crate::{store::{Corpus, tables}, error::Result};\nlet f = crate::metrics::register;";
    assert_eq!(used_modules(code), ["store", "error", "metrics"]);
    assert!(used_modules(&code_of("// see crate::cli\nlet x = 1;")).is_empty());
}
