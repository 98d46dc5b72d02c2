//! From flags to steps: each command's raw flags become that step's checked
//! options (a malformed value is exit 3, naming the flag), then the step runs
//! and its error becomes the process's exit code.

use edgeiso_contract::RegistryUrl;
use edgeiso_overlay::initramfs::Compression;
use regex::Regex;

use super::{
    AgentArgs, BootTestArgs, BundleBuildArgs, BundleCommand, CheckArgs, Cli, Command, CreateArgs, ImportArgs,
    InitrdCompression, IsoArgs, LintArgs, OutputArgs, OverlayArgs, PersonalizeArgs, RenderArgs, SignKeyArgs,
    SiteIsoArgs,
};
use crate::boot_test::{boot_test, parse_forward, BootTestOptions};
use crate::bundle_input::BundleInput;
use crate::bundle_sign::read_key;
use crate::check::{check, CheckOptions};
use crate::create::{create_bundle, CreateOptions, OutputOptions, PartialOptions};
use crate::exit::{self, with_code};
use crate::import::{import, ImportOptions};
use crate::iso_build::{iso, IsoOptions};
use crate::overlay_tree::{overlay, AgentOptions, OverlayOptions};
use crate::personalize::{personalize, PersonalizeAction, PersonalizeOptions};
use crate::registry_check::Login;
use crate::render_site::{lint, render_site, LintOptions, RenderSiteOptions};
use crate::site_iso::{site_iso, SiteIsoOptions};
use crate::ui::Ui;

/// Run the command; the process's exit code.
pub fn run(cli: Cli) -> i32 {
    init_logging(cli.verbose);
    // The workspace's one crypto provider (decision 0009); the HTTP clients
    // (oci-client over reqwest) bring none of their own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ui = Ui::new(cli.json);
    match dispatch(&ui, cli.command) {
        Ok(()) => 0,
        Err(e) => {
            ui.error(&e);
            exit::code_of(&e)
        }
    }
}

fn dispatch(ui: &Ui, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Bundle(BundleCommand::Create(a)) => {
            let spec = load_spec(&a.spec)?;
            // The key first: a wrong password fails before anything is pulled.
            let key = sign_key(&a.sign)?;
            let written = create_bundle(ui, &spec, &create_options(&a))?;
            crate::bundle_sign::sign_or_clear(ui, &written.paths[0], key.as_ref())
        }
        Command::Bundle(BundleCommand::Sign(a)) => {
            let key = read_key(&a.key, a.key_password_file.as_deref())?;
            crate::bundle_sign::sign(ui, &a.bundle, &key).map(drop)
        }
        Command::Bundle(BundleCommand::Verify(a)) => {
            crate::bundle_check::verify(ui, &a.bundle, a.key.as_deref(), a.base.as_deref())
        }
        Command::Bundle(BundleCommand::Inspect(a)) => crate::bundle_check::inspect(ui, &a.bundle),
        Command::Bundle(BundleCommand::Import(a)) => import(ui, &import_options(a)),
        Command::Render(a) => render_site(ui, &render_options(a)),
        Command::Lint(a) => lint(ui, &lint_options(a)),
        Command::Overlay(a) => overlay(ui, &overlay_options(a)?),
        Command::Iso(a) => iso(ui, &iso_options(a, false)?),
        Command::Build(a) => iso(ui, &iso_options(a, true)?),
        Command::Personalize(a) => personalize(ui, &personalize_options(a)),
        Command::SiteIso(a) => site_iso(ui, &site_iso_options(a)),
        Command::BootTest(a) => boot_test(ui, &boot_test_options(a)?),
        Command::Check(a) => check(ui, check_options(a)?),
        Command::Docs(docs) => Ok(docs.run(<Cli as clap::CommandFactory>::command())?),
    }
}

fn load_spec(path: &std::path::Path) -> anyhow::Result<edgeiso_installer_config::Spec> {
    edgeiso_installer_config::Spec::load(path).map_err(|e| with_code(exit::INVALID_INPUT, e))
}

fn output_options(o: &OutputArgs) -> OutputOptions {
    OutputOptions { dir: o.output.clone(), part_size: o.part_size, zstd: o.zstd }
}

fn create_options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        output: output_options(&a.out),
        locked: a.pull.locked,
        cache: a.pull.cache.clone(),
        concurrency: a.pull.concurrency.into(),
        partial: match (&a.base, a.thin) {
            (Some(base), _) => PartialOptions::Delta(base.clone()),
            (None, true) => PartialOptions::Thin,
            (None, false) => PartialOptions::Whole,
        },
    }
}

fn import_options(a: ImportArgs) -> ImportOptions {
    ImportOptions { output: output_options(&a.out), sources: a.sources, name: a.name }
}

fn render_options(a: RenderArgs) -> RenderSiteOptions {
    RenderSiteOptions { spec: a.spec, output: a.output, bundle: a.bundle }
}

