//! Add the initramfs overlay to every boot entry of a GRUB or isolinux config
//! (systemd-boot entries are only recognised, to be refused).
//!
//! Boot loaders load several initrds in order and the kernel unpacks them in
//! that order, later files overriding earlier ones. So the overlay is appended
//! *after* the existing initrd(s) of each entry; every other line, and every
//! kernel argument, stays byte-for-byte as it was (line endings included).
//! Patching is idempotent: an entry that already loads the overlay is left alone.
//!
//! Optionally (`kernel_args`, the spec's `agent.liveKernelArgs` when
//! `liveLoad` is on) kernel arguments are appended after the existing
//! arguments of every kernel entry: GRUB `linux`/`linux16`/`linuxefi`
//! (`$linux`) commands and the `APPEND` line of every isolinux label that
//! boots a Linux kernel. Existing arguments stay as they are; an argument the
//! entry already has (same text; for `ip=`, any `ip=`) is not added again.

/// The result of patching one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgPatch {
    /// The patched text.
    pub text: String,
    /// Lines that load an initrd (patched or already carrying the overlay).
    pub initrd_lines: usize,
    /// Initrd lines this call changed (made to load the overlay).
    pub patched_lines: usize,
    /// Lines that load a kernel (`linux`, `linuxefi`, isolinux `KERNEL`/`LINUX`).
    pub kernel_lines: usize,
    /// Kernel entries this call gave at least one kernel argument (GRUB
    /// kernel commands; isolinux labels, whose `APPEND` line was extended or
    /// added).
    pub kernel_args_lines: usize,
    /// The kernel arguments added to at least one entry, in the order asked.
    pub kernel_args_added: Vec<String>,
    /// Commands that load an initrd but could not be patched: booting them
    /// would skip the overlay.
    pub problems: Vec<CfgProblem>,
}

/// An initrd command that could not be patched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgProblem {
    /// 1-based line where the command starts.
    pub line: usize,
    /// Why.
    pub reason: String,
}

impl CfgPatch {
    /// Whether the file has anything to do with booting a kernel.
    pub fn boots_a_kernel(&self) -> bool {
        self.initrd_lines > 0 || self.kernel_lines > 0
    }
}

/// Why `arg` cannot be added to a boot entry's kernel command line, if it
/// cannot: it must be one printable ASCII word that neither GRUB's script
/// lexer nor isolinux reads as anything but a plain word (no whitespace,
/// quotes, `;`, `{`, `}`, `\`, `$`, `#`, `|`, `&`, `<`, `>`), and not one the
/// boot loader or kernel treat specially (`-`, `--`, `initrd=`).
/// installer-config's spec check (`agent.liveKernelArgs`) applies the same rules.
pub fn check_kernel_arg(arg: &str) -> Result<(), String> {
    if arg.is_empty() {
        return Err("is empty".into());
    }
    if let Some(c) = arg.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("contains whitespace or a control character ({c:?}); give one argument per entry"));
    }
    if let Some(c) = arg.chars().find(|c| !c.is_ascii()) {
        return Err(format!("contains {c:?}: only printable ASCII is accepted"));
    }
    if let Some(c) = arg.chars().find(|c| "'\"`;{}\\$#|&<>".contains(*c)) {
        return Err(format!("contains {c:?}, which GRUB or isolinux would not pass on as part of the argument"));
    }
    if arg == "-" || arg == "--" {
        return Err(format!("`{arg}` is not a kernel argument (isolinux reads `APPEND -` as no arguments; the kernel passes what follows `--` to init)"));
    }
    if arg.len() >= 7 && arg[..7].eq_ignore_ascii_case("initrd=") {
        return Err("initrd= is the boot loader's, not an argument to add".into());
    }
    Ok(())
}

/// The arguments of `wanted` that an entry whose arguments are `existing`
/// lacks: for `key=value`, no `key=` at all (the entry's own setting wins:
/// `rd.neednet=0` stays as it is, an `ip=` of its own configures the network
/// its way; appending ours would override it, as the last value counts);
/// for a bare flag, not the same flag.
fn args_to_add<'a>(existing: &[&str], wanted: &'a [String]) -> Vec<&'a str> {
    let key = |a: &str| a.split_once('=').map(|(k, _)| k.to_string());
    wanted
        .iter()
        .map(String::as_str)
        .filter(|w| match key(w) {
            Some(k) => !existing.iter().any(|e| key(e).as_deref() == Some(k.as_str())),
            None => !existing.contains(w),
        })
        .collect()
}

