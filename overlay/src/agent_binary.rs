//! The agent binary the ISO carries runs in an initramfs, where there is no
//! libc to load: it must be a static x86-64 ELF. Checked before it is laid
//! into an overlay, so a dynamically linked build fails the build, not the boot.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AgentBinaryError {
    #[error("agent {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("agent {} is dynamically linked (it needs a libc the initramfs does not have)", path.display())]
    Dynamic { path: PathBuf },
    #[error("agent {} is not an x86-64 ELF executable", path.display())]
    NotElf { path: PathBuf },
}

/// Check that `path` is a static x86-64 ELF executable.
pub fn check_static_agent(path: &Path) -> Result<(), AgentBinaryError> {
    use std::io::Read as _;
    let mut head = Vec::new();
    // The program headers sit near the start; 64 KiB covers any linker's layout.
    std::fs::File::open(path)
        .and_then(|f| f.take(64 << 10).read_to_end(&mut head))
        .map_err(|source| AgentBinaryError::Read { path: path.to_owned(), source })?;
    match elf_is_static(&head) {
        Some(true) => Ok(()),
        Some(false) => Err(AgentBinaryError::Dynamic { path: path.to_owned() }),
        None => Err(AgentBinaryError::NotElf { path: path.to_owned() }),
    }
}

/// `Some(true)` for a 64-bit little-endian x86-64 ELF without a `PT_INTERP`
/// program header (static or static-pie), `Some(false)` with one, `None`
/// when not such an ELF (or its program headers are not in `b`).
pub fn elf_is_static(b: &[u8]) -> Option<bool> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    if u16_at(18) != 62 {
        return None; // e_machine: EM_X86_64
    }
    let phoff = u64::from_le_bytes(b[32..40].try_into().ok()?) as usize;
    let (phentsize, phnum) = (u16_at(54) as usize, u16_at(56) as usize);
    for i in 0..phnum {
        let o = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let p_type = u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?);
        if p_type == 3 {
            return Some(false); // PT_INTERP
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_static_detection() {
        assert_eq!(elf_is_static(b"#!/bin/sh\n"), None);
        let me = std::env::current_exe().unwrap();
        // Test binaries are dynamically linked against glibc.
        assert!(matches!(check_static_agent(&me), Err(AgentBinaryError::Dynamic { .. })));
        let d = tempfile::tempdir().unwrap();
        let script = d.path().join("agent");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let e = check_static_agent(&script).unwrap_err().to_string();
        assert!(e.contains("not an x86-64 ELF"), "{e}");
        // A header whose program-header table points past the end is not static.
        let mut hostile = vec![0u8; 64];
        hostile[..6].copy_from_slice(b"\x7fELF\x02\x01");
        hostile[18] = 62;
        hostile[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        hostile[54] = 56;
        hostile[56] = 1;
        assert_eq!(elf_is_static(&hostile), None);
    }
}
