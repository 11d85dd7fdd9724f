//! What the property-based tests of hostile input share: the proptest configuration (case
//! count, regression files under `proptest-regressions/`), a watchdog that turns a hang into a
//! failure naming the input, the check that an error is one line with exit code 2, and text
//! mutations (lines deleted, duplicated, moved; numbers, addresses, names and keys replaced;
//! garbage inserted; cut short).

#![allow(dead_code)] // each test binary uses its own part

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRunner};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cases per target in the suite (`TCPLAB_FUZZ_CASES=N` runs more, for a deeper search).
pub const CASES: u32 = 10_000;

/// The cases to run: [`CASES`], or more when `TCPLAB_FUZZ_CASES` asks for more.
pub fn cases() -> u32 {
    std::env::var("TCPLAB_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .map_or(CASES, |n: u32| n.max(CASES))
}

/// The longest one case may take before it counts as a hang (a debug build on a busy machine
/// parses the course topology in about 2 ms).
pub const CASE_LIMIT: Duration = Duration::from_secs(2);

/// A runner of `CASES` cases whose failures are recorded in `proptest-regressions/FILE` (and
/// replayed first on every later run).
pub fn runner(regressions: &'static str) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        // Far cheaper than ChaCha in a debug build, and random enough to find bugs.
        rng_algorithm: RngAlgorithm::XorShift,
        // Shrinking a failure of a 5 KiB text is worth a minute, not an hour.
        max_shrink_time: 60_000,
        ..Config::default()
    })
}

/// Run `runner` over `strategy`, panicking with proptest's report (the minimal failing input)
/// on a failure, and checking that every case ran.
pub fn run<S: Strategy>(
    mut runner: TestRunner,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let ran = std::sync::atomic::AtomicU32::new(0);
    let counted = |value| {
        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        test(value)
    };
    if let Err(e) = runner.run(&strategy, counted) {
        panic!("{e}");
    }
    let ran = ran.into_inner();
    assert!(ran >= cases(), "{ran} cases ran, not {}", cases());
    eprintln!("{ran} cases");
}

/// Aborts the test process, printing the input, when one case runs past a deadline: a
/// hang fails the suite with the input that hangs instead of stalling CI.
#[derive(Clone)]
pub struct Watchdog {
    current: Arc<Mutex<Option<Running>>>,
}

/// The case running: when it started, and its input.
type Running = (Instant, Vec<u8>);

impl Watchdog {
    /// A watchdog for one test target, named `target` in its report.
    pub fn new(target: &'static str) -> Watchdog {
        let current: Arc<Mutex<Option<Running>>> = Arc::default();
        let watched = Arc::downgrade(&current);
        std::thread::spawn(move || {
            while let Some(current) = watched.upgrade() {
                if let Some((start, input)) = &*current.lock().unwrap_or_else(|p| p.into_inner())
                    && start.elapsed() > 5 * CASE_LIMIT
                {
                    eprintln!(
                        "{target}: one case ran for {:?} on input {}",
                        start.elapsed(),
                        describe(input)
                    );
                    std::process::abort();
                }
                drop(current);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Watchdog { current }
    }

    /// Run `f` on `input` (printed should it hang), failing the case when it takes longer
    /// than [`CASE_LIMIT`].
    pub fn time<T>(&self, input: &[u8], f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
        let start = Instant::now();
        *self.current.lock().unwrap() = Some((start, input.to_vec()));
        let out = f();
        *self.current.lock().unwrap() = None;
        let took = start.elapsed();
        prop_assert!(took <= CASE_LIMIT, "one case took {took:?}");
        Ok(out)
    }
}

/// An input as a Rust string literal when it is UTF-8, else as bytes in hex.
pub fn describe(input: &[u8]) -> String {
    match std::str::from_utf8(input) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("{input:02x?}"),
    }
}

/// An error of bad input: one line, no final period, exit code 2.
pub fn check_refusal(e: &tcplab::error::Error) -> Result<(), TestCaseError> {
    let line = e.to_string();
    prop_assert!(
        !line.chars().any(char::is_control),
        "more than one line, or control characters: {line:?}"
    );
    prop_assert!(!line.trim().is_empty(), "empty message");
    prop_assert_eq!(e.exit_code(), 2, "exit code of {:?}", line);
    Ok(())
}

// ------------------------------------------------------------------- text mutations

/// One change to a text.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Remove a line.
    DeleteLine(usize),
    /// Write a line twice.
    DuplicateLine(usize),
    /// Move a line elsewhere.
    MoveLine(usize, usize),
    /// Exchange two lines.
    SwapLines(usize, usize),
    /// Replace a line by another text.
    ReplaceLine(usize, String),
    /// Replace a number (a run of digits) by another text.
    Number(usize, String),
    /// Replace a dotted address (digits and dots, with or without a prefix) by another text.
    Address(usize, String),
    /// Replace the contents of a quoted string.
    Quoted(usize, String),
    /// Replace a key (the word before ` = `) by another text.
    Key(usize, String),
    /// Insert text at a byte position.
    Insert(usize, String),
    /// Remove a range of bytes.
    DeleteBytes(usize, usize),
    /// Cut the text short.
    Truncate(usize),
}

/// Numbers a file might hold, the edges first.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "+1",
    "68",
    "255",
    "256",
    "1500",
    "3600",
    "3601",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "99999999999999999999999",
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "-0.0",
    "1e-320",
    "0x10",
    "0o7",
    "0b1",
    "1_000",
    "01",
    "true",
];

