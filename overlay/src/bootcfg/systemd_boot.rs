//! systemd-boot entries (`loader/entries/*.conf`): recognised and counted,
//! never patched ([`inspect_systemd_boot_entry`]).

use super::{CfgPatch, CfgProblem};

/// Why an entry that starts a unified kernel image (`efi`/`uki` line: a
/// trusted-boot base, AuroraBoot `build-uki`, CanvOS `IS_UKI`) is refused,
/// and what works instead.
pub const UKI_ENTRY: &str = "systemd-boot entry that starts a unified kernel image (UKI, trusted boot): its \
     initrd is inside the signed .efi file, and an extra initrd cannot be added without re-signing it (Secure \
     Boot would refuse it, or the entry would boot without the overlay). Instead keep this base ISO as it is \
     and give the site its files on the separate ISO `edgeiso site-iso` writes, or use a base ISO built \
     without UKI";

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
        let key = words.next();
        match key {
            Some("initrd") => initrd_lines += 1,
            Some("linux" | "efi" | "uki") => kernel_lines += 1,
            _ => continue,
        }
        if matches!(key, Some("efi" | "uki")) {
            // A UKI is named by the entry, whatever came before it.
            problems.retain(|p: &CfgProblem| p.reason != UKI_ENTRY);
            problems.insert(0, CfgProblem { line: n + 1, reason: UKI_ENTRY.into() });
        } else if problems.is_empty() {
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
