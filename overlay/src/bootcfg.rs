//! Add the initramfs overlay to every boot entry of a GRUB or isolinux config.
//!
//! Boot loaders load several initrds in order and the kernel unpacks them in
//! that order, later files overriding earlier ones. So the overlay is appended
//! *after* the existing initrd(s) of each entry; every other line, and every
//! kernel argument, stays byte-for-byte as it was (line endings included).
//! Patching is idempotent: an entry that already loads the overlay is left alone.

/// The result of patching one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgPatch {
    /// The patched text.
    pub text: String,
    /// Lines that load an initrd (patched or already carrying the overlay).
    pub initrd_lines: usize,
    /// Lines this call changed.
    pub patched_lines: usize,
    /// Lines that load a kernel (`linux`, `linuxefi`, isolinux `KERNEL`/`LINUX`).
    pub kernel_lines: usize,
}

impl CfgPatch {
    /// Whether the file has anything to do with booting a kernel.
    pub fn boots_a_kernel(&self) -> bool {
        self.initrd_lines > 0 || self.kernel_lines > 0
    }
}

/// Split off the line ending so it can be put back unchanged.
fn split_eol(line: &str) -> (&str, &str) {
    let body = line.trim_end_matches(['\n', '\r']);
    (body, &line[body.len()..])
}

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

/// End of a GRUB command's arguments within `body` (starting at `from`): an
/// unquoted `;`, or a `#` that starts a word (a comment), or the end.
fn grub_args_end(body: &str, from: usize) -> usize {
    let bytes = body.as_bytes();
    let (mut single, mut double, mut escaped) = (false, false, false);
    for i in from..bytes.len() {
        let c = bytes[i];
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            b'\\' if !single => escaped = true,
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b';' if !single && !double => return i,
            b'#' if !single && !double && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => return i,
            _ => {}
        }
    }
    bytes.len()
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
    let arg = arg.trim_matches(['"', '\'']);
    arg == overlay || grub_device_prefix(arg).is_some_and(|p| &arg[p.len()..] == overlay)
}

/// Append `overlay` (an absolute ISO path such as `/boot/edgeiso.img`) to
/// every GRUB `initrd`/`initrd16`/`initrdefi`/`$initrd` line.
pub fn patch_grub_cfg(text: &str, overlay: &str) -> CfgPatch {
    let mut out = String::with_capacity(text.len() + 64);
    let (mut initrd_lines, mut patched_lines, mut kernel_lines) = (0, 0, 0);
    for line in text.split_inclusive('\n') {
        let (body, eol) = split_eol(line);
        let indent_len = body.len() - body.trim_start().len();
        let rest = &body[indent_len..];
        let word_len = rest.find(|c: char| c.is_whitespace() || c == ';').unwrap_or(rest.len());
        let word = &rest[..word_len];
        match grub_command_kind(word) {
            Some(GrubKind::Kernel) => {
                kernel_lines += 1;
                out.push_str(line);
            }
            Some(GrubKind::Initrd) => {
                initrd_lines += 1;
                let args_start = indent_len + word_len;
                let args_end = grub_args_end(body, args_start);
                let args = &body[args_start..args_end];
                if args.split_whitespace().any(|a| names_overlay(a, overlay)) {
                    out.push_str(line);
                    continue;
                }
                let device = args.split_whitespace().next().and_then(grub_device_prefix).unwrap_or("");
                let args_trimmed_len = args.trim_end().len();
                let insert_at = args_start + args_trimmed_len;
                out.push_str(&body[..insert_at]);
                out.push(' ');
                out.push_str(device);
                out.push_str(overlay);
                out.push_str(&body[insert_at..]);
                out.push_str(eol);
                patched_lines += 1;
            }
            None => out.push_str(line),
        }
    }
    CfgPatch { text: out, initrd_lines, patched_lines, kernel_lines }
}

