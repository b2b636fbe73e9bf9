#!/usr/bin/env bash
# Prepare a Debian 12 (bookworm) host for imagefactory development and CI, then start the host
# services. Run as root from anywhere; idempotent and fast when everything is already in place.
#
#   1. Debian packages: Docker engine + BuildKit-capable CLI (docker.io), registry server
#      (docker-registry), skopeo, mmdebstrap, packer, rsync, htpasswd, ...
#   2. gitlab-ci-local (npm), pinned to a release that runs on Node 20
#   3. <repo>/.venv with `pip install -e '.[dev]'` (python3 on PATH)
#   4. the unprivileged user a rootless Docker engine runs as in the integration tests
#      (imagefactory-rootless, with subordinate uid/gid ranges), and /dev/net/tun usable by it
#   5. scripts/services.sh start (dockerd + authenticated registry on 127.0.0.1)
#
# Output: one line per step; the full output of each step goes to $IMAGEFACTORY_HOST_DIR/setup-*.log
# and its tail is printed if the step fails.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GITLAB_CI_LOCAL_VERSION="4.60.1" # newest 4.60.x; later releases need Node 22
APT_PACKAGES=(
    # engine + CLI (/usr/bin/docker, 20.10, BuildKit without buildx) and what dockerd runs on
    docker.io containerd runc tini iptables fuse-overlayfs xz-utils
    # registry server (distribution 2.8), client tools
    docker-registry skopeo apache2-utils curl ca-certificates
    # base-image bootstrap: mmdebstrap and what its root/unshare/fakechroot modes use
    mmdebstrap gpg uidmap fakeroot fakechroot mount
    # foreign platforms (docs/multiarch.md): QEMU user emulation through binfmt_misc, and
    # arch-test, which mmdebstrap asks whether a foreign architecture runs here
    qemu-user-static binfmt-support arch-test
    # static busybox: tiny importable rootfs for integration tests
    busybox-static
    # rootless engine (dockerd-rootless.sh from docker.io): user namespaces and their network
    rootlesskit slirp4netns
    packer rsync git
    # imagefactory report: the layer graph (Graphviz's dot), and the browser its tests open it in
    graphviz chromium
    # venv for the system python3; node-gyp toolchain for gitlab-ci-local's native re2 module
    python3 python3-venv make g++
)

SETUP_LOG_DIR="$IF_HOST_DIR"

step() { if_log "$*"; }

# quietly NAME CMD...: run CMD with its output in $SETUP_LOG_DIR/setup-NAME.log; on failure
# show the tail of that log and stop.
quietly() {
    local name="$1"
    shift
    local log="$SETUP_LOG_DIR/setup-${name}.log"
    if ! "$@" >"$log" 2>&1; then
        printf -- '--- last lines of %s ---\n' "$log" >&2
        tail -n 30 "$log" >&2 || true
        printf -- '---\n' >&2
        if_die "step '$name' failed: $*"
    fi
}

# ---------------------------------------------------------------------------------------------

preflight() {
    [[ "$(id -u)" == 0 ]] || if_die "scripts/setup.sh must run as root (it installs packages and starts dockerd)"
    if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        . /etc/os-release
        if [[ "${ID:-}" != debian || "${VERSION_CODENAME:-}" != bookworm ]]; then
            if_warn "this script targets Debian 12 (bookworm); found ${PRETTY_NAME:-unknown}"
        fi
    fi
    mkdir -p "$SETUP_LOG_DIR"
    chmod 700 "$SETUP_LOG_DIR"
}

pkg_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

# apt-get install with a temporary policy-rc.d so that package scripts do not try to start
# docker/containerd/docker-registry as system services (services.sh starts what we need).
apt_install() {
    local created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" || rc=$?
    if ((created_policy)); then
        rm -f /usr/sbin/policy-rc.d
    fi
    return "$rc"
}

