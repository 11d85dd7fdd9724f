//! The `tcplab experiment` command line on the real binary: `list` in the book's order, picked
//! by chapter, as the Markdown chapter index the README holds; `run` refusing anything but
//! exactly one of NAME and --all; and (root only: otherwise `skipped: not root`) `run --all`
//! on a netns lab of its own (`cli<tag><pid>`), with its index and its handling of Ctrl-C.
//!
//! Written for whatever experiments/ holds: what a test expects of the catalogue it reads from
//! the experiment files themselves (with the toml crate, not with tcplab's code).

mod common;

use common::{Bg, Lab, Out, Runtime, TempDir, run, tcplab};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

// ---------------------------------------------------------------- the catalogue, read here

/// A built-in experiment as its file says: (name, chapter).
fn catalogue() -> Vec<(String, String)> {
    tcplab::experiment::BUILTIN
        .iter()
        .map(|e| {
            let t: toml::Table = toml::from_str(e.text)
                .unwrap_or_else(|err| panic!("experiments/{}.toml: {err}", e.name));
            let chapter = t
                .get("chapter")
                .and_then(|c| c.as_str())
                .unwrap_or_else(|| panic!("experiments/{}.toml has no chapter", e.name));
            (e.name.to_string(), chapter.to_string())
        })
        .collect()
}

/// The numbers of a section: "18.4" is [18, 4]; None if it is not numbers joined by dots.
fn numbers(section: &str) -> Option<Vec<u32>> {
    section.trim().split('.').map(|p| p.parse().ok()).collect()
}

/// The sections a `chapter` field names ("6.5, 11" names two), as numbers.
fn sections(chapter: &str) -> Vec<Vec<u32>> {
    chapter.split(',').filter_map(numbers).collect()
}

/// Whether an experiment of `chapter` belongs to `wanted` (a chapter or a section of one).
fn belongs(chapter: &str, wanted: &[u32]) -> bool {
    sections(chapter).iter().any(|s| s.starts_with(wanted))
}

/// The names `experiment list [ARGS]` prints, in order (the first word of each line).
fn listed(args: &[&str]) -> (Out, Vec<String>) {
    let mut all = vec!["experiment", "list"];
    all.extend_from_slice(args);
    let out = tcplab(&all);
    let names = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    (out, names)
}

// ---------------------------------------------------------------- list

/// `experiment list` prints each experiment once, by chapter number (numerically: 7.2 before
/// 11, 11 before 11.5), then by name.
#[test]
fn list_is_in_the_books_order() {
    let cat = catalogue();
    let (out, names) = listed(&[]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let mut expected: Vec<&String> = cat.iter().map(|(n, _)| n).collect();
    expected.sort();
    let mut got: Vec<&String> = names.iter().collect();
    got.sort();
    assert_eq!(got, expected, "each experiment once:\n{}", out.stdout);
    let chapter_of = |name: &str| {
        let ch = &cat.iter().find(|(n, _)| n == name).unwrap().1;
        // Those naming no section number come last.
        let first = sections(ch).into_iter().next();
        (first.is_none(), first, ch.clone())
    };
    for w in names.windows(2) {
        let (a, b) = (chapter_of(&w[0]), chapter_of(&w[1]));
        assert!(
            a < b || (a == b && w[0] < w[1]),
            "{} (ch. {}) is listed before {} (ch. {}):\n{}",
            w[0],
            a.2,
            w[1],
            b.2,
            out.stdout
        );
    }
    for line in out.stdout.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let ch = &cat.iter().find(|(n, _)| n == name).unwrap().1;
        let re = regex::Regex::new(&format!(
            r"^{}\s+ch\.\s*{}\s",
            regex::escape(name),
            regex::escape(ch)
        ))
        .unwrap();
        assert!(re.is_match(line), "`{line}` is not `NAME  ch. {ch}  TITLE`");
    }
}

/// `list --chapter N` prints the experiments of N and of its sections (N.x), in the order of
/// the whole list; so does `--chapter N.x` for that section.
#[test]
fn list_chapter_picks_the_chapter_and_its_sections() {
    let cat = catalogue();
    let (_, all) = listed(&[]);
    let mut wanted: Vec<Vec<u32>> = Vec::new();
    for (_, ch) in &cat {
        for s in sections(ch) {
            wanted.push(s[..1].to_vec());
            wanted.push(s);
        }
    }
    wanted.sort();
    wanted.dedup();
    assert!(!wanted.is_empty(), "no experiment names a chapter number");
    for w in wanted {
        let arg = w.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
        let (out, names) = listed(&["--chapter", &arg]);
        assert_eq!(out.code, 0, "{}", out.describe());
        let expected: Vec<&String> = all
            .iter()
            .filter(|n| belongs(&cat.iter().find(|(m, _)| m == *n).unwrap().1, &w))
            .collect();
        assert!(!expected.is_empty(), "chapter {arg} has experiments");
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            expected,
            "--chapter {arg}"
        );
    }
}

