//! The shape of the source tree: no file of more than 800 lines of non-test code, no function
//! of more than 150 lines. Big rooms and long functions are where the next change goes wrong.
//!
//! The measure is textual: a `#[cfg(test)]` item (a `mod tests` block) is not counted, and a
//! function runs from its `fn` line to the line that closes its body.

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 150;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The line with string and char literals and comments blanked, so braces inside them do not
/// count. `in_block` carries a `/* */` comment across lines; raw strings are rare enough in this
/// tree to be treated as plain strings.
fn code_only(line: &str, in_block: &mut bool) -> String {
    let b: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        if *in_block {
            if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                *in_block = false;
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        if in_str {
            if b[i] == '\\' {
                i += 2;
                continue;
            }
            if b[i] == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match b[i] {
            '/' if b.get(i + 1) == Some(&'/') => break,
            '/' if b.get(i + 1) == Some(&'*') => {
                *in_block = true;
                i += 2;
            }
            '"' => {
                in_str = true;
                i += 1;
            }
            '\'' => {
                // A char literal ('{', '\'', '\u{1F600}') or a lifetime ('a).
                if b.get(i + 1) == Some(&'\\') {
                    let mut j = i + 2;
                    while j < b.len() && b[j] != '\'' {
                        j += 1;
                    }
                    i = j + 1;
                } else if b.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

struct Shape {
    code_lines: usize,
    long_fns: Vec<(String, usize, usize)>,
    /// Every function: name, first line, length.
    fns: Vec<(String, usize, usize)>,
}

fn measure(text: &str) -> Shape {
    let lines: Vec<&str> = text.lines().collect();
    let mut in_block = false;
    let code: Vec<String> = lines.iter().map(|l| code_only(l, &mut in_block)).collect();
    let mut skip = vec![false; lines.len()];
    // Test modules: from `#[cfg(test)]` to the end of the item that follows it.
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with("#[cfg(test)]") {
            let end = item_end(&code, i);
            for s in &mut skip[i..=end] {
                *s = true;
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    let code_lines = lines
        .iter()
        .zip(&skip)
        .filter(|(l, s)| !**s && !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .count();
    let mut long_fns = Vec::new();
    let mut fns = Vec::new();
    for (i, c) in code.iter().enumerate() {
        if skip[i] {
            continue;
        }
        let t = c.trim_start();
        let is_fn = t.split_whitespace().take(6).any(|w| w == "fn")
            && !t.starts_with("//")
            && !t.contains("fn(");
        if !is_fn {
            continue;
        }
        let end = item_end(&code, i);
        // Declarations without a body (trait methods) end on their own line with `;`.
        let len = end - i + 1;
        let name = t
            .split("fn ")
            .nth(1)
            .unwrap_or("")
            .split(|ch: char| !ch.is_alphanumeric() && ch != '_')
            .next()
            .unwrap_or("")
            .to_string();
        if len > MAX_FN_LINES {
            long_fns.push((name.clone(), i + 1, len));
        }
        fns.push((name, i + 1, len));
    }
    Shape {
        code_lines,
        long_fns,
        fns,
    }
}

/// The last line of the item starting at `start`: where its first `{` is closed, or the first
/// line ending with `;` before any `{`.
fn item_end(code: &[String], start: usize) -> usize {
    let mut depth = 0i32;
    let mut opened = false;
    for (j, c) in code.iter().enumerate().skip(start) {
        for ch in c.chars() {
            match ch {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                ';' if !opened && depth == 0 => return j,
                _ => {}
            }
        }
        if opened && depth <= 0 {
            return j;
        }
    }
    code.len() - 1
}

#[test]
fn no_big_rooms_and_no_long_functions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    assert!(files.len() > 10, "found only {} source files", files.len());
    let mut problems = Vec::new();
    let mut sizes = Vec::new();
    let mut all_fns = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let shape = measure(&text);
        let rel = f
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .display();
        if shape.code_lines > MAX_FILE_LINES {
            problems.push(format!(
                "{rel}: {} lines of non-test code (at most {MAX_FILE_LINES})",
                shape.code_lines
            ));
        }
        sizes.push((shape.code_lines, rel.to_string()));
        for (name, line, len) in &shape.fns {
            all_fns.push((*len, format!("{rel}:{line} {name}")));
        }
        for (name, line, len) in shape.long_fns {
            problems.push(format!(
                "{rel}:{line}: fn {name} has {len} lines (at most {MAX_FN_LINES})"
            ));
        }
    }
    // The largest rooms, for whoever plans the next split (`cargo test --test code_shape --
    // --nocapture`).
    sizes.sort_by(|a, b| b.cmp(a));
    all_fns.sort_by(|a, b| b.cmp(a));
    eprintln!(
        "largest files (non-test lines): {:?}",
        &sizes[..5.min(sizes.len())]
    );
    eprintln!(
        "longest functions (lines): {:?}",
        &all_fns[..5.min(all_fns.len())]
    );
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_measure_sees_long_functions_and_skips_tests() {
    let body = "    let x = '{';\n".repeat(MAX_FN_LINES);
    let long = format!("fn big() {{\n{body}}}\n");
    let shape = measure(&long);
    assert_eq!(shape.long_fns.len(), 1, "a long function is found");
    assert_eq!(shape.long_fns[0].0, "big");
    let short = "fn small() {\n    let s = \"}\";\n}\n";
    assert!(measure(short).long_fns.is_empty());
    let tests = format!("fn a() {{}}\n#[cfg(test)]\nmod tests {{\n{long}}}\n");
    let shape = measure(&tests);
    assert!(shape.long_fns.is_empty(), "test code is not measured");
    assert_eq!(shape.code_lines, 1);
}
