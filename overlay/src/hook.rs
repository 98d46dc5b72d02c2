//! The dracut hook the initramfs overlay carries
//! (`paths::initrd::DRACUT_HOOK`, run at pre-pivot with the live medium
//! mounted). It copies the agent out of the initramfs and, with a live load,
//! runs it against the site's registry; the agent writes the outcome as
//! console markers (`--outcome-file`), which the hook relays to the console.

use edgeiso_contract::console::Marker;
use edgeiso_contract::paths::{initrd, iso, live};
use edgeiso_contract::site_area;

/// What the hook does.
#[derive(Debug, Clone)]
pub struct HookSettings<'a> {
    pub site: &'a str,
    /// The registry the site loads into (for the console lines).
    pub registry: &'a str,
    /// Load the bundle from the live medium now (otherwise only stage the agent).
    pub live_load: bool,
}

/// The hook script. dracut *sources* it, so it must never `exit` or leave
/// `set -e`, variables or functions behind; everything runs in a function
/// with `local` variables. It needs nothing but the shell, `mkdir` and `cp`
/// (dracut's base module installs both): the relaying and the log tail are
/// done by the shell itself (a last line without a newline, such as a
/// panic's, is read too).
pub fn dracut_hook(s: &HookSettings<'_>) -> String {
    let load = if s.live_load {
        let no_bundle =
            Marker::Failed { reason: format!("no bundle at {} (live medium not mounted?)", live::CONTENT_DIR) };
        // The registry of the live configuration in use (a personalised
        // site's, when the site area holds one): read by the hook.
        let loading = Marker::Loading { registry: "$registry".into() };
        let silent = Marker::Failed { reason: "edgeiso-agent exit $rc before it reported an outcome".into() };
        let log_head = Marker::Note("the end of its log:".into());
        format!(
            r#"    if [ ! -d "{content}" ]; then
        edgeiso_say "{no_bundle}"
        return 0
    fi
    edgeiso_say "{loading}"
    {command} --outcome-file {outcome} --json \
        >{events} 2>{log} </dev/null
    rc=$?
    if [ -s {outcome} ]; then
        while IFS= read -r line || [ -n "$line" ]; do edgeiso_say "$line"; done <{outcome}
    else
        edgeiso_say "{silent}"
    fi
    [ "$rc" = 0 ] && return 0
    edgeiso_say "{log_head}"
    total=0
    while IFS= read -r line || [ -n "$line" ]; do total=$((total + 1)); done <{log}
    i=0
    while IFS= read -r line || [ -n "$line" ]; do
        i=$((i + 1))
        [ "$i" -gt $((total - 15)) ] && edgeiso_say "{prefix}  $line"
    done <{log}
"#,
            content = live::CONTENT_DIR,
            command = edgeiso_contract::load_command::live_load_command(),
            outcome = live::LOAD_OUTCOME,
            events = live::LOAD_EVENTS,
            log = live::LOAD_LOG,
            prefix = edgeiso_contract::console::PREFIX,
        )
    } else {
        let staged = Marker::Staged { agent: live::AGENT_BIN.into(), registry: "$registry".into() };
        format!("    edgeiso_say \"{staged}\"\n")
    };
    format!(
        r#"# edgeiso initramfs overlay hook for site {name}, written by `edgeiso overlay`.
# Sourced by dracut at pre-pivot (the live medium is mounted at {medium}):
# never exit, never leave options, variables or functions set.
edgeiso_say() {{ echo "$*" >/dev/console 2>/dev/null || echo "$*"; }}
edgeiso_hook() {{
    local rc line total i registry
    registry="{registry}"
    mkdir -p {run}/bin {state}
    if ! cp /{initrd_agent} {agent} || ! cp /{initrd_config} {config}; then
        edgeiso_say "{missing}"
        return 0
    fi
    # The site's files as this boot uses them: the medium's, then, when the
    # site area holds a personalised site, its files over them and its
    # cloud-configs into the live root's /oem, read by Kairos after the
    # medium's /config.yaml (docs/iso-layout.md, "The site area").
    mkdir -m 0700 -p {site}
    cp -a {medium_site}/. {site}/ 2>/dev/null
    if [ -f /{area_manifest} ]; then
        if [ -d /{area_files}{iso_site} ]; then cp -a /{area_files}{iso_site}/. {site}/; fi
        if [ -d /{area_oem} ]; then
            mkdir -p "${{NEWROOT:-/sysroot}}/oem" && cp -a /{area_oem}/. "${{NEWROOT:-/sysroot}}/oem/"
        fi
        while IFS= read -r line || [ -n "$line" ]; do
            case "$line" in registry:*) registry="${{line#registry:}}"; registry="${{registry# }}" ;; esac
        done <{config}
        edgeiso_say "{personalised}"
    fi
{load}}}
edgeiso_hook
unset -f edgeiso_hook edgeiso_say
"#,
        name = s.site,
        registry = s.registry,
        medium = live::MEDIUM,
        run = live::RUN_DIR,
        state = live::STATE_DIR,
        initrd_agent = initrd::AGENT_BIN,
        initrd_config = initrd::AGENT_CONFIG,
        agent = live::AGENT_BIN,
        config = live::AGENT_CONFIG,
        site = live::SITE_DIR,
        medium_site = live::MEDIUM_SITE_DIR,
        area_manifest = site_area::MANIFEST,
        area_files = site_area::FILES,
        iso_site = iso::SITE_DIR,
        area_oem = site_area::OEM,
        personalised = Marker::Note("the site area holds a personalised site: its settings are used".into()),
        missing =
            Marker::Failed { reason: "the agent or its configuration is missing from the initramfs overlay".into() },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(live_load: bool) -> String {
        dracut_hook(&HookSettings { site: "s", registry: "http://10.0.2.2:5000", live_load })
    }

    #[test]
    fn a_live_load_runs_the_agent_and_relays_its_outcome() {
        let h = hook(true);
        assert!(h.contains("/run/edgeiso/bin/edgeiso-agent load --config /run/edgeiso/agent-live.yaml --deadline 10m --outcome-file /run/edgeiso/outcome"), "{h}");
        // The golden's registry, unless a personalised site's configuration says otherwise.
        assert!(h.contains(r#"registry="http://10.0.2.2:5000""#), "{h}");
        assert!(
            h.contains(r#"edgeiso_say "EDGEISO-AGENT: loading the bundle from the live medium into $registry""#),
            "{h}"
        );
        // The site's files: the medium's, then the site area's over them.
        assert!(h.contains("cp -a /run/initramfs/live/edgeiso/site/. /run/edgeiso/site/"), "{h}");
        assert!(h.contains("cp -a /edgeiso-site/files/edgeiso/site/. /run/edgeiso/site/"), "{h}");
        assert!(h.contains(r#"cp -a /edgeiso-site/oem/. "${NEWROOT:-/sysroot}/oem/""#), "{h}");
        assert!(!h.contains("image-loaded"), "the hook counts nothing itself: {h}");
        assert!(!h.lines().any(|l| l.trim_start().starts_with("exit")), "never exits: {h}");
        let staged = hook(false);
        assert!(staged.contains("EDGEISO-AGENT: staged: /run/edgeiso/bin/edgeiso-agent (liveLoad off"), "{staged}");
        assert!(!staged.contains(" load "), "{staged}");
    }

    #[test]
    fn the_hook_is_valid_sh() {
        for live_load in [false, true] {
            let out = std::process::Command::new("sh").arg("-n").arg("-c").arg(hook(live_load)).output().unwrap();
            assert!(out.status.success(), "sh -n: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
