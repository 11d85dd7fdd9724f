//! Text for the drawings: widths estimated in monospace cells (no font metrics needed),
//! shortening and wrapping to a number of cells, and escaping for XML.

/// Font of every text: monospace, so that text widths can be estimated without font metrics.
pub(super) const FONT_FAMILY: &str =
    "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace";
/// Advance of one monospace glyph, in em (0.602 in `DejaVu Sans Mono`), rounded up for safety.
pub(super) const EM: f64 = 0.62;

/// `s` with control characters turned into spaces and the non-characters XML forbids replaced.
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// How many monospace cells `c` takes (2 for East Asian wide characters and emoji).
fn glyph_cols(c: char) -> usize {
    let wide = matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD);
    if wide { 2 } else { 1 }
}

/// How many monospace cells `s` takes.
pub(super) fn cols(s: &str) -> usize {
    s.chars().map(glyph_cols).sum()
}

/// Estimated width in pixels of `s` at font size `size`.
pub(super) fn text_w(s: &str, size: f64) -> f64 {
    cols(s) as f64 * size * EM
}

/// Width in pixels of the widest of `lines` at font size `size`.
pub(super) fn lines_w(lines: &[String], size: f64) -> f64 {
    lines.iter().map(|l| text_w(l, size)).fold(0.0, f64::max)
}

/// `s` shortened to at most `max` cells, ending in `…` when shortened.
pub(super) fn clip(s: &str, max: usize) -> String {
    let max = max.max(1);
    if cols(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = glyph_cols(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `s` cleaned and trimmed, shortened to `max` cells; `?` when nothing is left.
pub(super) fn shown_name(s: &str, max: usize) -> String {
    let s = clean(s);
    if s.trim().is_empty() {
        "?".to_string()
    } else {
        clip(s.trim(), max)
    }
}

/// `s` word-wrapped to lines of at most `width` cells, at most `max_lines` of them (the last
/// one ending in `…` when text was left out). Words longer than a line are split.
pub(super) fn wrap(s: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(1);
    let max_lines = max_lines.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if lines.len() > max_lines {
            break;
        }
        let ww = cols(word);
        if cur_w > 0 && cur_w + 1 + ww <= width {
            cur.push(' ');
            cur.push_str(word);
            cur_w += 1 + ww;
            continue;
        }
        if cur_w > 0 {
            lines.push(std::mem::take(&mut cur));
            cur_w = 0;
        }
        for c in word.chars() {
            let w = glyph_cols(c);
            if cur_w > 0 && cur_w + w > width {
                lines.push(std::mem::take(&mut cur));
                cur_w = 0;
                if lines.len() > max_lines {
                    break;
                }
            }
            cur.push(c);
            cur_w += w;
        }
    }
    if cur_w > 0 {
        lines.push(cur);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.pop() {
            lines.push(clip(&format!("{last}…"), width));
        }
    }
    lines
}

/// `s` escaped for XML text and attribute values (`& < > " '`), control characters dropped.
pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => o.push(' '),
            '\u{FFFE}' | '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_helpers_never_panic_and_keep_limits() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("漢字漢字", 5), "漢字…");
        assert_eq!(wrap("", 10, 3), Vec::<String>::new());
        assert_eq!(wrap("a b c", 3, 3), vec!["a b", "c"]);
        assert_eq!(wrap("abcdefgh", 3, 2), vec!["abc", "de…"]);
        let w = wrap(&"word ".repeat(1000), 20, 3);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|l| cols(l) <= 20) && w[2].ends_with('…'));
        assert_eq!(esc("<&>\"'\u{1}"), "&lt;&amp;&gt;&quot;&apos; ");
    }

    #[test]
    fn names_are_cleaned_shortened_and_never_empty() {
        assert_eq!(shown_name("  \u{0}\t ", 10), "?");
        assert_eq!(shown_name(" bsdi\n", 10), "bsdi");
        assert_eq!(shown_name("abcdefgh", 4), "abc…");
    }
}