/// Addresses and prefixes, valid, edge and broken.
const ADDRESSES: &[&str] = &[
    "0.0.0.0",
    "0.0.0.0/0",
    "255.255.255.255",
    "255.255.255.255/32",
    "127.0.0.1",
    "224.0.0.1",
    "10.0.0.1/31",
    "10.0.0.0/8",
    "10.0.0.1/33",
    "10.0.0.1/-1",
    "10.0.0.1/",
    "/24",
    "10.0.0",
    "10.0.0.256",
    "10..0.1",
    "1.2.3.4.5",
    "::1",
    "fe80::1/64",
    "default",
    "",
    " 10.0.0.1",
    "10.0.0.1 ",
    "140.252.1.4",
    "140.252.13.33",
    "140.252.1.0/24",
    "140.252.13.32/27",
];

/// Names, keys and words a file might hold.
const WORDS: &[&str] = &[
    "",
    "a",
    "eth0",
    "eth1",
    "lo",
    "default",
    "aix",
    "sun",
    "gateway",
    "netb",
    "net1",
    "slip",
    "aaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaa",
    "a b",
    "a/b",
    "../x",
    ".",
    "-x",
    "x:y",
    "é",
    "日本",
    "🦀",
    "a\u{0}b",
    "\\u0000",
    "name",
    "node",
    "nodes",
    "interface",
    "address",
    "subnet",
    "members",
    "links",
    "networks",
    "uplink",
    "profiles",
    "conditions",
    "routes",
    "via",
    "to",
    "dev",
    "router",
    "kind",
    "ovs",
    "linux",
    "mtu",
    "proxy_arp",
    "sysctls",
    "addresses",
    "host_interface",
    "host_address",
    "host_routes",
    "rate",
    "delay",
    "loss",
    "framing",
    "action",
    "steps",
    "checks",
    "capture",
    "run",
    "command",
    "sequence",
    "background",
    "timeout",
    "seconds",
    "state",
    "ends",
    "set",
    "clear",
    "proto",
    "src",
    "dst",
    "flags",
    "9600bit",
    "1200bit",
    "0bit",
    "10ms",
    "-5ms",
    "150%",
    "up",
    "down",
];

