//! edgeiso-testkit: the test harness other edgeiso crates use as a
//! dev-dependency.
//!
//! - [`registry`]: a real `docker-registry` (distribution 2.8) on 127.0.0.1,
//!   plain or TLS (CA generated in-process), optionally with htpasswd auth,
//!   with read/write helpers;
//! - [`images`]: a deterministic synthetic corpus (OCI, Docker schema-2,
//!   multi-platform index, uncompressed layer), pushing, OCI layouts and
//!   `docker save` archives;
//! - [`bundles`]: content bundles written straight from synthesized images;
//! - [`containerd`]: a private containerd daemon for `ctr images import`;
//! - [`iso`]: the Debian test kernel, cached base ISOs, the static agent;
//! - [`signing`]: openssl key pairs and bundle signatures (decision 0015);
//! - [`files`]: file modes, leftover temp entries and a stand-in static
//!   agent binary, for the ISO tests.
//!
//! Everything here panics with a clear message on failure: it is a test
//! harness, and a panic with the registry's log tail is the most useful error.
//! A missing tool fails the test with a message naming the package
//! (`Registry::start`), or, for the containerd tests, skips it through
//! [`tools_present`] unless `EDGEISO_REQUIRE_TOOLS=1` (set by scripts/test.sh)
//! makes that a failure too. scripts/install-test-deps.sh installs them all.

pub mod bundles;
pub mod containerd;
pub mod files;
pub mod images;
pub mod iso;
pub mod registry;
pub mod signing;

pub use containerd::{have, tools_present, Containerd};
pub use images::{
    corpus, image_with_layer, push, push_all, write_docker_save, write_oci_layout, Flavor, Layer, TestImage,
};
pub use registry::{free_port, Registry, RegistryOptions};
