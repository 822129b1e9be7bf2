//! The docs speak of the project as it is: no reference to a tracker the
//! reader cannot see (an issue by its number, or as "this" one), in the
//! docs, the code's comments, the tests and the scripts.

use std::path::{Path, PathBuf};

/// The files a reader meets: the docs, the sources, the tests, the scripts.
fn readable_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.')
                    && !["target", "node_modules", "build", "results", "__pycache__"]
                        .contains(&name.as_str())
                {
                    walk(&path, found);
                }
            } else if ["rs", "md", "py", "sql", "toml", "yaml", "mjs", "css"]
                .iter()
                .any(|e| name.ends_with(&format!(".{e}")))
                || path.parent().is_some_and(|p| p.ends_with("scripts"))
            {
                found.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in ["src", "tests", "docs", "scripts", "migrations", "bench"] {
        walk(&root.join(dir), &mut found);
    }
    for file in [
        "README.md",
        "CONTRIBUTING.md",
        "wrangler.toml",
        "Cargo.toml",
        "openapi.yaml",
        "schema.sql",
        ".dev.vars.example",
    ] {
        found.push(root.join(file));
    }
    found.retain(|p| p.exists());
    found
}

#[test]
fn nothing_speaks_of_a_tracker_the_reader_cannot_see() {
    // Spelled in parts, so that this file does not match itself.
    let word = ["iss", "ue"].concat();
    let mut found = Vec::new();
    let files = readable_files();
    assert!(files.len() > 50, "the walk found the project's files");
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .to_lowercase();
        for (n, line) in text.lines().enumerate() {
            let numbered = line
                .match_indices(&format!("{word} "))
                .any(|(i, m)| line[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
                || line
                    .match_indices(&format!("{word}s "))
                    .any(|(i, m)| line[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()));
            if numbered || line.contains(&format!("this {word}")) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