/// Whole lines a TOML file (topology or experiment) might hold.
const LINES: &[&str] = &[
    "[nodes.x]",
    "[nodes.aix]",
    "[nodes.\"\"]",
    "[networks.n]",
    "[[links]]",
    "[uplink]",
    "[profiles.p]",
    "[defaults]",
    "[[steps]]",
    "[[checks]]",
    "[[checks.sequence]]",
    "[nodes]",
    "[[nodes]]",
    "nodes = 1",
    "name = \"x\"",
    "router = true",
    "kind = \"linux\"",
    "kind = \"bridge\"",
    "subnet = \"10.9.0.0/24\"",
    "mtu = 0",
    "mtu = 65536",
    "members = []",
    "members = [{ node = \"aix\", interface = \"eth9\", address = \"10.9.0.1\" }]",
    "routes = [{ to = \"default\" }]",
    "routes = [{ to = \"10.0.0.0/8\", via = \"10.0.0.1\", dev = \"eth1\" }]",
    "proxy_arp = [{ interface = \"eth1\", addresses = [\"1.2.3.4\"] }]",
    "sysctls = { \"net.ipv4.ip_forward\" = \"1\" }",
    "sysctls = { \"../../x\" = \"1\" }",
    "conditions = { rate = \"9600bit\", framing = \"slip\" }",
    "conditions = { rate = \"-1bit\" }",
    "conditions = { loss = \"101%\" }",
    "conditions = { nope = 1 }",
    "links.slip = { delay = \"1s\" }",
    "ends.\"aix:eth1\" = { delay = \"10ms\" }",
    "a = { node = \"aix\", interface = \"x\" }",
    "b = { node = \"nope\", interface = \"y\", address = \"1.1.1.1/30\" }",
    "action = \"run\"",
    "action = \"fly\"",
    "action = \"capture\"",
    "action = \"join\"",
    "action = \"wait\"",
    "action = \"link\"",
    "action = \"mtu\"",
    "action = \"conditions\"",
    "action = \"stop\"",
    "action = \"wait-listen\"",
    "node = \"sun\"",
    "command = \"true\"",
    "seconds = 1e9",
    "timeout = -1",
    "ends = [\"aix:eth1\"]",
    "ends = [\"a\", \"b\", \"c\"]",
    "set = { rate = \"1200bit\" }",
    "clear = true",
    "output_matches = \"(\"",
    "output_matches = \"{aix.eth1.mac}\"",
    "sequence = [{ }]",
    "sequence = [{ proto = \"icmp\", type = \"echo-request\" }]",
    "retransmits = { src = \"1.2.3.4\", dst = \"5.6.7.8\", min = 0 }",
    "routes_of = [\"aix\"]",
    "x = '''",
    "'''",
    "x = \"\"\"",
    "= 1",
    "[",
    "]]",
    "{",
    "\"",
    "#",
    "\u{feff}",
    "\r",
];

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(pool).prop_map(str::to_string)
}

/// Random text: any characters, TOML's punctuation often.
pub fn garbage() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => any::<char>(),
        2 => proptest::sample::select(&['[', ']', '{', '}', '"', '\'', '=', ',', '.', '\n', '#', '\\', ' ', '\0', '/', ':'][..]),
        2 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('0', '9'),
    ];
    proptest::collection::vec(ch, 0..24).prop_map(|v| v.into_iter().collect())
}

/// A replacement text of kind `pool`, or garbage.
fn replacement(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => pick(pool),
        1 => garbage(),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ]
}

/// Any one mutation: most keep the text valid TOML (so that the file's meaning changes and
/// validation is what refuses it), the others break its syntax.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => value_mutation(),
        1 => syntax_mutation(),
    ]
}

/// A mutation that keeps TOML's syntax most of the time: a value, a key or a whole line
/// replaced by another of its kind, a line removed, doubled or moved.
pub fn value_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<usize>().prop_map(Mutation::DeleteLine),
        2 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::MoveLine(a, b)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        2 => (any::<usize>(), pick(LINES)).prop_map(|(i, s)| Mutation::ReplaceLine(i, s)),
        3 => (any::<usize>(), replacement(NUMBERS)).prop_map(|(i, s)| Mutation::Number(i, s)),
        3 => (any::<usize>(), replacement(ADDRESSES)).prop_map(|(i, s)| Mutation::Address(i, s)),
        4 => (any::<usize>(), replacement(WORDS)).prop_map(|(i, s)| Mutation::Quoted(i, s)),
        2 => (any::<usize>(), pick(WORDS)).prop_map(|(i, s)| Mutation::Key(i, s)),
    ]
}

