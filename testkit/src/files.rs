//! Small file-system probes the ISO tests of several crates share.

use std::path::Path;

/// Permission bits (with setuid/setgid/sticky) of `path`.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

/// Hidden entries of `dir` (temp files and folders a run may leave), sorted.
pub fn hidden_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// A stand-in for the static agent: a minimal x86-64 ELF header without a
/// `PT_INTERP` (what the overlay checks), written to `dir/edgeiso-agent`.
/// It does not run; tests that boot a live load use the real one
/// ([`crate::iso::static_agent`]).
pub fn fake_static_agent(dir: &Path) -> std::path::PathBuf {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // 64-bit
    h[5] = 1; // little-endian
    h[6] = 1;
    h[16] = 2; // ET_EXEC
    h[18] = 62; // EM_X86_64
    h[20] = 1;
    h[52] = 64; // e_ehsize
    h[54] = 56; // e_phentsize
    let path = dir.join("edgeiso-agent");
    std::fs::write(&path, h).unwrap();
    path
}
