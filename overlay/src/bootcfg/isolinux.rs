//! isolinux/syslinux configs: [`patch_isolinux_cfg`] and what it needs to
//! know about labels and their kernels.

use super::{args_to_add, note_added, CfgPatch};

/// Split off the line ending so it can be put back unchanged.
fn split_eol(line: &str) -> (&str, &str) {
    let body = line.trim_end_matches(['\n', '\r']);
    (body, &line[body.len()..])
}

/// Append `overlay` to every isolinux/syslinux initrd list: `initrd=a` on
/// `APPEND`/`KERNEL`/`LINUX` lines becomes `initrd=a,/boot/edgeiso.img`, and
/// `INITRD a` directives become `INITRD a,/boot/edgeiso.img`. Keywords are
/// case-insensitive, as isolinux reads them.
///
/// `kernel_args` go to every label that boots a Linux kernel (`LINUX`, or
/// `KERNEL` with a file that is not a COM32 module, boot sector or the
/// like): appended to the label's (last, i.e. effective) `APPEND` line, or,
/// for a label without one, on a new `APPEND` line after its kernel line,
/// which repeats the global `APPEND`'s arguments the label inherited (an
/// own `APPEND` replaces the global one); not at all when the file has no
/// global `APPEND` (the label may inherit one from an including file).
/// `TEXT HELP` blocks are prose and skipped. The global `APPEND` itself is not
/// changed: it also reaches labels that run COM32 modules.
pub fn patch_isolinux_cfg(text: &str, overlay: &str, kernel_args: &[String]) -> CfgPatch {
    // One output string per input line (line ending included), so kernel
    // arguments can be applied by line afterwards.
    let mut out: Vec<String> = Vec::new();
    let (mut initrd_lines, mut patched_lines, mut kernel_lines) = (0, 0, 0);
    let has_overlay = |list: &str| list.split(',').any(|p| p == overlay);
    let mut labels: Vec<IsolinuxLabel> = Vec::new();
    let mut global_append: Option<usize> = None;
    // Inside `TEXT HELP` ... `ENDTEXT`: prose, not keywords ("Boot from ...").
    let mut in_help_text = false;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let (body, eol) = split_eol(line);
        let indent_len = body.len() - body.trim_start().len();
        let rest = &body[indent_len..];
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let keyword = rest[..word_len].to_ascii_lowercase();
        if in_help_text {
            in_help_text = keyword != "endtext";
            out.push(line.to_string());
            continue;
        }
        if keyword == "text"
            && rest[word_len..].split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case("help"))
        {
            in_help_text = true;
            out.push(line.to_string());
            continue;
        }
        match keyword.as_str() {
            "label" => labels.push(IsolinuxLabel::default()),
            "append" => match labels.last_mut() {
                Some(l) => l.append = Some(n),
                None => global_append = Some(n),
            },
            "linux" | "kernel" => {
                if let Some(l) = labels.last_mut() {
                    let file = rest[word_len..].split_whitespace().next().unwrap_or("");
                    l.kernel = Some(n);
                    l.boots_linux = !file.is_empty() && (keyword == "linux" || isolinux_kernel_is_linux(file));
                }
            }
            // Other ways a label runs something that is not a Linux kernel.
            "boot" | "bss" | "pxe" | "fdimage" | "comboot" | "com32" | "config" | "localboot" => {
                if let Some(l) = labels.last_mut() {
                    l.kernel = Some(n);
                    l.boots_linux = false;
                }
            }
            _ => {}
        }
        match keyword.as_str() {
            "initrd" => {
                initrd_lines += 1;
                let args = &rest[word_len..];
                let list_start = args.len() - args.trim_start().len();
                let list_len = args[list_start..].find(char::is_whitespace).unwrap_or(args.len() - list_start);
                let list = &args[list_start..list_start + list_len];
                if list.is_empty() || has_overlay(list) {
                    out.push(line.to_string());
                    continue;
                }
                let insert_at = indent_len + word_len + list_start + list_len;
                out.push(format!("{},{overlay}{}{eol}", &body[..insert_at], &body[insert_at..]));
                patched_lines += 1;
            }
            "append" | "kernel" | "linux" => {
                if keyword != "append" {
                    kernel_lines += 1;
                }
                // Rebuild the line token by token so spacing stays as it was.
                let mut changed = false;
                let mut seen_initrd = false;
                let mut new_body = String::with_capacity(body.len() + overlay.len() + 1);
                let mut token_start = None;
                let flush = |new_body: &mut String, tok: &str, changed: &mut bool, seen: &mut bool| {
                    // `get`: a token may hold multi-byte characters (found by fuzz/boot_config).
                    if tok.len() > 7 && tok.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("initrd=")) {
                        *seen = true;
                        if !has_overlay(&tok[7..]) {
                            new_body.push_str(tok);
                            new_body.push(',');
                            new_body.push_str(overlay);
                            *changed = true;
                            return;
                        }
                    }
                    new_body.push_str(tok);
                };
                for (i, c) in body.char_indices() {
                    if c.is_whitespace() {
                        if let Some(s) = token_start.take() {
                            flush(&mut new_body, &body[s..i], &mut changed, &mut seen_initrd);
                        }
                        new_body.push(c);
                    } else if token_start.is_none() {
                        token_start = Some(i);
                    }
                }
                if let Some(s) = token_start {
                    flush(&mut new_body, &body[s..], &mut changed, &mut seen_initrd);
                }
                if seen_initrd {
                    initrd_lines += 1;
                }
                if changed {
                    patched_lines += 1;
                    out.push(new_body + eol);
                } else {
                    out.push(line.to_string());
                }
            }
            _ => out.push(line.to_string()),
        }
    }

    let (mut kernel_args_lines, mut kernel_args_added) = (0, Vec::new());
    if !kernel_args.is_empty() {
        // The arguments of an APPEND line (after the keyword).
        fn append_args(out: &[String], n: usize) -> Vec<String> {
            let (body, _) = split_eol(&out[n]);
            body.split_whitespace().skip(1).map(str::to_string).collect()
        }
        // Lines to add after a given line: (after, text).
        let mut new_lines: Vec<(usize, String)> = Vec::new();
        for label in labels.iter().filter(|l| l.boots_linux) {
            let kernel = label.kernel.expect("a label that boots Linux has a kernel line");
            match label.append {
                Some(n) => {
                    let existing = append_args(&out, n);
                    // `APPEND -`: no arguments (not even the global ones).
                    let none = existing.len() == 1 && existing[0] == "-";
                    let existing: Vec<&str> =
                        if none { Vec::new() } else { existing.iter().map(String::as_str).collect() };
                    let add = args_to_add(&existing, kernel_args);
                    if add.is_empty() {
                        continue;
                    }
                    let (body, eol) = split_eol(&out[n]);
                    let body = body.to_string();
                    let eol = eol.to_string();
                    let kept = body.trim_end();
                    let trailing = &body[kept.len()..];
                    out[n] = if none {
                        let dash = kept.len() - 1;
                        format!("{}{}{trailing}{eol}", &kept[..dash], add.join(" "))
                    } else {
                        format!("{kept} {}{trailing}{eol}", add.join(" "))
                    };
                    kernel_args_lines += 1;
                    note_added(&mut kernel_args_added, &add, kernel_args);
                }
                // A label without its own APPEND in a file without a global
                // one may inherit its arguments from a file that INCLUDEs this
                // one; an APPEND of ours would replace them and the entry
                // would no longer boot. Leave it (the report's count of
                // changed entries shows it).
                None if global_append.is_none() => {}
                None => {
                    let inherited = match global_append.map(|g| append_args(&out, g)) {
                        Some(a) if !(a.len() == 1 && a[0] == "-") => a,
                        _ => Vec::new(),
                    };
                    let existing: Vec<&str> = inherited.iter().map(String::as_str).collect();
                    let add = args_to_add(&existing, kernel_args);
                    if add.is_empty() {
                        continue;
                    }
                    let (body, _) = split_eol(&out[kernel]);
                    let indent = &body[..body.len() - body.trim_start().len()];
                    let keyword = if body.trim_start().starts_with(|c: char| c.is_ascii_lowercase()) {
                        "append"
                    } else {
                        "APPEND"
                    };
                    let args: Vec<&str> = existing.iter().copied().chain(add.iter().copied()).collect();
                    new_lines.push((kernel, format!("{indent}{keyword} {}", args.join(" "))));
                    kernel_args_lines += 1;
                    note_added(&mut kernel_args_added, &add, kernel_args);
                }
            }
        }
        // Insert from the end so earlier line numbers stay valid.
        for (after, line) in new_lines.into_iter().rev() {
            let eol = split_eol(&out[after]).1.to_string();
            if eol.is_empty() {
                // The kernel line ends the file without a newline: so does the new line.
                out[after].push('\n');
                out.insert(after + 1, line);
            } else {
                out.insert(after + 1, line + &eol);
            }
        }
    }
    CfgPatch {
        text: out.concat(),
        initrd_lines,
        patched_lines,
        kernel_lines,
        kernel_args_lines,
        kernel_args_added,
        problems: Vec::new(),
    }
}