/// A chapter no experiment belongs to lists nothing: one line on stderr saying so, exit 0.
#[test]
fn a_chapter_without_experiments_lists_nothing_and_says_so() {
    let cat = catalogue();
    let empty = (900..1000)
        .find(|n| !cat.iter().any(|(_, ch)| belongs(ch, &[*n])))
        .expect("a chapter number no experiment has");
    let (out, names) = listed(&["--chapter", &empty.to_string()]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(names.is_empty(), "{}", out.describe());
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", out.describe());
    assert!(lines[0].contains(&format!("chapter {empty}")), "{lines:?}");
}

/// A `--chapter` that is not a number like 18 or 18.4 is refused with exit 2 and one line
/// naming the value, by `list` and by `run --all` alike (before anything needs root).
#[test]
fn a_bad_chapter_is_refused_with_exit_2() {
    for bad in ["abc", "18.", ".4", "1..2", "-1", "4a", "18,4", ""] {
        let arg = format!("--chapter={bad}");
        for args in [
            vec!["experiment", "list", &arg],
            vec!["experiment", "run", "--all", &arg],
        ] {
            let out = tcplab(&args);
            assert_eq!(out.code, 2, "{}", out.describe());
            let lines = out.stderr_lines();
            assert_eq!(lines.len(), 1, "one line: {}", out.describe());
            assert!(
                lines[0].contains(&format!("'{bad}'")) && lines[0].contains("chapter"),
                "the line names the value: {lines:?}"
            );
            assert!(out.stdout.is_empty(), "{}", out.describe());
        }
    }
}

/// The README's chapter index (between `<!-- experiments:begin -->` and
/// `<!-- experiments:end -->`) is what `experiment list --markdown` prints.
#[test]
fn the_readme_chapter_index_is_what_list_markdown_prints() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("reading README.md");
    let (begin, end) = ("<!-- experiments:begin -->", "<!-- experiments:end -->");
    let start = readme.find(begin).expect("README.md has the begin marker") + begin.len();
    let stop = readme[start..]
        .find(end)
        .expect("README.md has the end marker after the begin marker")
        + start;
    let out = tcplab(&["experiment", "list", "--markdown"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert_eq!(
        readme[start..stop].trim(),
        out.stdout.trim(),
        "README.md's chapter index is stale: put the output of `tcplab experiment list --markdown` between its markers"
    );
    let rows = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" | `"))
        .count();
    assert_eq!(rows, catalogue().len(), "a row each:\n{}", out.stdout);
}

// ---------------------------------------------------------------- run: NAME or --all

/// `run` wants exactly one of NAME and --all (and --chapter only with --all): otherwise exit 2
/// with one line naming what is wrong, before anything needs root.
#[test]
fn run_needs_exactly_one_of_name_and_all() {
    let name = tcplab::experiment::BUILTIN[0].name;
    let cases: [(&[&str], &[&str]); 4] = [
        (&[], &["NAME", "--all"]),
        (&[name, "--all"], &["NAME", "--all"]),
        (&["--chapter", "4"], &["--chapter", "--all"]),
        (&[name, "--chapter", "4"], &["NAME", "--chapter"]),
    ];
    for (args, names) in cases {
        let mut all = vec!["experiment", "run"];
        all.extend_from_slice(args);
        let out = tcplab(&all);
        assert_eq!(out.code, 2, "{}", out.describe());
        let lines = out.stderr_lines();
        assert_eq!(lines.len(), 1, "one line: {}", out.describe());
        for n in names {
            assert!(lines[0].contains(n), "`{}` names {n}", lines[0]);
        }
    }
}

// ---------------------------------------------------------------- run --all (root)

/// Lab `cli<tag><pid>`: the course topology on the netns runtime, down when dropped.
fn lab(tag: &str) -> Lab {
    Lab {
        name: format!("cli{tag}{:x}", std::process::id() & 0xffff),
        topology: None,
        runtime: Runtime::Netns,
    }
}

/// `tcplab --lab L --runtime netns --switch S experiment run --all ARGS... --out DIR`.
fn run_all_cmd(lab: &Lab, args: &[&str], out: &Path) -> Command {
    let mut c = lab.cmd();
    let switch = std::env::var("TCPLAB_TEST_SWITCH").unwrap_or_else(|_| "linux".into());
    c.args(["--switch", &switch, "experiment", "run", "--all"])
        .args(args)
        .arg("--out")
        .arg(out);
    c
}

/// The rows of an `index.md`: (first cell, result cell), the header left out.
fn index_rows(index: &str) -> Vec<(String, String)> {
    index
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| experiment") && !l.contains("---"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].to_string(), cells[2].to_string())
        })
        .collect()
}

