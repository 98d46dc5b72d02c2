//! Text from outside (a bundle's names and annotations, a registry's
//! answers) on its way to a terminal, a log or the console. A control
//! character there is never meant: ESC (and C1's CSI) starts an escape
//! sequence that can recolour, retitle or rewrite what an operator reads,
//! a CR or backspace can overwrite a line. One rule for what is refused
//! ([`first_control`]) and one for how it is printed ([`escape`]).

use std::borrow::Cow;
use std::fmt::Write;

/// The characters no name and no printed text may carry as they are: C0
/// (U+0000-U+001F), DEL (U+007F) and C1 (U+0080-U+009F, which holds CSI,
/// U+009B) - Unicode's `Cc`, Rust's [`char::is_control`] - and the
/// bidirectional overrides and isolates that reorder what is shown
/// (U+202A-U+202E, U+2066-U+2069).
pub fn is_unprintable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The first character of `s` that [`is_unprintable`], if any: a name that
/// has one is refused.
pub fn first_control(s: &str) -> Option<char> {
    s.chars().find(|&c| is_unprintable(c))
}

/// `s` with every [`is_unprintable`] character written as Rust escapes it
/// (`\n`, `\t`, `\u{1b}`, `\u{9b}`), everything else as it is. Borrowed when
/// there is nothing to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if first_control(s).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unprintable(c) {
            // `escape_debug` would leave a few of these as they are (none
            // of the C0/C1 ones); `escape_unicode` is total.
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => write!(out, "{}", c.escape_unicode()).expect("a String takes any write"),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_line_tricks_never_survive() {
        let hostile = "app\u{1b}[31mred\u{1b}]0;title\u{7}\u{9b}2J\r\u{8}\u{7f}\u{202e}gnp.exe\n";
        let e = escape(hostile);
        assert!(e.chars().all(|c| !is_unprintable(c)), "{e}");
        assert_eq!(e, "app\\u{1b}[31mred\\u{1b}]0;title\\u{7}\\u{9b}2J\\r\\u{8}\\u{7f}\\u{202e}gnp.exe\\n");
        assert_eq!(first_control(hostile), Some('\u{1b}'));
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in ["docker.io/library/nginx:1.25", "ghcr.io/a/b@sha256:00", "é ü 日本 \\ \"", ""] {
            assert!(matches!(escape(s), Cow::Borrowed(x) if x == s));
            assert_eq!(first_control(s), None);
        }
    }
}
