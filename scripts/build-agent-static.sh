#!/usr/bin/env bash
# Build edgeiso-agent as a static x86-64 Linux binary that runs in an
# initramfs (no libc, no /etc beyond resolv.conf), check it, print its path.
#
#   scripts/build-agent-static.sh            # musl if the target is installed, else static glibc
#   EDGEISO_STATIC=glibc scripts/build-agent-static.sh   # force static glibc
#
# musl is preferred. Static glibc (-C target-feature=+crt-static) is the
# fallback for machines without the musl target; it is safe here because the
# agent never calls getaddrinfo/NSS (names come from /etc/hosts and its own
# DNS resolver) and links no OpenSSL (rustls with aws-lc-rs).
set -euo pipefail
cd "$(dirname "$0")/.."

BUDGET=$((15 * 1024 * 1024))
mode=${EDGEISO_STATIC:-auto}
if [[ $mode == auto ]]; then
    if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl && command -v musl-gcc >/dev/null; then
        mode=musl
    else
        mode=glibc
    fi
fi

case $mode in
musl)
    target=x86_64-unknown-linux-musl
    # aws-lc-sys and ring build C code: use musl's compiler wrapper.
    export CC_x86_64_unknown_linux_musl=musl-gcc
    cargo build --release -p edgeiso-agent --target "$target" >&2
    ;;
glibc)
    target=x86_64-unknown-linux-gnu
    # --target keeps RUSTFLAGS away from build scripts and proc macros.
    # getrandom 0.3/0.4 look glibc's getrandom() up at run time (dlsym, which
    # a static binary cannot do) and then fall back to /dev/urandom; link it
    # directly instead, so the binary needs no /dev either.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
        cargo build --release -p edgeiso-agent --target "$target" >&2
    ;;
*)
    echo "EDGEISO_STATIC must be musl, glibc or auto" >&2
    exit 2
    ;;
esac

bin="target/$target/release/edgeiso-agent"
desc=$(file -b "$bin")
echo "$bin: $desc" >&2
if ! grep -Eq 'statically linked|static-pie linked' <<<"$desc"; then
    echo "error: $bin is not statically linked" >&2
    exit 1
fi
if ldd "$bin" 2>&1 | grep -q '=>'; then
    echo "error: ldd lists shared libraries for $bin" >&2
    exit 1
fi
size=$(stat -c %s "$bin")
echo "size: $size bytes (budget $BUDGET)" >&2
if ((size >= BUDGET)); then
    echo "error: $bin is over the 15 MB budget" >&2
    exit 1
fi
abs="$PWD/$bin"
# It must start with an empty environment, from /, and parse its command line.
(cd / && env -i "$abs" --version >/dev/null && env -i "$abs" load --help >/dev/null)
echo "$abs"