/// `run --all --chapter 4 --out DIR` on a lab that is not up brings it up, runs each
/// experiment of chapter 4 into DIR/NAME and writes DIR/index.md: a row each, in the list's
/// order, linked to its report; exit 0 exactly when every row is green.
#[test]
fn run_all_of_a_chapter_writes_an_index_with_a_row_each() {
    root_or_skip!();
    let _serial = common::serial();
    let (_, expected) = listed(&["--chapter", "4"]);
    assert!(!expected.is_empty(), "no experiment of chapter 4");
    let dir = TempDir::new("cliall");
    let lab = lab("a");
    let out_dir = dir.join("out");
    let out = run(
        run_all_cmd(&lab, &["--chapter", "4"], &out_dir),
        Duration::from_secs(150 * expected.len() as u64),
    );
    let what = out.describe();
    assert!(!out.timed_out, "{what}");
    assert!(out.stderr.contains("bringing it up first"), "{what}");
    let index = std::fs::read_to_string(out_dir.join("index.md"))
        .unwrap_or_else(|e| panic!("no index.md ({e}): {what}"));
    let rows = index_rows(&index);
    let names: Vec<String> = expected
        .iter()
        .map(|n| format!("[{n}]({n}/report.md)"))
        .collect();
    assert_eq!(
        rows.iter().map(|r| &r.0).collect::<Vec<_>>(),
        names.iter().collect::<Vec<_>>(),
        "a linked row per experiment of chapter 4, in order:\n{index}\n{what}"
    );
    for n in &expected {
        assert!(out_dir.join(n).join("report.md").is_file(), "{n}: {what}");
        assert!(out.stdout.contains(&format!("=> {n}: ")), "{n}: {what}");
    }
    let all_green = rows.iter().all(|r| r.1 == "green");
    assert_eq!(out.code, if all_green { 0 } else { 1 }, "{index}\n{what}");
    assert!(
        out.stdout.contains("experiment") && out.stdout.contains("seconds"),
        "{what}"
    );
}

/// Start `run --all` on an up lab and send Ctrl-C (SIGINT to its process group, as a terminal
/// does) `times` times once the first experiment has started its steps.
fn interrupted_run(lab: &Lab, out_dir: &Path, times: usize) -> Out {
    lab.up(None);
    let mut bg = Bg::spawn(run_all_cmd(lab, &[], out_dir), None);
    assert!(
        bg.wait_stderr("  ", Duration::from_secs(60)),
        "no step of the first experiment was logged: {}",
        bg.stderr_so_far()
    );
    for i in 0..times {
        // SAFETY: kill(2) of our own child's process group.
        unsafe { libc::kill(-(bg.pid() as i32), libc::SIGINT) };
        // Signals of a kind do not queue: the second is sent once the first was taken.
        if i + 1 < times {
            assert!(
                bg.wait_stderr("stopping after this experiment", Duration::from_secs(30)),
                "the first Ctrl-C was not taken: {}",
                bg.stderr_so_far()
            );
        }
    }
    bg.wait(Duration::from_secs(180))
}

/// One Ctrl-C lets the running experiment finish (its cleanup too) and runs no other: exit
/// 130, an index.md of the experiments run and of those not run.
#[test]
fn ctrl_c_stops_run_all_after_the_current_experiment() {
    root_or_skip!();
    let _serial = common::serial();
    let (_, all) = listed(&[]);
    if all.len() < 2 {
        eprintln!("skipped: fewer than two experiments to interrupt");
        return;
    }
    let dir = TempDir::new("cliint");
    let lab = lab("i");
    let out_dir = dir.join("out");
    let out = interrupted_run(&lab, &out_dir, 1);
    let what = out.describe();
    assert_eq!(out.code, 130, "{what}");
    assert!(
        out.stderr.contains("stopping after this experiment"),
        "{what}"
    );
    let index = std::fs::read_to_string(out_dir.join("index.md"))
        .unwrap_or_else(|e| panic!("no index.md ({e}): {what}"));
    let rows = index_rows(&index);
    assert!(
        !rows.is_empty() && rows.len() < all.len(),
        "{index}\n{what}"
    );
    assert!(
        index.contains(&format!("not run: `{}`", all[rows.len()])),
        "{index}"
    );
    assert!(out.stdout.contains("interrupted; not run:"), "{what}");
    lab.assert_whole("after an interrupted run --all");
}

/// A second Ctrl-C ends the run at once: exit 130, no index.md.
#[test]
fn a_second_ctrl_c_stops_run_all_at_once() {
    root_or_skip!();
    let _serial = common::serial();
    let dir = TempDir::new("clitwo");
    let lab = lab("j");
    let out_dir = dir.join("out");
    let out = interrupted_run(&lab, &out_dir, 2);
    let what = out.describe();
    assert!(!out.timed_out, "{what}");
    assert_eq!(out.code, 130, "{what}");
    assert!(!out_dir.join("index.md").exists(), "{what}");
}
