//! The terminal: how wide stdout's is, and whether stderr is one (for a progress line).

use std::io::IsTerminal;

/// The width tables must fit on stdout, in columns: `COLUMNS` when it is set to a positive
/// number (whatever stdout is: `COLUMNS=80 certs inspect | less`), else the width of the
/// terminal stdout is, else `None`: not a terminal, so nothing to fit (a file or a pipe gets
/// every column, as wide as it needs).
pub fn stdout_columns() -> Option<usize> {
    columns_from(
        std::env::var("COLUMNS").ok().as_deref(),
        terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0)),
    )
}

fn columns_from(env: Option<&str>, terminal: Option<usize>) -> Option<usize> {
    env.and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .or(terminal)
}

/// Whether stderr is a terminal someone watches: only then is a progress line drawn.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_env_wins_when_it_is_a_width() {
        assert_eq!(columns_from(Some("80"), Some(200)), Some(80));
        assert_eq!(columns_from(Some(" 100\n"), None), Some(100));
        // Empty, zero or junk COLUMNS says nothing: the terminal's width, or none.
        assert_eq!(columns_from(Some(""), Some(120)), Some(120));
        assert_eq!(columns_from(Some("0"), None), None);
        assert_eq!(columns_from(Some("wide"), Some(90)), Some(90));
        assert_eq!(columns_from(None, None), None);
    }
}
