//! A private containerd daemon (Debian's containerd 1.6) for import tests:
//! its own root, state and socket under a temp dir, nothing shared with a
//! system containerd.
//!
//! Snapshotter finding: `ctr images import` unpacks into a snapshotter by
//! default, and `ctr` (not the daemon) picks which one: `--snapshotter`, else
//! `$CONTAINERD_SNAPSHOTTER`, else "overlayfs". We use **`native`** (plain
//! directory copies) and pass it via `CONTAINERD_SNAPSHOTTER` in
//! [`Containerd::ctr`], so callers' `ctr images import` works unchanged.
//! Why not overlayfs, although it works here too (verified on this sandbox:
//! root, ext4 root fs, kernel 6.18, `--snapshotter overlayfs` imports and
//! unpacks the corpus): it is known to fail where the temp dir itself sits on
//! overlayfs (CI inside a container; not reproducible here), and it mounts
//! while applying layers, so a test killed mid-import can leave mounts that
//! make the temp dir impossible to remove. `native` needs only a writable
//! directory, and unpacking through it still checks every layer against its
//! config diff id. `tests/containerd.rs` asserts the snapshots land in
//! `native`.
//!
//! containerd must run as root (it chowns and mknods while unpacking);
//! [`Containerd::start`] panics with a clear message otherwise.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The snapshotter [`Containerd::ctr`] selects (see the module docs).
pub const SNAPSHOTTER: &str = "native";

/// Is `tool` an executable file on PATH?
pub fn have(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|dir| {
        fs::metadata(dir.join(tool)).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

/// For tests that need external tools: true when all are on PATH; otherwise
/// prints which are missing and returns false, so the test can return early
/// (skip). Set `EDGEISO_REQUIRE_TOOLS=1` (CI) to turn a missing tool into a
/// failure instead of a skip.
pub fn tools_present(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test}: SKIPPED: {} not on PATH (run scripts/install-test-deps.sh)", missing.join(", "));
    if std::env::var_os("EDGEISO_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!("{msg}; EDGEISO_REQUIRE_TOOLS=1 forbids skipping");
    }
    eprintln!("{msg}");
    false
}

/// A running private containerd. Drop stops it (SIGTERM, then SIGKILL) and
/// removes its temp dir.
pub struct Containerd {
    dir: tempfile::TempDir,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    /// Start the daemon and wait (up to 20 s) until `ctr version` answers.
    pub fn start() -> Containerd {
        assert!(have("containerd") && have("ctr"), "containerd/ctr not on PATH: run scripts/install-test-deps.sh");
        // SAFETY: geteuid has no preconditions and cannot fail.
        assert!(unsafe { libc::geteuid() } == 0, "Containerd::start: containerd needs root to unpack images");
        // Unix socket paths are limited to 108 bytes: keep the dir short.
        let base =
            if std::env::temp_dir().as_os_str().len() > 40 { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let dir =
            tempfile::Builder::new().prefix("edgeiso-ctrd-").tempdir_in(base).expect("create containerd temp dir");
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        let log = dir.path().join("containerd.log");
        fs::write(&config, daemon_config(dir.path(), &socket)).expect("write containerd config");

        let log_file = fs::File::create(&log).expect("create containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup log fd"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn containerd: {e}"));
        let mut ctrd = Containerd { dir, socket, log, child: Some(child) };

        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = ctrd.child.as_mut().and_then(|c| c.try_wait().expect("try_wait")) {
                ctrd.child = None;
                panic!("containerd exited with {status} during startup\n{}", ctrd.log_tail());
            }
            if ctrd.socket.exists() && ctrd.ctr(&["version"]).status.success() {
                return ctrd;
            }
            if Instant::now() > deadline {
                panic!("containerd did not answer `ctr version` within 20 s\n{}", ctrd.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run `ctr --address <socket> <args>` (with the snapshotter preset, see
    /// the module docs) and return its output, whatever the exit status.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .env("CONTAINERD_SNAPSHOTTER", SNAPSHOTTER)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run ctr {args:?}: {e}"))
    }

    /// Like [`Containerd::ctr`], but panics with stdout/stderr unless it
    /// succeeds; returns stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed ({}):\nstdout: {}\nstderr: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's root dir (content store, snapshots, metadata).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The last 40 lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!("--- last lines of {} ---\n{}", self.log.display(), lines[lines.len().saturating_sub(40)..].join("\n"))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SIGTERM first: containerd then closes its bolt database and unmounts
        // cleanly; SIGKILL only if it does not exit within 5 s.
        // SAFETY: kill(2) on our own child's pid; the pid cannot have been
        // reused because we have not reaped the child yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// containerd 1.6 config (version 2) confined to `dir`.
fn daemon_config(dir: &Path, socket: &Path) -> String {
    let q = |p: &Path| serde_json::to_string(p.to_str().expect("utf-8 temp path")).expect("quote");
    format!(
        r#"version = 2
root = {root}
state = {state}
# CRI would start CNI/streaming machinery these tests never use; the other
# snapshotters only log noise where their backing filesystems are absent.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  # Default is /opt/containerd: keep everything inside the temp dir.
  [plugins."io.containerd.internal.v1.opt"]
    path = {opt}
"#,
        root = q(&dir.join("root")),
        state = q(&dir.join("state")),
        socket = q(socket),
        ttrpc = q(&dir.join("containerd.ttrpc.sock")),
        opt = q(&dir.join("opt")),
    )
}