/// A mutation that breaks TOML's syntax most of the time: garbage inserted or in place of a
/// line, bytes removed, the text cut short.
pub fn syntax_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<usize>(), garbage()).prop_map(|(i, s)| Mutation::ReplaceLine(i, s)),
        3 => (any::<usize>(), garbage()).prop_map(|(i, s)| Mutation::Insert(i, s)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(i, n)| Mutation::DeleteBytes(i, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// `seed` changed by one to `max` mutations, one after the other; most often by one or two
/// that keep it valid TOML (so that validation sees it).
pub fn mutated(seeds: Vec<String>, max: usize) -> impl Strategy<Value = String> {
    let changes = prop_oneof![
        3 => proptest::collection::vec(value_mutation(), 1..=2),
        1 => proptest::collection::vec(mutation(), 1..=max),
    ];
    (proptest::sample::select(seeds), changes)
        .prop_map(|(seed, ms)| ms.iter().fold(seed, |text, m| apply(&text, m)))
}

/// The text with `m` applied (unchanged when the text has nothing `m` changes).
pub fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<&str> = text.split('\n').collect();
    match m {
        Mutation::DeleteLine(i) => {
            let whole = whole_lines(&lines);
            lines.remove(whole[at(*i, whole.len())]);
        }
        Mutation::DuplicateLine(i) => {
            // An array element or an array table, doubled, is still valid TOML (a key is not).
            let whole = whole_lines(&lines);
            let repeatable: Vec<usize> = whole
                .iter()
                .copied()
                .filter(|&k| {
                    let l = lines[k].trim_start();
                    l.starts_with('{') || l.starts_with('"') || l.starts_with("[[")
                })
                .collect();
            let pool = if repeatable.is_empty() {
                whole
            } else {
                repeatable
            };
            let k = pool[at(*i, pool.len())];
            lines.insert(k, lines[k]);
        }
        Mutation::MoveLine(a, b) => {
            let l = lines.remove(at(*a, lines.len()));
            lines.insert(at(*b, lines.len() + 1), l);
        }
        Mutation::SwapLines(a, b) => {
            let n = lines.len();
            lines.swap(at(*a, n), at(*b, n));
        }
        Mutation::ReplaceLine(i, s) => {
            let k = at(*i, lines.len());
            lines[k] = s;
        }
        Mutation::Number(i, s) => {
            let quoted = quoted_spans(text);
            let bare = spans(text, number_span)
                .into_iter()
                .filter(|(a, _)| !quoted.iter().any(|(qa, qb)| qa <= a && a <= qb))
                .collect();
            return replace_span(text, bare, i, s);
        }
        Mutation::Address(i, s) => {
            return replace_span(text, spans(text, address_span), i, &escaped(s));
        }
        Mutation::Quoted(i, s) => return replace_span(text, quoted_spans(text), i, &escaped(s)),
        Mutation::Key(i, s) => return replace_span(text, key_spans(text), i, &key(s)),
        Mutation::Insert(i, s) => {
            let pos = boundary(text, at(*i, text.len() + 1));
            return format!("{}{s}{}", &text[..pos], &text[pos..]);
        }
        Mutation::DeleteBytes(i, n) => {
            let from = boundary(text, at(*i, text.len() + 1));
            let to = boundary(text, (from + n).min(text.len()));
            return format!("{}{}", &text[..from], &text[to..]);
        }
        Mutation::Truncate(i) => {
            return text[..boundary(text, at(*i, text.len() + 1))].to_string();
        }
    }
    lines.join("\n")
}

/// The indexes of the lines that are whole statements or whole array elements (as many
/// brackets opened as closed, outside strings) and not comments or blank: removing or
/// doubling one keeps the text valid TOML. Every line when there is none.
fn whole_lines(lines: &[&str]) -> Vec<usize> {
    let whole: Vec<usize> = (0..lines.len())
        .filter(|&k| {
            let l = lines[k].trim();
            !l.is_empty()
                && !l.starts_with('#')
                && !l.contains("\"\"\"")
                && !l.contains("'''")
                && bracket_balance(l) == 0
        })
        .collect();
    if whole.is_empty() {
        (0..lines.len()).collect()
    } else {
        whole
    }
}

/// Brackets and braces opened minus closed on one line, outside double-quoted strings.
fn bracket_balance(line: &str) -> i32 {
    let (mut depth, mut quoted, mut escaped) = (0, false, false);
    for c in line.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            '#' if !quoted => break,
            _ => {}
        }
    }
    depth
}

