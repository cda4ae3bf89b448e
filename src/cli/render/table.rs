//! Text tables and wrapped lines fitted to a terminal width: the columns that may go are left
//! out, then wrapped columns narrow, then paths and cut text; preflight's hanging lines.

use std::io::{self, Write};

/// How a column gives way when its table must fit a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// As wide as its widest cell, always (dates, roles, residual times, codes, URLs).
    Fixed,
    /// A path: its leading directories give way first (`…/pki/etcd/server.crt`).
    Path,
    /// Cut at the right (`CN=system:kube-contr…`).
    Cut,
    /// Continued on the next lines, broken after `,` or at spaces (only as the last column;
    /// elsewhere it is cut).
    Wrap,
}

/// A column: its header, how it narrows, and when it is left out.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    name: String,
    fit: Fit,
    /// Narrowest it gets before columns are left out (never below its header).
    min: usize,
    /// Left out to fit a narrow terminal, the lowest first; `None`: always shown.
    drop: Option<u8>,
    /// A last, wrapped column that rather than go below `min` moves under its row, indented to
    /// the second column, as wide as the terminal lets it (a finding's message).
    below: bool,
}

/// Narrowest defaults: a path keeps `…/pki/apiserver-etcd-client.crt`.
const PATH_MIN: usize = 32;
const CUT_MIN: usize = 16;
const WRAP_MIN: usize = 24;
/// Three spaces between columns, like kubeadm's.
const GAP: usize = 3;

impl Col {
    pub(crate) fn keep(name: &str, fit: Fit) -> Col {
        let min = match fit {
            Fit::Fixed => usize::MAX,
            Fit::Path => PATH_MIN,
            Fit::Cut => CUT_MIN,
            Fit::Wrap => WRAP_MIN,
        };
        Col {
            name: name.to_string(),
            fit,
            min,
            drop: None,
            below: false,
        }
    }

    pub(crate) fn drop(name: &str, fit: Fit, rank: u8) -> Col {
        Col {
            drop: Some(rank),
            ..Col::keep(name, fit)
        }
    }

    pub(crate) fn min(self, min: usize) -> Col {
        Col { min, ..self }
    }

    pub(crate) fn below(self) -> Col {
        Col {
            below: true,
            ..self
        }
    }
}

/// Which columns a table shows, how wide, and the one moved under each row.
struct Layout {
    shown: Vec<usize>,
    widths: Vec<usize>,
    below: Option<usize>,
}

/// A left-aligned text table, columns separated by three spaces like kubeadm's. Given a width,
/// it fits: the columns that may go are left out, lowest rank first, until the rest fit at their
/// narrowest; then wrapped columns narrow, then paths and cut text, the widest first.
pub(crate) struct Table {
    cols: Vec<Col>,
    pub(crate) rows: Vec<Vec<String>>,
    wide: bool,
}

impl Table {
    pub(crate) fn new(mut cols: Vec<Col>, wide: bool, wide_cols: &[&str]) -> Table {
        if wide {
            cols.extend(wide_cols.iter().map(|n| Col::keep(n, Fit::Fixed)));
        }
        Table {
            cols,
            rows: Vec::new(),
            wide,
        }
    }

    pub(crate) fn row(&mut self, mut cells: Vec<String>, wide_cells: Vec<String>) {
        if self.wide {
            cells.extend(wide_cells);
        }
        self.rows.push(cells);
    }

