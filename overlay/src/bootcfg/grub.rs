//! GRUB 2 configs (`grub.cfg`, `loopback.cfg`, ...): a lexer for the commands
//! that matter and [`patch_grub_cfg`].

use super::{args_to_add, note_added, CfgPatch, CfgProblem};

/// GRUB commands that load initrds; Kairos selects between them through a
/// variable (`set initrd=initrdefi` then `$initrd ...`).
fn grub_command_kind(word: &str) -> Option<GrubKind> {
    let var = word.strip_prefix('$').map(|v| v.trim_start_matches('{').trim_end_matches('}'));
    match (word, var) {
        ("initrd" | "initrd16" | "initrdefi", _) => Some(GrubKind::Initrd),
        ("linux" | "linux16" | "linuxefi", _) => Some(GrubKind::Kernel),
        (_, Some(v)) if v.contains("initrd") => Some(GrubKind::Initrd),
        (_, Some(v)) if v.contains("linux") || v.contains("kernel") => Some(GrubKind::Kernel),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrubKind {
    Initrd,
    Kernel,
}

/// One GRUB command found by [`grub_commands`]: its words as byte ranges of
/// the text (quotes and escapes kept) and where it starts.
#[derive(Debug)]
struct GrubCommand {
    start: usize,
    words: Vec<(usize, usize)>,
}

/// Split GRUB script text into simple commands, the way GRUB's lexer does
/// for what matters here: commands end at an unquoted newline, `;`, `{` or
/// `}` (which also end a word, as in GRUB's lexer); a reserved word (`then`, `else`, `do`, `if`, `elif`, `while`,
/// `until`, `!`) starts a new command after it; `\` + newline continues a
/// line; quotes (single and double, across lines too) and `\` escapes are
/// honoured; `#` at the start of a word comments out the rest of the line.
fn grub_commands(text: &str) -> Vec<GrubCommand> {
    let b = text.as_bytes();
    let mut commands = Vec::new();
    let mut cur = GrubCommand { start: 0, words: Vec::new() };
    let mut i = 0;
    let end_command = |cur: &mut GrubCommand, commands: &mut Vec<GrubCommand>, next: usize| {
        let done = std::mem::replace(cur, GrubCommand { start: next, words: Vec::new() });
        if !done.words.is_empty() {
            commands.push(done);
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' if b.get(i + 1) == Some(&b'\n') => i += 2,
            b'\\' if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') => i += 3,
            // Every blank but the newline (form feed included: the word
            // scanner below stops at any ASCII blank, so one left to it
            // would make an empty word forever; found by fuzz/boot_config).
            c if c.is_ascii_whitespace() && c != b'\n' => i += 1,
            b'\n' | b';' | b'{' | b'}' => {
                i += 1;
                end_command(&mut cur, &mut commands, i);
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {
                // A word: up to unquoted whitespace or a separator.
                let start = i;
                let (mut single, mut double) = (false, false);
                while i < b.len() {
                    let c = b[i];
                    if single {
                        single = c != b'\'';
                    } else if c == b'\\' {
                        i += 1;
                    } else if double {
                        double = c != b'"';
                    } else if c == b'\'' {
                        single = true;
                    } else if c == b'"' {
                        double = true;
                    } else if c.is_ascii_whitespace() || matches!(c, b';' | b'{' | b'}') {
                        break;
                    } else if c == b'$' && b.get(i + 1) == Some(&b'{') {
                        // ${name}: its braces are part of the word.
                        match text[i..].find('}') {
                            Some(off) => i += off,
                            None => i = b.len() - 1,
                        }
                    }
                    i += 1;
                }
                let end = i.min(b.len());
                if cur.words.is_empty() {
                    cur.start = start;
                }
                cur.words.push((start, end));
                let word = &text[start..end];
                if cur.words.len() == 1
                    && matches!(word, "then" | "else" | "do" | "if" | "elif" | "while" | "until" | "!")
                {
                    end_command(&mut cur, &mut commands, end);
                }
            }
        }
    }
    end_command(&mut cur, &mut commands, b.len());
    commands
}

/// A GRUB word without its quotes and escapes: `"(cd0)/boot/initrd"` ->
/// `(cd0)/boot/initrd`.
fn grub_unquote(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let (mut single, mut double) = (false, false);
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => match chars.next() {
                Some('\n') | None => {}
                Some('\r') => {}
                Some(n) => out.push(n),
            },
            c => out.push(c),
        }
    }
    out
}

/// `($root)/boot/initrd` -> `Some("($root)")`: the overlay is named on the
/// same device as the entry's first initrd.
fn grub_device_prefix(arg: &str) -> Option<&str> {
    if arg.starts_with('(') {
        arg.find(')').map(|end| &arg[..=end])
    } else {
        None
    }
}

fn names_overlay(arg: &str, overlay: &str) -> bool {
    arg == overlay || grub_device_prefix(arg).is_some_and(|p| &arg[p.len()..] == overlay)
}

/// 1-based line number of byte `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Append `overlay` (an absolute ISO path such as `/boot/edgeiso.img`) to
/// every GRUB `initrd`/`initrd16`/`initrdefi`/`$initrd` command, wherever it
/// stands: on its own line, after `;`, `{`, `then`, `else` or `do`, or
/// continued over several lines with `\`. An initrd command that cannot be
/// patched safely (no file, or a first path that is a variable and so may
/// name another device) is left as it is and listed in
/// [`CfgPatch::problems`].
///
/// Every kernel command (`linux`, `linux16`, `linuxefi`, `$linux`) that names
/// a kernel gets the `kernel_args` it lacks appended after its last argument
/// (see [`args_to_add`]); `&[]` adds none.
pub fn patch_grub_cfg(text: &str, overlay: &str, kernel_args: &[String]) -> CfgPatch {
    let (mut initrd_lines, mut patched_lines, mut kernel_lines, mut kernel_args_lines) = (0, 0, 0, 0);
    let mut kernel_args_added = Vec::new();
    let mut problems = Vec::new();
    let mut inserts: Vec<(usize, String)> = Vec::new();
    for cmd in grub_commands(text) {
        let (ws, we) = cmd.words[0];
        match grub_command_kind(&grub_unquote(&text[ws..we])) {
            Some(GrubKind::Kernel) => {
                kernel_lines += 1;
                // words[1] is the kernel image; a command without one boots nothing.
                if kernel_args.is_empty() || cmd.words.len() < 2 {
                    continue;
                }
                let existing: Vec<String> = cmd.words[2..].iter().map(|&(s, e)| grub_unquote(&text[s..e])).collect();
                let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
                let add = args_to_add(&existing, kernel_args);
                if add.is_empty() {
                    continue;
                }
                let (_, last_end) = *cmd.words.last().expect("a command has a word");
                inserts.push((last_end, format!(" {}", add.join(" "))));
                kernel_args_lines += 1;
                note_added(&mut kernel_args_added, &add, kernel_args);
            }
            Some(GrubKind::Initrd) => {
                initrd_lines += 1;
                let args: Vec<String> = cmd.words[1..].iter().map(|&(s, e)| grub_unquote(&text[s..e])).collect();
                if args.iter().any(|a| names_overlay(a, overlay)) {
                    continue;
                }
                let line = line_of(text, cmd.start);
                let Some(first) = args.first() else {
                    problems.push(CfgProblem { line, reason: format!("`{}` names no initrd file", &text[ws..we]) });
                    continue;
                };
                let device = match grub_device_prefix(first) {
                    Some(d) => d,
                    None if first.starts_with('$') => {
                        problems.push(CfgProblem {
                            line,
                            reason: format!(
                                "the first initrd path {first:?} is a variable, so the device the overlay must be \
                                 loaded from is unknown; write it as ($dev)/path or a plain path"
                            ),
                        });
                        continue;
                    }
                    None => "",
                };
                let (_, last_end) = *cmd.words.last().expect("a command has a word");
                inserts.push((last_end, format!(" {device}{overlay}")));
                patched_lines += 1;
            }
            None => {}
        }
    }
    let mut out = String::with_capacity(text.len() + inserts.len() * (overlay.len() + 16));
    let mut at = 0;
    for (pos, ins) in inserts {
        out.push_str(&text[at..pos]);
        out.push_str(&ins);
        at = pos;
    }
    out.push_str(&text[at..]);
    CfgPatch { text: out, initrd_lines, patched_lines, kernel_lines, kernel_args_lines, kernel_args_added, problems }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootcfg::test_support::{live_args, OVERLAY};

    /// The live-ISO grub.cfg Kairos/AuroraBoot ship (trimmed), which picks the
    /// loader commands through variables.
    const KAIROS_GRUB: &str = r#"search --file --set=root /boot/kernel
set default=0
set timeout=10
set timeout_style=menu
set linux=linux
set initrd=initrd
if [ "${grub_cpu}" = "x86_64" -o "${grub_cpu}" = "i386" -o "${grub_cpu}" = "arm64" ];then
    if [ "${grub_platform}" = "efi" ]; then
        if [ "${grub_cpu}" != "arm64" ]; then
            set linux=linuxefi
            set initrd=initrdefi
        fi
    fi
fi
if [ "${grub_platform}" = "efi" ]; then
    echo "Please press 't' to show the boot menu on this console"
fi
set font=($root)/boot/${grub_cpu}/loader/grub2/fonts/unicode.pf2
if [ -f ${font} ];then
    loadfont ${font}
fi
menuentry "Kairos" --class os --unrestricted {
    echo Loading kernel...
    $linux ($root)/boot/kernel cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs console=tty1 console=ttyS0 rd.cos.disable vga=795 nomodeset install-mode
    echo Loading initrd...
    $initrd ($root)/boot/initrd
}

menuentry "Kairos (manual)" --class os --unrestricted {
    echo Loading kernel...
    $linux ($root)/boot/kernel cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs console=tty1 console=ttyS0 rd.cos.disable vga=795 nomodeset
    echo Loading initrd...
    $initrd ($root)/boot/initrd
}
"#;

    #[test]
    fn blanks_of_every_kind_end_a_word() {
        // fuzz/artifacts: a form feed between words made the parser push
        // empty words until memory ran out.
        let text = "menuentry x {\n  linux\x0c/boot/kernel\x0b quiet\n  initrd\x0c/boot/initrd\n}\n";
        let p = patch_grub_cfg(text, "/boot/overlay.img", &[]);
        assert_eq!(p.kernel_lines, 1);
        assert_eq!(p.initrd_lines, 1);
    }

    #[test]
    fn kairos_grub_cfg_gains_the_overlay_on_the_same_device() {
        let p = patch_grub_cfg(KAIROS_GRUB, OVERLAY, &[]);
        assert_eq!(p.initrd_lines, 2);
        assert_eq!(p.patched_lines, 2);
        assert_eq!(p.kernel_lines, 2);
        assert_eq!(p.text.matches("    $initrd ($root)/boot/initrd ($root)/boot/edgeiso.img\n").count(), 2);
        // `set initrd=initrd` is an assignment, not a command.
        assert!(p.text.contains("set initrd=initrdefi\n"));
        assert_eq!(strip_overlay(&p.text), KAIROS_GRUB);
    }

    fn strip_overlay(text: &str) -> String {
        text.replace(" ($root)/boot/edgeiso.img", "").replace(" /boot/edgeiso.img", "")
    }

    #[test]
    fn grub_mkrescue_style_cfg_and_idempotence() {
        let cfg = "set timeout=0\r\nmenuentry \"Edge live\" {\r\n\tlinux /boot/vmlinuz console=ttyS0\r\n\tinitrd /boot/initrd.img\r\n}\r\nmenuentry \"two initrds\" {\r\n\tlinux16 /boot/vmlinuz\r\n\tinitrd16 /boot/ucode.img /boot/initrd.img   # microcode first\r\n}\r\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &[]);
        assert_eq!(p.patched_lines, 2);
        assert!(p.text.contains("\tinitrd /boot/initrd.img /boot/edgeiso.img\r\n"));
        assert!(p
            .text
            .contains("\tinitrd16 /boot/ucode.img /boot/initrd.img /boot/edgeiso.img   # microcode first\r\n"));
        let again = patch_grub_cfg(&p.text, OVERLAY, &[]);
        assert_eq!(again.text, p.text);
        assert_eq!(again.patched_lines, 0);
        assert_eq!(again.initrd_lines, 2);
    }

    #[test]
    fn grub_linuxefi_initrdefi_and_semicolons() {
        let cfg = "menuentry x {\n  linuxefi /k quiet\n  initrdefi /i\n}\nmenuentry y { linux /k; initrd /i; boot; }\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &[]);
        assert!(p.text.contains("  initrdefi /i /boot/edgeiso.img\n"));
        // A one-line entry: the commands after `{` and `;` are commands too.
        assert!(p.text.contains("menuentry y { linux /k; initrd /i /boot/edgeiso.img; boot; }\n"), "{}", p.text);
        assert_eq!((p.kernel_lines, p.initrd_lines, p.patched_lines), (2, 2, 2));
        assert!(p.problems.is_empty());
        let cfg = "initrd /i;boot\n";
        assert_eq!(patch_grub_cfg(cfg, OVERLAY, &[]).text, "initrd /i /boot/edgeiso.img;boot\n");
        let cfg = "menuentry z {linux /k\ninitrd /i}\n";
        assert_eq!(patch_grub_cfg(cfg, OVERLAY, &[]).text, "menuentry z {linux /k\ninitrd /i /boot/edgeiso.img}\n");
    }

    #[test]
    fn grub_initrd_after_then_else_do() {
        let cfg = "if [ x = y ]; then initrd /a; fi\nif true; then linux /k\nelse initrd /b; fi\n\
                   for i in 1; do initrd16 /c; done\nif [ -f /x ]\nthen\n  $initrd /d\nfi\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &[]);
        assert_eq!(p.initrd_lines, 4, "{}", p.text);
        assert_eq!(p.patched_lines, 4, "{}", p.text);
        assert_eq!(
            p.text,
            "if [ x = y ]; then initrd /a /boot/edgeiso.img; fi\nif true; then linux /k\nelse initrd /b /boot/edgeiso.img; fi\n\
             for i in 1; do initrd16 /c /boot/edgeiso.img; done\nif [ -f /x ]\nthen\n  $initrd /d /boot/edgeiso.img\nfi\n"
        );
        assert_eq!(strip_overlay(&p.text), cfg);
        // `then`, `echo` arguments and quoted text are not commands.
        let cfg = "echo then initrd /x\nmenuentry \"a; initrd /y\" { linux /k; }\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &[]);
        assert_eq!((p.text.as_str(), p.initrd_lines), (cfg, 0));
    }

    #[test]
    fn grub_continued_initrd_gets_the_overlay_after_its_last_file() {
        let cfg = "menuentry c {\n  linux /k\n  initrd /a \\\n     /b\n  boot\n}\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &[]);
        assert_eq!(p.text, "menuentry c {\n  linux /k\n  initrd /a \\\n     /b /boot/edgeiso.img\n  boot\n}\n");
        assert_eq!(patch_grub_cfg(&p.text, OVERLAY, &[]).patched_lines, 0);
        // CRLF continuation.
        let p = patch_grub_cfg("initrd /a \\\r\n /b\r\n", OVERLAY, &[]);
        assert_eq!(p.text, "initrd /a \\\r\n /b /boot/edgeiso.img\r\n");
    }

    #[test]
    fn grub_quoted_first_initrd_keeps_its_device() {
        let p = patch_grub_cfg("  initrd \"(cd0)/boot/initrd\"\n", OVERLAY, &[]);
        assert_eq!(p.text, "  initrd \"(cd0)/boot/initrd\" (cd0)/boot/edgeiso.img\n");
        let p = patch_grub_cfg("initrd '($root)/boot/initrd' /x\n", OVERLAY, &[]);
        assert_eq!(p.text, "initrd '($root)/boot/initrd' /x ($root)/boot/edgeiso.img\n");
        // Quoted overlay counts as already there.
        assert_eq!(
            patch_grub_cfg(&p.text.replace(" ($root)/boot/edgeiso.img", " \"($root)/boot/edgeiso.img\""), OVERLAY, &[])
                .patched_lines,
            0
        );
    }

    #[test]
    fn grub_variable_first_initrd_and_empty_initrd_are_problems() {
        let cfg = "menuentry v {\n  linux /k\n  initrd $ipath\n}\nmenuentry w {\n  initrd \"${prefix}/initrd\"\n  initrd\n}\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &[]);
        assert_eq!(p.text, cfg, "nothing patched");
        assert_eq!(p.initrd_lines, 3);
        assert_eq!(p.patched_lines, 0);
        let lines: Vec<usize> = p.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 6, 7]);
        assert!(p.problems[0].reason.contains("\"$ipath\" is a variable"), "{:?}", p.problems);
        assert!(p.problems[2].reason.contains("names no initrd file"), "{:?}", p.problems);
        // A variable inside a device prefix is fine: the overlay goes on the same device.
        let p = patch_grub_cfg("initrd ($dev)/i\n", OVERLAY, &[]);
        assert_eq!((p.text.as_str(), p.problems.len()), ("initrd ($dev)/i ($dev)/boot/edgeiso.img\n", 0));
    }

    #[test]
    fn grub_lines_that_only_mention_initrd_are_untouched() {
        let cfg = "# initrd /boot/initrd\necho initrd\nset initrd=initrd\nsearch --file /boot/initrd\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &[]);
        assert_eq!(p.text, cfg);
        assert_eq!(p.initrd_lines, 0);
        assert!(!p.boots_a_kernel());
    }

    #[test]
    fn grub_text_without_trailing_newline() {
        let p = patch_grub_cfg("initrd /boot/initrd", OVERLAY, &[]);
        assert_eq!(p.text, "initrd /boot/initrd /boot/edgeiso.img");
    }

    #[test]
    fn kairos_grub_kernel_commands_get_the_live_args_at_the_end() {
        let p = patch_grub_cfg(KAIROS_GRUB, OVERLAY, &live_args());
        assert_eq!((p.kernel_lines, p.kernel_args_lines, p.patched_lines), (2, 2, 2));
        assert_eq!(p.kernel_args_added, live_args());
        assert!(p.text.contains("vga=795 nomodeset install-mode rd.neednet=1 ip=dhcp\n"), "{}", p.text);
        assert!(p.text.contains("vga=795 nomodeset rd.neednet=1 ip=dhcp\n"), "{}", p.text);
        // Everything else is as it was; `set linux=linuxefi` is no command.
        assert_eq!(strip_overlay(&p.text).replace(" rd.neednet=1 ip=dhcp", ""), KAIROS_GRUB);
        // Idempotent.
        let again = patch_grub_cfg(&p.text, OVERLAY, &live_args());
        assert_eq!(again.text, p.text);
        assert_eq!((again.kernel_args_lines, again.patched_lines), (0, 0));
        assert!(again.kernel_args_added.is_empty());
    }

    #[test]
    fn grub_one_liners_and_continuations_get_the_args_after_their_last_argument() {
        let args = live_args();
        let cfg = "menuentry y { linux /k quiet; initrd /i; boot; }\nmenuentry z {linux16 /k\ninitrd16 /i}\n\
                   if true; then linuxefi /k; fi\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &args);
        assert_eq!(
            p.text,
            "menuentry y { linux /k quiet rd.neednet=1 ip=dhcp; initrd /i /boot/edgeiso.img; boot; }\n\
             menuentry z {linux16 /k rd.neednet=1 ip=dhcp\ninitrd16 /i /boot/edgeiso.img}\n\
             if true; then linuxefi /k rd.neednet=1 ip=dhcp; fi\n"
        );
        assert_eq!(p.kernel_args_lines, 3);
        // A continued kernel command: after its last word, not on its first line.
        let cfg = "menuentry c {\n  linux /k \\\n     console=ttyS0   # serial\r\n  initrd /i\n}\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &args);
        assert_eq!(
            p.text,
            "menuentry c {\n  linux /k \\\n     console=ttyS0 rd.neednet=1 ip=dhcp   # serial\r\n  initrd /i /boot/edgeiso.img\n}\n"
        );
        // No newline at the end; quoted arguments are words; `echo linux` is not a kernel.
        let p = patch_grub_cfg("echo linux /k\nlinux \"/k\" 'a b'", OVERLAY, &args);
        assert_eq!(p.text, "echo linux /k\nlinux \"/k\" 'a b' rd.neednet=1 ip=dhcp");
        // A kernel command without a kernel boots nothing and is left alone.
        let p = patch_grub_cfg("linux\n", OVERLAY, &args);
        assert_eq!((p.text.as_str(), p.kernel_args_lines), ("linux\n", 0));
    }

    #[test]
    fn grub_args_already_present_are_not_added_again_and_any_ip_is_kept() {
        let args = live_args();
        let p = patch_grub_cfg("linux /k ip=dhcp quiet \"rd.neednet=1\"\n", OVERLAY, &args);
        assert_eq!((p.text.as_str(), p.kernel_args_lines), ("linux /k ip=dhcp quiet \"rd.neednet=1\"\n", 0));
        // The entry configures the network itself: its ip= stays, ours is not added.
        let cfg = "linux /k ip=10.0.0.2::10.0.0.1:255.255.255.0::eth0:none quiet\n";
        let p = patch_grub_cfg(cfg, OVERLAY, &args);
        assert_eq!(p.text, "linux /k ip=10.0.0.2::10.0.0.1:255.255.255.0::eth0:none quiet rd.neednet=1\n");
        assert_eq!(p.kernel_args_added, ["rd.neednet=1"]);
        // The entry's own value of a key wins: ours would override it.
        let p = patch_grub_cfg("linux /k rd.neednet=0\n", OVERLAY, &args);
        assert_eq!(p.text, "linux /k rd.neednet=0 ip=dhcp\n");
        // The kernel image itself is not an argument.
        let p = patch_grub_cfg("linux ip=dhcp\n", OVERLAY, &args);
        assert_eq!(p.text, "linux ip=dhcp rd.neednet=1 ip=dhcp\n");
        // No arguments asked: nothing changes.
        assert_eq!(patch_grub_cfg("linux /k\n", OVERLAY, &[]).text, "linux /k\n");
    }
}
