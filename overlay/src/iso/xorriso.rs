//! The `xorriso` driver: finding the program, running it, addressing ISO
//! files (`stdio:`), undoing its quoting, and reading its file listings.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::IsoError;

/// The `xorriso` program.
#[derive(Debug, Clone)]
pub struct Xorriso {
    program: PathBuf,
}

/// Find `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

pub(super) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.contains(": UPDATE :")).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Xorriso {
    /// `xorriso` from `$EDGEISO_XORRISO` or `PATH`.
    pub fn find() -> Result<Self, IsoError> {
        if let Some(p) = std::env::var_os("EDGEISO_XORRISO") {
            return Ok(Xorriso { program: PathBuf::from(p) });
        }
        which("xorriso")
            .map(|program| Xorriso { program })
            .ok_or(IsoError::ToolMissing { tool: "xorriso".into(), hint: "Debian package xorriso" })
    }

    /// Use a specific program.
    pub fn at(program: impl Into<PathBuf>) -> Self {
        Xorriso { program: program.into() }
    }

    /// The program path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    pub(super) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        // The environment must not change what xorriso writes behind our back.
        cmd.env_remove("SOURCE_DATE_EPOCH").env("LC_ALL", "C").stdin(Stdio::null());
        cmd
    }

    /// Run with `args`; on success return stdout (the "result" channel).
    pub(super) fn run(&self, subject: &Path, args: &[OsString]) -> Result<String, IsoError> {
        let out = self.command().args(["-abort_on", "FAILURE", "-return_with", "SORRY", "32"]).args(args).output();
        let out = out.map_err(|e| self.spawn_error(e))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(IsoError::ToolFailed {
                tool: self.program.display().to_string(),
                subject: subject.display().to_string(),
                detail: tail(&stderr, 8),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub(crate) fn spawn_error(&self, e: io::Error) -> IsoError {
        if e.kind() == io::ErrorKind::NotFound {
            IsoError::ToolMissing { tool: self.program.display().to_string(), hint: "Debian package xorriso" }
        } else {
            IsoError::Io { path: self.program.clone(), source: e }
        }
    }
}

pub(super) fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// An ISO file as xorriso's drive address: `stdio:` makes any path a plain
/// file to it; without it a path under /dev (an ISO on /dev/shm) is refused
/// as a drive.
pub(super) fn stdio(path: &Path) -> OsString {
    let mut address = OsString::from("stdio:");
    address.push(path.as_os_str());
    address
}

/// Undo xorriso's quoting: `'a'"'"'b'` -> `a'b`.
pub(super) fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => out.extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => out.extend(chars.by_ref().take_while(|&c| c != '"')),
            c => out.push(c),
        }
    }
    out
}

/// A file of the ISO tree, as `-find ... -exec lsdl` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFile {
    /// Absolute path in the ISO.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Rock Ridge permission bits (`0o644`), without the file type.
    pub mode: u32,
    /// A directory (else a regular file, link or special file).
    pub is_dir: bool,
}

/// `-rw-r--r--` -> `0o644` (setuid/setgid/sticky included).
fn parse_mode(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let mut mode = 0;
    for (i, &c) in b[1..].iter().enumerate() {
        let bit = 1 << (8 - i);
        match (i, c) {
            (_, b'-') => {}
            (0 | 3 | 6, b'r') | (1 | 4 | 7, b'w') | (2 | 5 | 8, b'x') => mode |= bit,
            (2, b's') => mode |= bit | 0o4000,
            (2, b'S') => mode |= 0o4000,
            (5, b's') => mode |= bit | 0o2000,
            (5, b'S') => mode |= 0o2000,
            (8, b't') => mode |= bit | 0o1000,
            (8, b'T') => mode |= 0o1000,
            _ => return None,
        }
    }
    Some(mode)
}

/// List every entry of an ISO (directories included, `/` first).
pub(super) fn list_entries(x: &Xorriso, iso: &Path) -> Result<Vec<IsoFile>, IsoError> {
    let out = x.run(iso, &[os("-indev"), stdio(iso), os("-find"), os("/"), os("-exec"), os("lsdl")])?;
    let mut files = Vec::new();
    for line in out.lines() {
        // -rw-r--r--    1 0        0              64 Nov 14  2023 '/EDGEISO-BASE.txt'
        let parsed = (|| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let perms = words.first()?;
            // Regular files and directories; links and specials are not ours to touch.
            if !perms.starts_with(['-', 'd']) {
                return None;
            }
            let size = words.get(4)?.parse::<u64>().ok()?;
            let quote = line.find('\'')?;
            Some(IsoFile {
                path: unquote(&line[quote..]),
                size,
                mode: parse_mode(perms)?,
                is_dir: perms.starts_with('d'),
            })
        })();
        if let Some(f) = parsed {
            files.push(f);
        }
    }
    Ok(files)
}

/// List the regular files of an ISO.
pub fn list_files(x: &Xorriso, iso: &Path) -> Result<Vec<IsoFile>, IsoError> {
    let mut files = list_entries(x, iso)?;
    files.retain(|f| !f.is_dir);
    Ok(files)
}

/// Copy `paths` out of the ISO into `dest` (keeping their ISO paths below it).
pub(super) fn extract(x: &Xorriso, iso: &Path, paths: &[&str], dest: &Path) -> Result<(), IsoError> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut args = vec![os("-osirrox"), os("on"), os("-indev"), stdio(iso), os("-extract_l"), os("/")];
    args.push(dest.as_os_str().to_owned());
    args.extend(paths.iter().map(os));
    args.push(os("--"));
    x.run(iso, &args)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lsdl_modes() {
        assert_eq!(parse_mode("-rw-r--r--"), Some(0o644));
        assert_eq!(parse_mode("drwxr-xr-x"), Some(0o755));
        assert_eq!(parse_mode("dr-xr-xr-x"), Some(0o555));
        assert_eq!(parse_mode("-rwsr-xr-T"), Some(0o5754));
        assert_eq!(parse_mode("junk"), None);
    }

    #[test]
    fn unquote_handles_xorriso_quoting() {
        assert_eq!(unquote("'/efi.img'"), "/efi.img");
        assert_eq!(unquote("'it'\"'\"'s'"), "it's");
        assert_eq!(unquote("plain"), "plain");
    }
}