/// What [`patch_isolinux_cfg`] needs to know about one `LABEL`.
#[derive(Debug, Default)]
struct IsolinuxLabel {
    /// Index of the line saying what the label runs (`KERNEL`, `LINUX`, `COM32`...).
    kernel: Option<usize>,
    /// Whether that is a Linux kernel.
    boots_linux: bool,
    /// Index of its (last, effective) `APPEND` line.
    append: Option<usize>,
}

/// Whether isolinux boots `KERNEL file` as a Linux kernel: it picks the
/// kind by extension (`.c32` COM32 module, `.com`/`.cbt` COMBOOT, `.bs`/`.bss`
/// boot sector, `.bin` CD boot sector, `.0` PXE, `.img` disk image) and treats
/// anything else as Linux.
fn isolinux_kernel_is_linux(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    !matches!(ext.as_deref(), Some("c32" | "com" | "cbt" | "bs" | "bss" | "0" | "img" | "bin"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootcfg::test_support::{live_args, OVERLAY};

    const ISOLINUX: &str = "SERIAL 0 115200\nDEFAULT live\nPROMPT 0\nTIMEOUT 1\n\nLABEL live\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd.img console=ttyS0 root=live:CDLABEL=X\n\nLABEL live-directive\n  KERNEL /boot/vmlinuz\n  INITRD /boot/initrd.img\n  APPEND console=ttyS0 debug\n\nlabel lower\n  linux /boot/vmlinuz\n  append  quiet initrd=/boot/ucode.img,/boot/initrd.img  splash\n\nLABEL local\n  LOCALBOOT 0\n";

    #[test]
    fn tokens_with_multibyte_characters_are_not_cut_inside_one() {
        // fuzz/artifacts: a 7-byte prefix check sliced inside a character.
        let text = "LABEL x\n  KERNEL /k\n  APPEND initrd=/i abcdef\u{7da}x quiet\n";
        let p = patch_isolinux_cfg(text, "/boot/overlay.img", &[]);
        assert_eq!(p.initrd_lines, 1);
        assert!(p.text.contains("abcdef\u{7da}x quiet"));
    }

    #[test]
    fn isolinux_append_and_initrd_directive() {
        let p = patch_isolinux_cfg(ISOLINUX, OVERLAY, &[]);
        assert_eq!(p.patched_lines, 3);
        assert_eq!(p.initrd_lines, 3);
        assert_eq!(p.kernel_lines, 3);
        assert!(p
            .text
            .contains("  APPEND initrd=/boot/initrd.img,/boot/edgeiso.img console=ttyS0 root=live:CDLABEL=X\n"));
        assert!(p.text.contains("  INITRD /boot/initrd.img,/boot/edgeiso.img\n"));
        assert!(p.text.contains("  append  quiet initrd=/boot/ucode.img,/boot/initrd.img,/boot/edgeiso.img  splash\n"));
        assert!(p.text.contains("  APPEND console=ttyS0 debug\n"));
        assert!(p.text.contains("LABEL local\n  LOCALBOOT 0\n"));
        assert_eq!(p.text.replace(",/boot/edgeiso.img", ""), ISOLINUX);
        let again = patch_isolinux_cfg(&p.text, OVERLAY, &[]);
        assert_eq!(again.text, p.text);
        assert_eq!(again.patched_lines, 0);
    }

    #[test]
    fn isolinux_keywords_are_case_insensitive() {
        let p = patch_isolinux_cfg("label a\n\tkernel vmlinuz\n\tappend INITRD=initrd.gz\r\n", OVERLAY, &[]);
        assert_eq!(p.text, "label a\n\tkernel vmlinuz\n\tappend INITRD=initrd.gz,/boot/edgeiso.img\r\n");
    }

    #[test]
    fn isolinux_labels_get_the_args_on_their_append_line_or_a_new_one() {
        let p = patch_isolinux_cfg(ISOLINUX, OVERLAY, &live_args());
        assert_eq!((p.patched_lines, p.kernel_args_lines), (3, 3));
        assert_eq!(p.kernel_args_added, live_args());
        assert_eq!(
            p.text,
            ISOLINUX
                .replace("CDLABEL=X\n", "CDLABEL=X rd.neednet=1 ip=dhcp\n")
                .replace("console=ttyS0 debug\n", "console=ttyS0 debug rd.neednet=1 ip=dhcp\n")
                .replace("  splash\n", "  splash rd.neednet=1 ip=dhcp\n")
                .replace(",/boot/initrd.img", ",/boot/initrd.img,/boot/edgeiso.img")
                .replace("initrd=/boot/initrd.img ", "initrd=/boot/initrd.img,/boot/edgeiso.img ")
                .replace("INITRD /boot/initrd.img\n", "INITRD /boot/initrd.img,/boot/edgeiso.img\n")
        );
        let again = patch_isolinux_cfg(&p.text, OVERLAY, &live_args());
        assert_eq!(again.text, p.text);
        assert_eq!((again.patched_lines, again.kernel_args_lines), (0, 0));

        // A label with a kernel but no APPEND in a file without a global
        // APPEND gets nothing: it may inherit its arguments from a file that
        // INCLUDEs this one, which an APPEND of ours would replace. COM32
        // modules and local boot get nothing; an entry's own ip= is kept.
        let cfg = "DEFAULT menu.c32\r\nLABEL a\r\n  KERNEL /boot/vmlinuz\r\n  INITRD /boot/initrd.img\r\n\
                   LABEL hdt\r\n  KERNEL hdt.c32\r\n  APPEND modules=/m\r\nlabel b\r\n\tlinux /boot/vmlinuz\r\n\
                   label c\r\n  kernel /boot/vmlinuz\r\n  append ip=off\r\nLABEL d\r\n  COM32 chain.c32\r\n  APPEND hd0\r\n\
                   LABEL e\r\n  LOCALBOOT 0\r\n";
        let p = patch_isolinux_cfg(cfg, OVERLAY, &live_args());
        assert_eq!(
            p.text,
            "DEFAULT menu.c32\r\nLABEL a\r\n  KERNEL /boot/vmlinuz\r\n  INITRD /boot/initrd.img,/boot/edgeiso.img\r\n\
             LABEL hdt\r\n  KERNEL hdt.c32\r\n  APPEND modules=/m\r\nlabel b\r\n\tlinux /boot/vmlinuz\r\n\
             label c\r\n  kernel /boot/vmlinuz\r\n  append ip=off rd.neednet=1\r\nLABEL d\r\n  COM32 chain.c32\r\n  APPEND hd0\r\n\
             LABEL e\r\n  LOCALBOOT 0\r\n"
        );
        assert_eq!(p.kernel_args_lines, 1);
        assert_eq!(patch_isolinux_cfg(&p.text, OVERLAY, &live_args()).text, p.text);

        // With a global APPEND, a label without its own gets a new APPEND
        // right after its kernel line (indent, case and line ending of that
        // line), even when the kernel line ends the file without a newline.
        let p = patch_isolinux_cfg("APPEND quiet\r\nlabel a\r\n\tlinux /k", OVERLAY, &live_args());
        assert_eq!(p.text, "APPEND quiet\r\nlabel a\r\n\tlinux /k\n\tappend quiet rd.neednet=1 ip=dhcp");
    }

    #[test]
    fn isolinux_help_text_is_prose_not_keywords() {
        // "Boot ..." and "Kernel ..." in a help block must neither stop a
        // label counting as Linux nor become its kernel line.
        let cfg = "APPEND quiet\nLABEL a\n  KERNEL /k\n  TEXT HELP\n  Boot the live system.\n  Kernel messages go to ttyS0.\n  ENDTEXT\n\
                   LABEL b\n  text help\n  Linux rescue\n  endtext\n  LINUX /k\n  APPEND console=ttyS0\n";
        let p = patch_isolinux_cfg(cfg, OVERLAY, &live_args());
        assert_eq!(
            p.text,
            "APPEND quiet\nLABEL a\n  KERNEL /k\n  APPEND quiet rd.neednet=1 ip=dhcp\n  TEXT HELP\n  Boot the live system.\n  \
             Kernel messages go to ttyS0.\n  ENDTEXT\nLABEL b\n  text help\n  Linux rescue\n  endtext\n  LINUX /k\n  \
             APPEND console=ttyS0 rd.neednet=1 ip=dhcp\n"
        );
        assert_eq!(p.kernel_args_lines, 2);
    }

    #[test]
    fn isolinux_global_append_is_inherited_and_append_dash_means_none() {
        // A label without APPEND inherits the global one: its new APPEND line
        // repeats those arguments (an own APPEND replaces the global one),
        // which itself stays as it was (a COM32 label may inherit it too).
        let cfg = "APPEND console=ttyS0 ip=dhcp\nLABEL a\n  KERNEL /k\nLABEL m\n  KERNEL menu.c32\n\
                   LABEL n\n  KERNEL /k\n  APPEND -\n";
        let p = patch_isolinux_cfg(cfg, OVERLAY, &live_args());
        assert_eq!(
            p.text,
            "APPEND console=ttyS0 ip=dhcp\nLABEL a\n  KERNEL /k\n  APPEND console=ttyS0 ip=dhcp rd.neednet=1\n\
             LABEL m\n  KERNEL menu.c32\nLABEL n\n  KERNEL /k\n  APPEND rd.neednet=1 ip=dhcp\n"
        );
        assert_eq!(p.kernel_args_lines, 2);
        assert_eq!(patch_isolinux_cfg(&p.text, OVERLAY, &live_args()).text, p.text);
        assert_eq!(patch_isolinux_cfg(cfg, OVERLAY, &[]).text, cfg);
    }
}
