//! The kernel arguments a live load adds to the ISO's boot entries: which
//! ones, and which words may be added at all. The site spec checks
//! `agent.liveKernelArgs` by this rule and the boot-config patcher enforces
//! it, so a spec that validates never yields a config the patcher refuses.

/// `agent.liveKernelArgs` when the spec does not set it and `liveLoad` is on:
/// dracut's network-online wait and DHCP on every interface (a real dracut
/// initramfs brings the network up only when the command line asks).
pub const DEFAULT_LIVE_KERNEL_ARGS: [&str; 2] = ["rd.neednet=1", "ip=dhcp"];

/// Why `arg` cannot be added to a boot entry's kernel command line, if it
/// cannot: it must be one printable ASCII word that neither GRUB's script
/// lexer nor isolinux reads as anything but a plain word (no whitespace,
/// quotes, `;`, `{`, `}`, `\`, `$`, `#`, `|`, `&`, `<`, `>`), and not one the
/// boot loader or kernel treat specially (`-`, `--`, `initrd=`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_args_that_would_break_a_boot_config_are_refused() {
        for ok in ["rd.neednet=1", "ip=dhcp", "ip=10.0.0.2::10.0.0.1:255.255.255.0:edge:eth0:none", "quiet", "a,b=c/d"]
        {
            assert_eq!(check_kernel_arg(ok), Ok(()), "{ok}");
        }
        for ok in DEFAULT_LIVE_KERNEL_ARGS {
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
}
