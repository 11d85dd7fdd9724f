//! The built-in experiments as the book orders them: by chapter number (4 < 6 < 7.2 < 11 <
//! 11.5 < 18 < 18.4 < 21), then by name; picked by chapter; printed one a line or as a Markdown
//! chapter index (the README's); and the summary of a run of several of them (`experiment run
//! --all`): one row per experiment with its result and time, as text and as `index.md`.

use super::Experiment;
use crate::error::Result;
use std::fmt;
use std::str::FromStr;

/// A chapter or section number of the book: 18, 7.2, 11.5 (numbers joined by dots).
///
/// Ordered as the book is: 7.2 < 7.10 < 11 < 11.5.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Section(Vec<u32>);

impl Section {
    /// Whether `other` is this section or one inside it: 18 holds 18, 18.4 and 18.4.1, not 1.8.
    pub fn holds(&self, other: &Section) -> bool {
        other.0.starts_with(&self.0)
    }
}

impl FromStr for Section {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Section, String> {
        let parts: Option<Vec<u32>> = s
            .split('.')
            .map(|p| {
                if !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()) {
                    p.parse().ok()
                } else {
                    None
                }
            })
            .collect();
        parts.map(Section).ok_or_else(|| {
            format!(
                "'{}' is not a chapter number such as 18 or 18.4",
                s.escape_debug()
            )
        })
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// The sections an experiment's `chapter` names: `"6.5, 11"` is 6.5 and 11. A part that is not
/// a number (an appendix, say) is left out.
pub fn sections(chapter: &str) -> Vec<Section> {
    chapter
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// Whether experiment `e` belongs to chapter (or section) `ch`: one of its sections is `ch` or
/// lies inside it.
pub fn in_chapter(e: &Experiment, ch: &Section) -> bool {
    sections(&e.chapter).iter().any(|s| ch.holds(s))
}

/// Sort experiments in the book's order: by the first section their chapter names, then by
/// name. Those whose chapter names no section come last, by chapter text, then name.
pub fn sort_in_book_order(exps: &mut [Experiment]) {
    exps.sort_by_cached_key(|e| {
        let first = sections(&e.chapter).into_iter().next();
        (first.is_none(), first, e.chapter.clone(), e.name.clone())
    });
}

/// The built-in experiments in the book's order, only those of chapter `ch` if given.
pub fn catalogue(ch: Option<&Section>) -> Result<Vec<Experiment>> {
    let mut exps = super::builtin()?;
    if let Some(ch) = ch {
        exps.retain(|e| in_chapter(e, ch));
    }
    sort_in_book_order(&mut exps);
    Ok(exps)
}

/// The line `experiment list` prints for `e`: `NAME  ch. N  TITLE`.
pub fn list_line(e: &Experiment) -> String {
    format!("{:<22} ch. {:<8} {}", e.name, e.chapter, one_line(&e.title))
}

/// The chapter index as a Markdown table (chapter, experiment, what it shows), in the order
/// given, ending with a newline.
pub fn markdown_index(exps: &[Experiment]) -> String {
    let mut out = String::from("| chapter | experiment | what it shows |\n| --- | --- | --- |\n");
    for e in exps {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            cell(&e.chapter),
            e.name,
            cell(&e.title)
        ));
    }
    out
}

/// Text on one line: line breaks and runs of spaces made one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text for a Markdown table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

/// How one experiment of a run of several ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every check passed.
    Green,
    /// Some checks failed.
    Red {
        /// How many failed.
        failed: usize,
        /// How many there were.
        total: usize,
    },
    /// It could not run to its checks: the error, on one line.
    Error(String),
    /// Not run, and not a failure: why (it is made for another topology than the lab's).
    Skipped(String),
}

impl Outcome {
    /// Whether the run of several still counts as green with this row (green or skipped).
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Green | Outcome::Skipped(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Green => f.write_str("green"),
            Outcome::Red { failed, total } => {
                write!(f, "red: {failed} of {total} checks failed")
            }
            Outcome::Error(e) => write!(f, "error: {}", one_line(e)),
            Outcome::Skipped(why) => write!(f, "skipped: {}", one_line(why)),
        }
    }
}

/// One row of the summary of a run of several experiments.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// The experiment's name; its results are in the directory of that name.
    pub name: String,
    /// Its chapter.
    pub chapter: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// Whether its directory holds a `report.md`.
    pub has_report: bool,
}

