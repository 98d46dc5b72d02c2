#!/usr/bin/env bash
# Build edgeiso-agent as a static x86-64 Linux binary that runs in an
# initramfs (no libc, no /etc beyond resolv.conf), check it, print its path.
#
#   scripts/build-agent-static.sh            # musl if the target is installed, else static glibc
#   EDGEISO_STATIC=glibc scripts/build-agent-static.sh   # force static glibc
#   scripts/build-agent-static.sh --chroot-check         # also load a bundle from a bare chroot
#
# musl is preferred. Static glibc (-C target-feature=+crt-static) is the
# fallback for machines without the musl target; it is safe here because the
# agent never calls getaddrinfo/NSS (names come from /etc/hosts and its own
# DNS resolver) and links no OpenSSL (rustls with ring).
set -euo pipefail
cd "$(dirname "$0")/.."

BUDGET=$((15 * 1024 * 1024))
CHROOT_CHECK=0
[[ ${1:-} == --chroot-check ]] && CHROOT_CHECK=1
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
    # ring builds C and assembly: use musl's compiler wrapper.
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

if ((CHROOT_CHECK)); then
    # An initramfs-like root: the binary, /etc/resolv.conf and a bundle,
    # nothing else (no libc, no /dev, no /etc/hosts, no certificates).
    # Needs root (chroot) and docker-registry.
    tmp=$(mktemp -d)
    trap 'kill "$(cat "$tmp/reg.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/root/bin" "$tmp/root/etc" "$tmp/root/b" "$tmp/reg"
    cp "$abs" "$tmp/root/bin/edgeiso-agent"
    echo "nameserver 192.0.2.1" >"$tmp/root/etc/resolv.conf"
    cargo build -q -p edgeiso-agent --example make-bench-bundle >&2
    target/debug/examples/make-bench-bundle big-layer "$tmp/root/b" chroot 8 >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "127.0.0.1:%s", secret: x}\n' \
        "$tmp/reg/storage" "$port" >"$tmp/reg/config.yml"
    docker-registry serve "$tmp/reg/config.yml" >"$tmp/reg/log" 2>&1 &
    echo $! >"$tmp/reg.pid"
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
    for host in 127.0.0.1 localhost; do
        env -i "$(command -v chroot)" "$tmp/root" /bin/edgeiso-agent load --bundle /b \
            --registry "http://$host:$port" --state-dir /state --wait-timeout 20s >&2
    done
    curl -fsS "http://127.0.0.1:$port/v2/spectro-images/docker.io/bench/big/tags/list" >&2
    echo >&2
    echo "chroot check: loaded from a bare root by IP and by name" >&2
fi
echo "$abs"