install_packages() {
    local -a missing=()
    local p
    for p in "${APT_PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        step "apt: all ${#APT_PACKAGES[@]} packages already installed"
        return 0
    fi
    step "apt: installing ${missing[*]}"
    quietly apt-update env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quietly apt-install apt_install "${missing[@]}"
    for p in "${missing[@]}"; do
        pkg_installed "$p" || if_die "apt: package $p is still not installed"
    done
}

check_tools() {
    local t
    for t in "$IF_DOCKER" dockerd docker-registry skopeo mmdebstrap packer rsync git htpasswd curl busybox; do
        command -v "$t" >/dev/null || if_die "required tool '$t' not found after package installation"
    done
    # The Debian CLI must be the one with the BuildKit builder (a newer CLI elsewhere on PATH may
    # lack buildx and refuse DOCKER_BUILDKIT=1).
    "$IF_DOCKER" --version | grep -q '^Docker version 20\.10\.' ||
        if_warn "$IF_DOCKER is not Debian's docker.io 20.10 CLI: $("$IF_DOCKER" --version)"
}

# gitlab_ci_local_ok: the pinned version is installed and its native re2 module loads.
gitlab_ci_local_ok() {
    command -v gitlab-ci-local >/dev/null || return 1
    [[ "$(timeout 60 gitlab-ci-local --version 2>/dev/null | tail -n1 || true)" == "$GITLAB_CI_LOCAL_VERSION" ]] ||
        return 1
    local root
    root="$(npm root -g 2>/dev/null)" || return 1
    GCL_DIR="$root/gitlab-ci-local" timeout 60 node -e \
        'require(require.resolve("re2", {paths: [process.env.GCL_DIR]}))' >/dev/null 2>&1
}

install_gitlab_ci_local() {
    local have=""
    if command -v gitlab-ci-local >/dev/null; then
        have="$(timeout 60 gitlab-ci-local --version 2>/dev/null | tail -n1 || true)"
    fi
    if gitlab_ci_local_ok; then
        step "gitlab-ci-local: $have already installed"
        return 0
    fi
    command -v npm >/dev/null || if_die "npm not found: install Node.js 20 (nodejs) first"
    local node_major
    node_major="$(node -p 'process.versions.node.split(".")[0]')"
    ((node_major >= 18)) || if_die "gitlab-ci-local $GITLAB_CI_LOCAL_VERSION needs Node >= 18, found $(node --version)"
    # re2 (a dependency) is a native module: its prebuilt download (GitHub) is unreachable here,
    # so node-gyp compiles it. Point node-gyp at the installed Node headers so that it does not
    # try to download them from nodejs.org.
    local node_prefix
    node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
    if [[ -z "${npm_config_nodedir:-}" && -f "$node_prefix/include/node/node.h" ]]; then
        export npm_config_nodedir="$node_prefix"
    fi
    step "gitlab-ci-local: installing $GITLAB_CI_LOCAL_VERSION${have:+ (found $have)} via npm (compiles native re2, ~1 min)"
    quietly npm-gitlab-ci-local npm install -g --no-audit --no-fund "gitlab-ci-local@${GITLAB_CI_LOCAL_VERSION}"
    gitlab_ci_local_ok ||
        if_die "gitlab-ci-local $GITLAB_CI_LOCAL_VERSION does not run after npm install (see $SETUP_LOG_DIR/setup-npm-gitlab-ci-local.log)"
}

setup_venv() {
    local venv="$IF_REPO_ROOT/.venv" stamp="$IF_REPO_ROOT/.venv/.imagefactory-setup"
    [[ -f "$IF_REPO_ROOT/pyproject.toml" ]] || if_die "no pyproject.toml in $IF_REPO_ROOT"
    command -v python3 >/dev/null || if_die "python3 not found on PATH"
    local want
    want="$(python3 -c 'import sys; print(sys.version.split()[0])') $(sha256sum "$IF_REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
        "$venv/bin/python" -c 'import imagefactory' >/dev/null 2>&1; then
        step "venv: $venv up to date"
        return 0
    fi
    if [[ -d "$venv" ]]; then
        local venv_version
        venv_version="$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || true)"
        if [[ "$venv_version" != "${want%% *}" ]]; then
            step "venv: $venv has python '${venv_version:-broken}', python3 on PATH is ${want%% *}; recreating"
            rm -rf "$venv"
        fi
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        step "venv: creating $venv with $(command -v python3) ($(python3 --version 2>&1))"
        quietly venv-create python3 -m venv "$venv"
    fi
    step "venv: pip install -e '.[dev]'"
    quietly venv-pip "$venv/bin/python" -m pip install --disable-pip-version-check -q -e "${IF_REPO_ROOT}[dev]"
    printf '%s\n' "$want" >"$stamp"
}

ROOTLESS_USER="imagefactory-rootless"

# The unprivileged user tests/integration/test_rootless_engine.py runs a rootless dockerd as:
# useradd gives it subordinate uid/gid ranges; slirp4netns opens /dev/net/tun as that user, which
# a standard Debian host allows (0666) and some sandboxes do not.
setup_rootless_user() {
    if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
        quietly rootless-user useradd --create-home --shell /usr/sbin/nologin "$ROOTLESS_USER"
    fi
    if ! grep -q "^$ROOTLESS_USER:" /etc/subuid || ! grep -q "^$ROOTLESS_USER:" /etc/subgid; then
        if_die "$ROOTLESS_USER has no subordinate uid/gid range in /etc/subuid and /etc/subgid"
    fi
    if [[ -c /dev/net/tun && "$(stat -c %a /dev/net/tun)" != 666 ]]; then
        chmod 0666 /dev/net/tun
    fi
    step "rootless: user $ROOTLESS_USER ready"
}

main() {
    local t0=$SECONDS
    preflight
    install_packages
    check_tools
    install_gitlab_ci_local
    setup_venv
    setup_rootless_user
    step "services: scripts/services.sh start"
    "$IF_REPO_ROOT/scripts/services.sh" start
    step "setup done in $((SECONDS - t0))s"
}

main "$@"