/// The text table of a run: a header, then one row each, columns aligned.
pub fn summary_table(rows: &[RunRow]) -> String {
    let width = |f: &dyn Fn(&RunRow) -> usize, min: usize| rows.iter().map(f).fold(min, usize::max);
    let wn = width(&|r| r.name.len(), "experiment".len());
    let wc = width(&|r| r.chapter.len(), "chapter".len());
    let wr = width(&|r| r.outcome.to_string().len(), "result".len());
    let mut out = format!(
        "{:<wn$}  {:<wc$}  {:<wr$}  {:>7}\n",
        "experiment", "chapter", "result", "seconds"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<wn$}  {:<wc$}  {:<wr$}  {:>7.1}\n",
            r.name,
            r.chapter,
            r.outcome.to_string(),
            r.seconds
        ));
    }
    out
}

/// `index.md` of a run: a title naming `lab` and `started` (a UTC time), the table (each
/// experiment linked to its `report.md` when it wrote one), the totals, and the experiments
/// left unrun when the run was interrupted.
pub fn summary_index(lab: &str, started: &str, rows: &[RunRow], not_run: &[String]) -> String {
    let mut out = format!(
        "# Experiments on lab `{lab}`, {started}\n\n| experiment | chapter | result | seconds |\n| --- | --- | --- | --- |\n"
    );
    for r in rows {
        let name = if r.has_report {
            format!("[{0}]({0}/report.md)", r.name)
        } else {
            format!("`{}`", r.name)
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {:.1} |\n",
            cell(&r.chapter),
            cell(&r.outcome.to_string()),
            r.seconds
        ));
    }
    out.push_str(&format!("\n{}\n", totals(rows)));
    if !not_run.is_empty() {
        out.push_str(&format!(
            "\nInterrupted; not run: {}.\n",
            not_run
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

/// `N green, N red, N errors` of a run, then `, N skipped` when some were.
pub fn totals(rows: &[RunRow]) -> String {
    let count = |f: fn(&Outcome) -> bool| rows.iter().filter(|r| f(&r.outcome)).count();
    let errors = count(|o| matches!(o, Outcome::Error(_)));
    let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
    format!(
        "{} green, {} red, {} error{}{}",
        count(|o| *o == Outcome::Green),
        count(|o| matches!(o, Outcome::Red { .. })),
        errors,
        if errors == 1 { "" } else { "s" },
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(name: &str, chapter: &str, title: &str) -> Experiment {
        Experiment {
            name: name.into(),
            chapter: chapter.into(),
            title: title.into(),
            description: String::new(),
            steps: vec![],
            cleanup: vec![],
            checks: vec![],
            broken: vec![],
            vars: Default::default(),
            needs: None,
            topology: None,
        }
    }

    #[test]
    fn a_skipped_row_is_not_a_failure_and_is_counted() {
        let row = |outcome| RunRow {
            name: "n".into(),
            chapter: "1".into(),
            outcome,
            seconds: 0.0,
            has_report: false,
        };
        let skipped = Outcome::Skipped("runs on topology ovs-lab".into());
        assert!(skipped.is_ok() && Outcome::Green.is_ok());
        assert!(!Outcome::Error("e".into()).is_ok());
        assert_eq!(skipped.to_string(), "skipped: runs on topology ovs-lab");
        let rows = [row(Outcome::Green), row(skipped)];
        assert_eq!(totals(&rows), "1 green, 0 red, 0 errors, 1 skipped");
        assert_eq!(totals(&rows[..1]), "1 green, 0 red, 0 errors");
    }

    fn sec(s: &str) -> Section {
        s.parse().unwrap()
    }

    #[test]
    fn experiments_sort_by_chapter_number_then_name() {
        let chapters = [
            "21", "18.4", "11.5", "7.3", "4", "18", "7.2", "6", "11", "7.10", "B", "6.5, 11",
        ];
        let mut exps: Vec<Experiment> = chapters
            .iter()
            .enumerate()
            .map(|(i, c)| exp(&format!("e{i}"), c, "t"))
            .collect();
        exps.push(exp("a-second", "18", "t"));
        sort_in_book_order(&mut exps);
        let order: Vec<(&str, &str)> = exps
            .iter()
            .map(|e| (e.chapter.as_str(), e.name.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("4", "e4"),
                ("6", "e7"),
                ("6.5, 11", "e11"),
                ("7.2", "e6"),
                ("7.3", "e3"),
                ("7.10", "e9"),
                ("11", "e8"),
                ("11.5", "e2"),
                ("18", "a-second"),
                ("18", "e5"),
                ("18.4", "e1"),
                ("21", "e0"),
                ("B", "e10"),
            ]
        );
    }

    #[test]
    fn a_chapter_holds_its_sections_and_not_others() {
        let e18 = exp("x", "18", "t");
        let e184 = exp("y", "18.4", "t");
        let e1 = exp("z", "1.8", "t");
        let both = exp("w", "6.5, 11", "t");
        assert!(in_chapter(&e18, &sec("18")));
        assert!(in_chapter(&e184, &sec("18")));
        assert!(in_chapter(&e184, &sec("18.4")));
        assert!(!in_chapter(&e18, &sec("18.4")));
        assert!(!in_chapter(&e1, &sec("18")));
        assert!(!in_chapter(&e1, &sec("1.8.2")));
        assert!(in_chapter(&e1, &sec("1")));
        assert!(in_chapter(&both, &sec("6")));
        assert!(in_chapter(&both, &sec("11")));
        assert!(!in_chapter(&both, &sec("6.4")));
        assert!(!in_chapter(&exp("v", "Appendix B", "t"), &sec("2")));
    }

    #[test]
    fn chapter_numbers_parse_and_bad_ones_are_refused_naming_the_value() {
        assert_eq!(sec("18.4").to_string(), "18.4");
        assert_eq!(sec("07").to_string(), "7");
        for bad in [
            "", "abc", "18.", ".4", "1..2", "-1", "18,4", " 18", "4a", "99999",
        ] {
            let e = bad.parse::<Section>().unwrap_err();
            assert!(e.contains("is not a chapter number"), "{bad}: {e}");
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
        }
        assert_eq!(sections("6.5, 11"), [sec("6.5"), sec("11")]);
        assert!(sections("Appendix B").is_empty());
    }

    #[test]
    fn the_markdown_index_has_a_row_per_experiment_in_the_order_given() {
        let md = markdown_index(&[exp("arp", "4", "ARP"), exp("p", "6.5, 11", "a | b\n c")]);
        assert_eq!(
            md,
            "| chapter | experiment | what it shows |\n| --- | --- | --- |\n\
             | 4 | `arp` | ARP |\n| 6.5, 11 | `p` | a \\| b c |\n"
        );
        assert_eq!(
            list_line(&exp("arp", "4", "ARP: who")),
            format!("{:<22} ch. 4        ARP: who", "arp")
        );
    }

    fn row(name: &str, outcome: Outcome, has_report: bool) -> RunRow {
        RunRow {
            name: name.into(),
            chapter: "4".into(),
            outcome,
            seconds: 1.5,
            has_report,
        }
    }

    #[test]
    fn the_summary_names_each_result_and_links_each_report() {
        let rows = [
            row("arp", Outcome::Green, true),
            row(
                "proxy-arp",
                Outcome::Red {
                    failed: 1,
                    total: 3,
                },
                true,
            ),
            row("broken", Outcome::Error("node x\nis unknown".into()), false),
        ];
        let table = summary_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(
            lines[0].starts_with("experiment  chapter  result"),
            "{table}"
        );
        assert!(lines[2].contains("red: 1 of 3 checks failed"), "{table}");
        assert!(lines[3].contains("error: node x is unknown"), "{table}");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["arp", "4", "green", "1.5"]
        );
        let md = summary_index("tcpip", "20250101T000000Z", &rows, &["tcp-rst".into()]);
        assert!(md.starts_with("# Experiments on lab `tcpip`, 20250101T000000Z\n"));
        assert!(md.contains("| [arp](arp/report.md) | 4 | green |"), "{md}");
        assert!(md.contains("| [proxy-arp](proxy-arp/report.md) | 4 | red: 1 of 3"));
        assert!(
            md.contains("| `broken` | 4 | error: node x is unknown |"),
            "{md}"
        );
        assert!(md.contains("\n1 green, 1 red, 1 error\n"), "{md}");
        assert!(md.contains("Interrupted; not run: `tcp-rst`."), "{md}");
        assert_eq!(totals(&rows[..1]), "1 green, 0 red, 0 errors");
    }
}