    fn layout(&self, width: Option<usize>) -> Layout {
        let natural: Vec<usize> = (0..self.cols.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .chain([self.cols[i].name.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut shown: Vec<usize> = (0..self.cols.len()).collect();
        let Some(width) = width else {
            return Layout {
                shown,
                widths: natural,
                below: None,
            };
        };
        let min = |i: usize| {
            let c = &self.cols[i];
            natural[i].min(c.min.max(c.name.chars().count()))
        };
        let total = |shown: &[usize], w: &dyn Fn(usize) -> usize| {
            shown.iter().map(|&i| w(i)).sum::<usize>() + GAP * shown.len().saturating_sub(1)
        };
        let mut below = None;
        while total(&shown, &min) > width {
            let last = shown.last().copied();
            if let Some(i) = last.filter(|&i| self.cols[i].below && below.is_none()) {
                below = Some(i);
                shown.pop();
                continue;
            }
            let victim = shown
                .iter()
                .enumerate()
                .filter_map(|(at, &i)| self.cols[i].drop.map(|rank| (rank, at)))
                .min();
            match victim {
                Some((_, at)) => {
                    shown.remove(at);
                }
                None => break,
            }
        }
        let mut widths: Vec<usize> = shown.iter().map(|&i| natural[i]).collect();
        let last = shown.len().saturating_sub(1);
        let fit = |at: usize| match self.cols[shown[at]].fit {
            Fit::Wrap if at != last => Fit::Cut,
            f => f,
        };
        let mut excess = (widths.iter().sum::<usize>() + GAP * last).saturating_sub(width);
        // Wrapping loses nothing, so wrapped columns narrow first; then the widest of the rest.
        // Below the minimums (a very narrow terminal) everything flexible narrows to 8.
        for (only_wrap, floor) in [(true, None), (false, None), (false, Some(8))] {
            while excess > 0 {
                let candidate = (0..widths.len())
                    .filter(|&at| fit(at) != Fit::Fixed && (!only_wrap || fit(at) == Fit::Wrap))
                    .filter(|&at| widths[at] > floor.unwrap_or_else(|| min(shown[at])))
                    .max_by_key(|&at| (widths[at], std::cmp::Reverse(at)));
                let Some(at) = candidate else { break };
                widths[at] -= 1;
                excess -= 1;
            }
        }
        Layout {
            shown,
            widths,
            below,
        }
    }

    pub(crate) fn write(&self, out: &mut dyn Write, width: Option<usize>) -> io::Result<()> {
        let Layout {
            shown,
            widths,
            below,
        } = self.layout(width);
        let last = shown.len().saturating_sub(1);
        let header: Vec<String> = shown.iter().map(|&i| self.cols[i].name.clone()).collect();
        for (n, r) in std::iter::once(&header).chain(&self.rows).enumerate() {
            // Each cell as lines: one, or several for a wrapped last column.
            let cells: Vec<Vec<String>> = shown
                .iter()
                .enumerate()
                .map(|(at, &i)| {
                    let cell = if n == 0 {
                        header[at].as_str()
                    } else {
                        r.get(i).map_or("", String::as_str)
                    };
                    let w = widths[at];
                    if width.is_none() || cell.chars().count() <= w {
                        return vec![cell.to_string()];
                    }
                    match self.cols[i].fit {
                        Fit::Wrap if at == last => wrap(cell, Some(w), 0),
                        Fit::Path => vec![shorten_path(cell, w)],
                        _ => vec![cut(cell, w)],
                    }
                })
                .collect();
            let height = cells.iter().map(Vec::len).max().unwrap_or(1);
            for k in 0..height {
                let mut line = String::new();
                for (at, lines) in cells.iter().enumerate() {
                    let cell = lines.get(k).map_or("", String::as_str);
                    line.push_str(cell);
                    if at < last {
                        let pad = widths[at].saturating_sub(cell.chars().count()) + GAP;
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
                writeln!(out, "{}", line.trim_end())?;
            }
            if let (Some(i), true) = (below, n > 0) {
                let indent = widths.first().map_or(0, |w| w + GAP);
                let text = r.get(i).map_or("", String::as_str);
                let room = width.map(|w| w.saturating_sub(indent).max(20));
                for line in wrap(text, room, 0) {
                    writeln!(out, "{:indent$}{line}", "")?;
                }
            }
        }
        Ok(())
    }
}

/// `path` in at most `width` columns: leading directories become `…` (`…/pki/etcd/server.crt`);
/// then a `#fragment` is cut at its end (`…/admin.conf#users[kub…`); then the start of the file
/// name.
fn shorten_path(path: &str, width: usize) -> String {
    if path.chars().count() <= width {
        return path.to_string();
    }
    let (dirs, name) = match path
        .split_once('#')
        .map(|(p, _)| p)
        .unwrap_or(path)
        .rfind('/')
    {
        Some(slash) => path.split_at(slash + 1),
        None => ("", path),
    };
    let name_len = name.chars().count();
    // Keep as many trailing directories as fit after `…/`.
    let mut keep = dirs.len();
    for (at, _) in dirs.char_indices().filter(|&(_, c)| c == '/') {
        let tail = &dirs[at + 1..];
        if 2 + tail.chars().count() + name_len <= width {
            keep = at + 1;
            break;
        }
    }
    if keep < dirs.len() || 2 + name_len <= width {
        return format!("…/{}{name}", &dirs[keep.min(dirs.len())..]);
    }
    // `…/admin.conf#users[kub…]`: the file named, its fragment cut.
    if let Some((file, fragment)) = name.split_once('#') {
        let room = width.saturating_sub(2 + file.chars().count());
        if room >= 2 {
            return format!("…/{file}{}", cut(&format!("#{fragment}"), room));
        }
        return format!("{}#…", left_cut(file, width.saturating_sub(2)));
    }
    left_cut(name, width)
}

/// The last `width - 1` characters after `…`.
fn left_cut(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    let skip = n - width.saturating_sub(1);
    let mut out = String::from("…");
    out.extend(s.chars().skip(skip));
    out
}

/// The first `width - 1` characters, then `…`.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` in lines of at most `width` columns, the lines after the first indented by `indent`
/// spaces (and as much narrower). With no width, the text as one line.
pub(crate) fn wrap(text: &str, width: Option<usize>, indent: usize) -> Vec<String> {
    let Some(width) = width else {
        return vec![text.to_string()];
    };
    let mut lines = wrap_lines(text, width, width.saturating_sub(indent));
    for line in lines.iter_mut().skip(1) {
        line.insert_str(0, &" ".repeat(indent));
    }
    lines
}

/// `head` then `text`, wrapped to `width`, the lines after the first indented by `indent`:
/// preflight's `FAIL  check-id   message` whose message continues under itself. When `head`
/// leaves too little room, the text starts on the next line. With no width, one line.
pub(crate) fn hanging(head: &str, text: &str, indent: usize, width: Option<usize>) -> Vec<String> {
    let Some(width) = width else {
        return vec![format!("{head}{text}")];
    };
    let rest = width.saturating_sub(indent);
    let pad = " ".repeat(indent);
    let first = width.saturating_sub(head.chars().count());
    let mut out = Vec::new();
    let lines = if first * 2 < rest.min(text.chars().count()) {
        out.push(head.trim_end().to_string());
        wrap_lines(text, rest, rest)
    } else {
        wrap_lines(text, first, rest)
    };
    for line in lines {
        if out.is_empty() {
            out.push(format!("{head}{line}").trim_end().to_string());
        } else {
            out.push(format!("{pad}{line}").trim_end().to_string());
        }
    }
    out
}

/// `text` broken at spaces into lines of at most `first` columns, then `rest`; a word longer
/// than a line breaks after a `,` or a `/` (a SAN list, a path), else anywhere.
fn wrap_lines(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let room = |lines: &Vec<String>| if lines.is_empty() { first } else { rest }.max(1);
    let mut line = String::new();
    let mut len = 0;
    for word in text.split(' ') {
        let mut word = word;
        let sep = usize::from(len > 0);
        if len + sep + word.chars().count() <= room(&lines) {
            if sep == 1 {
                line.push(' ');
            }
            line.push_str(word);
            len += sep + word.chars().count();
            continue;
        }
        if len > 0 {
            lines.push(std::mem::take(&mut line));
        }
        // A word longer than a whole line: pieces broken after `,` or `/` where possible.
        while word.chars().count() > room(&lines) {
            let limit = word
                .char_indices()
                .nth(room(&lines))
                .map_or(word.len(), |(b, _)| b);
            let at = word[..limit]
                .rfind([',', '/'])
                .map(|b| b + 1)
                .unwrap_or(limit);
            lines.push(word[..at].to_string());
            word = &word[at..];
        }
        line.push_str(word);
        len = word.chars().count();
    }
    if len > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_shorten_from_the_left() {
        let p = "/etc/kubernetes/pki/etcd/server.crt";
        assert_eq!(shorten_path(p, 80), p);
        assert_eq!(shorten_path(p, 30), "…/pki/etcd/server.crt");
        assert_eq!(shorten_path(p, 20), "…/etcd/server.crt");
        assert_eq!(shorten_path(p, 12), "…/server.crt");
        assert_eq!(shorten_path(p, 8), "…ver.crt");
        let kc = "/etc/kubernetes/controller-manager.conf#users[system:kube-controller-manager]";
        assert_eq!(
            shorten_path(kc, 66),
            "…/controller-manager.conf#users[system:kube-controller-manager]"
        );
        assert_eq!(
            shorten_path(kc, 40),
            "…/controller-manager.conf#users[system:…"
        );
        assert_eq!(shorten_path(kc, 20), "…ller-manager.conf#…");
        assert_eq!(shorten_path("a-long-file-name.crt", 10), "…-name.crt");
    }

    #[test]
    fn wraps_at_spaces_then_commas_and_slashes() {
        assert_eq!(
            wrap("expired 2y ago and more", Some(12), 2),
            ["expired 2y", "  ago and", "  more"]
        );
        assert_eq!(
            wrap(
                "master1,kubernetes,kubernetes.default,10.96.0.1",
                Some(20),
                0
            ),
            ["master1,kubernetes,", "kubernetes.default,", "10.96.0.1"]
        );
        assert_eq!(
            wrap("see /etc/kubernetes/pki/apiserver.crt now", Some(16), 0),
            ["see", "/etc/kubernetes/", "pki/", "apiserver.crt", "now"]
        );
        assert_eq!(wrap("", Some(10), 2), [""]);
        assert_eq!(wrap("one line", None, 4), ["one line"]);
    }

    #[test]
    fn hanging_text_continues_under_itself() {
        let head = format!("{:<5} {:<10} ", "FAIL", "ca-valid");
        assert_eq!(
            hanging(&head, "CA ca.pem is not valid before 2026", 17, Some(32)),
            [
                "FAIL  ca-valid   CA ca.pem is",
                "                 not valid",
                "                 before 2026"
            ]
        );
        // Too little room after the head: the text starts below it.
        assert_eq!(
            hanging(
                "FAIL  a-very-long-check-id ",
                "some words here",
                6,
                Some(30)
            ),
            ["FAIL  a-very-long-check-id", "      some words here"]
        );
        assert_eq!(hanging("a ", "b c", 2, None), ["a b c"]);
    }

    fn lines(t: &Table, width: Option<usize>) -> Vec<String> {
        let mut out = Vec::new();
        t.write(&mut out, width).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_table_fits_by_leaving_out_low_columns_then_narrowing() {
        let mut t = Table::new(
            vec![
                Col::keep("PATH", Fit::Path),
                Col::drop("DATE", Fit::Fixed, 1),
                Col::keep("LEFT", Fit::Fixed),
                Col::drop("NOTE", Fit::Cut, 0),
            ],
            false,
            &[],
        );
        t.row(
            vec![
                "/etc/kubernetes/pki/apiserver-kubelet-client.crt".into(),
                "Dec 31, 2034 00:00 UTC".into(),
                "8y".into(),
                "a note nobody needs at 60 columns".into(),
            ],
            vec![],
        );
        // No width: every column, as wide as it needs; no trailing spaces.
        let full = lines(&t, None);
        assert_eq!(full[1].len(), 48 + 3 + 22 + 3 + 4 + 3 + 33);
        // 80: NOTE goes first, then everything fits.
        let l = lines(&t, Some(80));
        assert_eq!(
            l[0],
            format!("PATH{}DATE{}LEFT", " ".repeat(47), " ".repeat(21))
        );
        // 60: DATE goes too; the path keeps its end.
        let l = lines(&t, Some(60));
        assert_eq!(l[0].trim_end(), format!("PATH{}LEFT", " ".repeat(47)));
        // 40: the path narrows from the left.
        let l = lines(&t, Some(40));
        assert_eq!(l[1], "…/apiserver-kubelet-client.crt      8y");
        assert!(l.iter().all(|l| l.chars().count() <= 40), "{l:#?}");
    }

    #[test]
    fn a_wrapped_last_column_continues_under_itself() {
        let mut t = Table::new(
            vec![Col::keep("NAME", Fit::Fixed), Col::keep("SANS", Fit::Wrap)],
            false,
            &[],
        );
        t.row(
            vec![
                "etcd".into(),
                "master1,localhost,10.21.22.73,127.0.0.1,::1".into(),
            ],
            vec![],
        );
        assert_eq!(
            lines(&t, Some(30)),
            [
                "NAME   SANS",
                "etcd   master1,localhost,",
                "       10.21.22.73,127.0.0.1,",
                "       ::1"
            ]
        );
    }
}