/// `s` as the contents of a TOML basic string.
fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a TOML key: bare when it can be, else quoted.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if bare {
        s.to_string()
    } else {
        format!("\"{}\"", escaped(s))
    }
}

/// Position `i` of `n` (n > 0).
fn at(i: usize, n: usize) -> usize {
    i % n
}

/// The largest char boundary at or before `at`.
fn boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn replace_span(text: &str, spans: Vec<(usize, usize)>, i: &usize, s: &str) -> String {
    if spans.is_empty() {
        return text.to_string();
    }
    let (a, b) = spans[at(*i, spans.len())];
    format!("{}{s}{}", &text[..a], &text[b..])
}

/// Every span `at` finds, scanning from each byte where none was found.
fn spans(text: &str, at: fn(&[u8], usize) -> Option<usize>) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut k = 0;
    while k < b.len() {
        let starts = k == 0 || !(b[k - 1].is_ascii_alphanumeric() || b[k - 1] == b'.');
        match at(b, k).filter(|_| starts) {
            Some(end) => {
                out.push((k, end));
                k = end;
            }
            None => k += 1,
        }
    }
    out
}

/// The end of a run of digits starting at `k`.
fn number_span(b: &[u8], k: usize) -> Option<usize> {
    let n = b[k..].iter().take_while(|c| c.is_ascii_digit()).count();
    (n > 0).then_some(k + n)
}

/// The end of a dotted quad (with its prefix) starting at `k`.
fn address_span(b: &[u8], k: usize) -> Option<usize> {
    let n = b[k..]
        .iter()
        .take_while(|c| c.is_ascii_digit() || **c == b'.' || **c == b'/')
        .count();
    let s = &b[k..k + n];
    (s.iter().filter(|c| **c == b'.').count() == 3).then_some(k + n)
}

/// The contents of every one-line "double-quoted" string (multi-line `"""` strings are
/// skipped whole).
fn quoted_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut k = 0;
    while k < b.len() {
        if b[k..].starts_with(b"\"\"\"") {
            k = text[k + 3..]
                .find("\"\"\"")
                .map_or(b.len(), |end| k + 3 + end + 3);
        } else if b[k] == b'#' {
            k = text[k..].find('\n').map_or(b.len(), |end| k + end);
        } else if b[k] == b'"' {
            let start = k + 1;
            k = start;
            while k < b.len() && b[k] != b'"' && b[k] != b'\n' {
                k += if b[k] == b'\\' { 2 } else { 1 };
            }
            if k < b.len() && b[k] == b'"' {
                out.push((start, k));
            }
            k += 1;
        } else {
            k += 1;
        }
    }
    out
}

/// Every key: the word before ` =` at the start of a line or after `{ ` or `, `.
fn key_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for (k, _) in text.match_indices(" =") {
        let start = b[..k]
            .iter()
            .rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-'))
            .map_or(0, |p| p + 1);
        if start < k {
            out.push((start, k));
        }
    }
    out
}

/// Random text: short, any characters, often TOML's punctuation and lines.
pub fn random_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => garbage(),
        2 => proptest::collection::vec(prop_oneof![pick(LINES), pick(WORDS), garbage()], 0..12)
            .prop_map(|v| v.join("\n")),
        1 => proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

#[test]
fn mutations_change_what_they_name() {
    let t = "a = \"x\"\nb = 10.0.0.1/24\nc = 5";
    let i = 0;
    assert_eq!(apply(t, &Mutation::DeleteLine(i)), "b = 10.0.0.1/24\nc = 5");
    assert_eq!(
        apply(t, &Mutation::Quoted(i, "y".into())),
        "a = \"y\"\nb = 10.0.0.1/24\nc = 5"
    );
    assert_eq!(
        apply(t, &Mutation::Address(i, "::1".into())),
        "a = \"x\"\nb = ::1\nc = 5"
    );
    assert_eq!(
        apply(t, &Mutation::Key(i, "zz".into())),
        "zz = \"x\"\nb = 10.0.0.1/24\nc = 5"
    );
    assert_eq!(apply("é", &Mutation::Truncate(1)), "");
}