fn lint_options(a: LintArgs) -> LintOptions {
    LintOptions { profile: a.profile, fix: a.fix }
}

/// The signing key of `--sign-key`, read (and decrypted) before any work.
fn sign_key(a: &SignKeyArgs) -> anyhow::Result<Option<edgeiso_bundle::signature::SigningKey>> {
    a.sign_key.as_deref().map(|k| read_key(k, a.sign_key_password_file.as_deref())).transpose()
}

fn bundle_input(b: &BundleBuildArgs) -> anyhow::Result<BundleInput> {
    Ok(match &b.bundle {
        Some(_) if b.sign.sign_key.is_some() => {
            return Err(with_code(
                exit::INVALID_INPUT,
                anyhow::anyhow!(
                    "--sign-key signs a bundle built on the way; --bundle is used as it is (sign it with `edgeiso bundle sign`)"
                ),
            ))
        }
        Some(p) => BundleInput::Given(p.clone()),
        None => BundleInput::Build {
            locked: b.pull.locked,
            cache: b.pull.cache.clone(),
            concurrency: b.pull.concurrency.into(),
            sign_key: sign_key(&b.sign)?.map(std::sync::Arc::new),
        },
    })
}

fn agent_options(a: &AgentArgs) -> AgentOptions {
    AgentOptions {
        path: a.agent.clone(),
        compression: match a.initrd_compression {
            InitrdCompression::Zstd => Compression::Zstd,
            InitrdCompression::Gzip => Compression::Gzip,
        },
        site_area_bytes: a.site_area_size,
    }
}

fn overlay_options(a: OverlayArgs) -> anyhow::Result<OverlayOptions> {
    Ok(OverlayOptions {
        bundle: bundle_input(&a.bundle)?,
        part_size: a.bundle.part_size,
        agent: agent_options(&a.agent),
        spec: a.spec,
        output: a.output,
    })
}

fn iso_options(a: IsoArgs, build: bool) -> anyhow::Result<IsoOptions> {
    Ok(IsoOptions {
        bundle: bundle_input(&a.bundle)?,
        part_size: a.bundle.part_size,
        agent: agent_options(&a.agent),
        spec: a.spec,
        base: a.base,
        output: a.output,
        work_dir: a.work_dir,
        build,
    })
}

fn personalize_options(a: PersonalizeArgs) -> PersonalizeOptions {
    let action = match (a.site, a.show) {
        (Some(site), _) => PersonalizeAction::Write { site, output: a.output },
        (None, true) => PersonalizeAction::Show,
        (None, false) => PersonalizeAction::Reset,
    };
    PersonalizeOptions { iso: a.iso, action }
}

fn site_iso_options(a: SiteIsoArgs) -> SiteIsoOptions {
    SiteIsoOptions { user_data: a.user_data, meta_data: a.meta_data, output: a.output }
}

fn boot_test_options(a: BootTestArgs) -> anyhow::Result<BootTestOptions> {
    let invalid = |msg: String| with_code(exit::INVALID_INPUT, anyhow::anyhow!(msg));
    let registry = a
        .registry
        .as_deref()
        .map(|u| RegistryUrl::parse(u).map_err(|e| invalid(format!("--registry {u}: {e}"))))
        .transpose()?;
    let marker = a.marker.as_deref().map(Regex::new).transpose().map_err(|e| invalid(format!("--marker: {e}")))?;
    let forwards = a.forward.iter().map(|f| parse_forward(f)).collect::<Result<_, _>>().map_err(invalid)?;
    Ok(BootTestOptions {
        firmware: a.firmware.parse().map_err(invalid)?,
        media: a.media.parse().map_err(invalid)?,
        iso: a.iso,
        timeout: a.timeout,
        registry,
        expect_bundle: a.expect_bundle,
        project: a.project,
        marker,
        ca: a.ca,
        insecure: a.insecure,
        forwards,
        allow_reboot: a.allow_reboot,
        memory_mib: a.memory,
        cpus: a.cpus,
        serial_log: a.serial_log,
    })
}

fn check_options(a: CheckArgs) -> anyhow::Result<CheckOptions> {
    let invalid = |m: String| with_code(exit::INVALID_INPUT, anyhow::anyhow!(m));
    let registry = RegistryUrl::parse(&a.registry).map_err(|e| invalid(format!("--registry {}: {e}", a.registry)))?;
    let login = match &a.password_file {
        Some(p) => Some(Login {
            username: a.username.unwrap_or_else(|| "admin".into()),
            password: edgeiso_installer_config::spec::read_secret_file(p, "registry password file")
                .map_err(|e| invalid(e.to_string()))?,
        }),
        None => None,
    };
    Ok(CheckOptions { bundle: a.bundle, registry, project: a.project, ca: a.ca, insecure: a.insecure, login })
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,edgeiso=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
