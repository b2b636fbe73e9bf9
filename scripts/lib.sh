# shellcheck shell=bash disable=SC2034
# Shared helpers for scripts/setup.sh and scripts/services.sh. Source it; do not execute it.
#
# Environment:
#   IMAGEFACTORY_HOST_DIR       state dir for host services (default: <repo>/.host, gitignored)
#   IMAGEFACTORY_REGISTRY_PORT  loopback port of the local registry (default: 5000)

IF_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IF_HOST_DIR="${IMAGEFACTORY_HOST_DIR:-${IF_REPO_ROOT}/.host}"
IF_REGISTRY_PORT="${IMAGEFACTORY_REGISTRY_PORT:-5000}"
IF_REGISTRY_USER="imagefactory"
# Debian's docker.io CLI: the one in /usr/local/bin (if any) may lack BuildKit support.
IF_DOCKER="/usr/bin/docker"

if_log() { printf '==> %s\n' "$*" >&2; }
if_warn() { printf 'WARNING: %s\n' "$*" >&2; }
if_die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# if_pid_alive PID [COMM]: PID exists (and, if COMM is given, its /proc comm matches it,
# which guards against a recycled pid).
if_pid_alive() {
    local pid="$1" comm="${2:-}"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A zombie is not alive for our purposes.
    local state
    state="$(awk '/^State:/ {print $2}' "/proc/${pid}/status" 2>/dev/null || true)"
    [[ "$state" != "Z" ]] || return 1
    if [[ -n "$comm" ]]; then
        [[ "$(cat "/proc/${pid}/comm" 2>/dev/null || true)" == "$comm" ]] || return 1
    fi
    return 0
}

# if_wait_until TIMEOUT_S INTERVAL_S CMD...: run CMD until it succeeds; bounded by both an
# attempt count and wall-clock time. Returns 1 on timeout.
if_wait_until() {
    local timeout="$1" interval="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    local max_tries=$((timeout * 10 + 1)) tries=0
    while ((tries < max_tries)); do
        if "$@"; then
            return 0
        fi
        tries=$((tries + 1))
        ((SECONDS < deadline)) || return 1
        sleep "$interval"
    done
    return 1
}