/// Record `added` in `all` (distinct, in the order of `wanted`).
fn note_added(all: &mut Vec<String>, added: &[&str], wanted: &[String]) {
    for w in wanted {
        if added.contains(&w.as_str()) && !all.contains(w) {
            all.push(w.clone());
        }
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
            b' ' | b'\t' | b'\r' => i += 1,
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

/// Read a systemd-boot entry (`loader/entries/*.conf`): count its `linux`/
/// `efi` and `initrd` lines. Entries are not patched: systemd-boot reads
/// them, the kernel and the initrds from the EFI system partition it was
/// started from (a FAT image on an ISO), not from the ISO 9660 tree where
/// the overlay is. Every entry that boots a kernel is listed as a problem.
pub fn inspect_systemd_boot_entry(text: &str) -> CfgPatch {
    let (mut initrd_lines, mut kernel_lines) = (0, 0);
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("initrd") => initrd_lines += 1,
            Some("linux" | "efi" | "uki") => kernel_lines += 1,
            _ => continue,
        }
        if problems.is_empty() {
            problems.push(CfgProblem {
                line: n + 1,
                reason: "systemd-boot entry: edgeiso cannot add the initramfs overlay to systemd-boot entries \
                         (systemd-boot loads the kernel and initrds from its EFI system partition, not from the \
                         ISO tree), so this entry would boot without it"
                    .into(),
            });
        }
    }
    CfgPatch {
        text: text.to_string(),
        initrd_lines,
        patched_lines: 0,
        kernel_lines,
        kernel_args_lines: 0,
        kernel_args_added: Vec::new(),
        problems,
    }
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

    const ISOLINUX: &str = "SERIAL 0 115200\nDEFAULT live\nPROMPT 0\nTIMEOUT 1\n\nLABEL live\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd.img console=ttyS0 root=live:CDLABEL=X\n\nLABEL live-directive\n  KERNEL /boot/vmlinuz\n  INITRD /boot/initrd.img\n  APPEND console=ttyS0 debug\n\nlabel lower\n  linux /boot/vmlinuz\n  append  quiet initrd=/boot/ucode.img,/boot/initrd.img  splash\n\nLABEL local\n  LOCALBOOT 0\n";

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

    fn live_args() -> Vec<String> {
        vec!["rd.neednet=1".to_string(), "ip=dhcp".to_string()]
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

    #[test]
    fn kernel_args_that_would_break_a_boot_config_are_refused() {
        for ok in ["rd.neednet=1", "ip=dhcp", "ip=10.0.0.2::10.0.0.1:255.255.255.0:edge:eth0:none", "quiet", "a,b=c/d"]
        {
            assert_eq!(check_kernel_arg(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("a b", "whitespace"),
            ("a\nb", "whitespace"),
            ("a\tb", "whitespace"),
            ("\"x\"", "'\"'"),
            ("it's", "'\\''"),
            ("a;b", "';'"),
            ("a{", "'{'"),
            ("}", "'}'"),
            ("$x", "'$'"),
            ("#x", "'#'"),
            ("a\\b", "'\\\\'"),
            ("é=1", "ASCII"),
            ("--", "init"),
            ("-", "APPEND -"),
            ("INITRD=/x", "initrd="),
        ] {
            let e = check_kernel_arg(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn systemd_boot_entries_are_problems_not_patched() {
        let entry = "title Arch Linux install medium\nsort-key 01\nlinux /arch/boot/x86_64/vmlinuz-linux\n\
                     initrd /arch/boot/x86_64/initramfs-linux.img\noptions archisobasedir=arch\n";
        let p = inspect_systemd_boot_entry(entry);
        assert_eq!((p.kernel_lines, p.initrd_lines, p.patched_lines), (1, 1, 0));
        assert_eq!(p.text, entry);
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].line, 3);
        assert!(p.problems[0].reason.contains("would boot without"));
        assert!(inspect_systemd_boot_entry("timeout 3\ndefault arch\n").problems.is_empty());
    }
}