/// Append `overlay` to every isolinux/syslinux initrd list: `initrd=a` on
/// `APPEND`/`KERNEL`/`LINUX` lines becomes `initrd=a,/boot/edgeiso.img`, and
/// `INITRD a` directives become `INITRD a,/boot/edgeiso.img`. Keywords are
/// case-insensitive, as isolinux reads them.
pub fn patch_isolinux_cfg(text: &str, overlay: &str) -> CfgPatch {
    let mut out = String::with_capacity(text.len() + 64);
    let (mut initrd_lines, mut patched_lines, mut kernel_lines) = (0, 0, 0);
    let has_overlay = |list: &str| list.split(',').any(|p| p == overlay);
    for line in text.split_inclusive('\n') {
        let (body, eol) = split_eol(line);
        let indent_len = body.len() - body.trim_start().len();
        let rest = &body[indent_len..];
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let keyword = rest[..word_len].to_ascii_lowercase();
        match keyword.as_str() {
            "initrd" => {
                initrd_lines += 1;
                let args = &rest[word_len..];
                let list_start = args.len() - args.trim_start().len();
                let list_len = args[list_start..].find(char::is_whitespace).unwrap_or(args.len() - list_start);
                let list = &args[list_start..list_start + list_len];
                if list.is_empty() || has_overlay(list) {
                    out.push_str(line);
                    continue;
                }
                let insert_at = indent_len + word_len + list_start + list_len;
                out.push_str(&body[..insert_at]);
                out.push(',');
                out.push_str(overlay);
                out.push_str(&body[insert_at..]);
                out.push_str(eol);
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
                    if tok.len() > 7 && tok[..7].eq_ignore_ascii_case("initrd=") {
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
                    out.push_str(&new_body);
                    out.push_str(eol);
                } else {
                    out.push_str(line);
                }
            }
            _ => out.push_str(line),
        }
    }
    CfgPatch { text: out, initrd_lines, patched_lines, kernel_lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVERLAY: &str = "/boot/edgeiso.img";

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
    fn kairos_grub_cfg_gains_the_overlay_on_the_same_device() {
        let p = patch_grub_cfg(KAIROS_GRUB, OVERLAY);
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
        let p = patch_grub_cfg(cfg, OVERLAY);
        assert_eq!(p.patched_lines, 2);
        assert!(p.text.contains("\tinitrd /boot/initrd.img /boot/edgeiso.img\r\n"));
        assert!(p
            .text
            .contains("\tinitrd16 /boot/ucode.img /boot/initrd.img /boot/edgeiso.img   # microcode first\r\n"));
        let again = patch_grub_cfg(&p.text, OVERLAY);
        assert_eq!(again.text, p.text);
        assert_eq!(again.patched_lines, 0);
        assert_eq!(again.initrd_lines, 2);
    }

    #[test]
    fn grub_linuxefi_initrdefi_and_semicolons() {
        let cfg = "menuentry x {\n  linuxefi /k quiet\n  initrdefi /i\n}\nmenuentry y { linux /k; initrd /i; boot; }\n";
        let p = patch_grub_cfg(cfg, OVERLAY);
        assert!(p.text.contains("  initrdefi /i /boot/edgeiso.img\n"));
        // A one-line entry: only the command at the start of the line is recognised.
        assert!(p.text.contains("menuentry y { linux /k; initrd /i; boot; }\n"));
        assert_eq!(p.kernel_lines, 1);
        let cfg = "initrd /i;boot\n";
        assert_eq!(patch_grub_cfg(cfg, OVERLAY).text, "initrd /i /boot/edgeiso.img;boot\n");
    }

    #[test]
    fn grub_lines_that_only_mention_initrd_are_untouched() {
        let cfg = "# initrd /boot/initrd\necho initrd\nset initrd=initrd\nsearch --file /boot/initrd\n";
        let p = patch_grub_cfg(cfg, OVERLAY);
        assert_eq!(p.text, cfg);
        assert_eq!(p.initrd_lines, 0);
        assert!(!p.boots_a_kernel());
    }

    #[test]
    fn grub_text_without_trailing_newline() {
        let p = patch_grub_cfg("initrd /boot/initrd", OVERLAY);
        assert_eq!(p.text, "initrd /boot/initrd /boot/edgeiso.img");
    }

    const ISOLINUX: &str = "SERIAL 0 115200\nDEFAULT live\nPROMPT 0\nTIMEOUT 1\n\nLABEL live\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd.img console=ttyS0 root=live:CDLABEL=X\n\nLABEL live-directive\n  KERNEL /boot/vmlinuz\n  INITRD /boot/initrd.img\n  APPEND console=ttyS0 debug\n\nlabel lower\n  linux /boot/vmlinuz\n  append  quiet initrd=/boot/ucode.img,/boot/initrd.img  splash\n\nLABEL local\n  LOCALBOOT 0\n";

    #[test]
    fn isolinux_append_and_initrd_directive() {
        let p = patch_isolinux_cfg(ISOLINUX, OVERLAY);
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
        let again = patch_isolinux_cfg(&p.text, OVERLAY);
        assert_eq!(again.text, p.text);
        assert_eq!(again.patched_lines, 0);
    }

    #[test]
    fn isolinux_keywords_are_case_insensitive() {
        let p = patch_isolinux_cfg("label a\n\tkernel vmlinuz\n\tappend INITRD=initrd.gz\r\n", OVERLAY);
        assert_eq!(p.text, "label a\n\tkernel vmlinuz\n\tappend INITRD=initrd.gz,/boot/edgeiso.img\r\n");
    }
}
