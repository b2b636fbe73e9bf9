#!/usr/bin/env bash
# Start, stop and report the host services imagefactory needs: a Docker engine (dockerd, used
# through Debian's /usr/bin/docker with BuildKit) and a local registry (Debian's docker-registry,
# distribution 2.8) on 127.0.0.1 with htpasswd authentication.
#
# usage: scripts/services.sh start|stop|status
#
#   start   start dockerd if `docker info` fails, and the registry if nothing answers on
#           127.0.0.1:$IMAGEFACTORY_REGISTRY_PORT; records what it started.
#   stop    stop only what `start` recorded as started by it (SIGTERM, bounded wait, SIGKILL).
#   status  one line per service; exit 0 if both answer, 1 otherwise.
#
# Environment:
#   IMAGEFACTORY_HOST_DIR          state dir (default <repo>/.host): logs, pid records, registry
#                                  config/storage, registry.password (mode 600)
#   IMAGEFACTORY_REGISTRY_PORT     registry port on 127.0.0.1 (default 5000)
#   IMAGEFACTORY_DOCKERD_FLAGS     extra dockerd flags (word-split), e.g. "--storage-driver=vfs"
#   IMAGEFACTORY_DOCKERD_TIMEOUT   seconds to wait for dockerd to answer (default 60)
#
# The registry user is "imagefactory"; its password is generated once into
# $IMAGEFACTORY_HOST_DIR/registry.password and never printed.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="$IF_HOST_DIR"
PORT="$IF_REGISTRY_PORT"
DOCKERD_TIMEOUT="${IMAGEFACTORY_DOCKERD_TIMEOUT:-60}"
REGISTRY_TIMEOUT=30

DOCKERD_RECORD="$STATE/dockerd.started"
REGISTRY_RECORD="$STATE/registry.started"
PASSWORD_FILE="$STATE/registry.password"
REGISTRY_DIR="$STATE/registry"

[[ "$PORT" =~ ^[0-9]+$ ]] || if_die "IMAGEFACTORY_REGISTRY_PORT must be a number, got '$PORT'"

# ---------------------------------------------------------------------------------------------
# probes

docker_answers() { timeout 15 "$IF_DOCKER" info >/dev/null 2>&1; }

# HTTP status of GET /v2/ without credentials; 000 if nothing answers.
registry_code() {
    curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 5 \
        "http://127.0.0.1:${PORT}/v2/" 2>/dev/null || true
}
registry_answers() { [[ "$(registry_code)" != "000" ]]; }
registry_demands_auth() { [[ "$(registry_code)" == "401" ]]; }

# recorded_pid RECORD COMM: print the pid recorded in RECORD if that process is still alive
# and is COMM; otherwise print nothing (and drop a stale record).
recorded_pid() {
    local record="$1" comm="$2" pid
    [[ -f "$record" ]] || return 0
    pid="$(head -n1 "$record" 2>/dev/null || true)"
    if if_pid_alive "$pid" "$comm"; then
        printf '%s\n' "$pid"
    else
        rm -f "$record" 2>/dev/null || true
    fi
}

# log_tail FILE: print what the latest launch wrote to FILE (from the last "=== start" marker
# line written before each launch), at most 25 lines.
log_tail() {
    local file="$1"
    if [[ -f "$file" ]]; then
        printf -- '--- %s (latest start) ---\n' "$file" >&2
        awk '/^=== start / { n = 0 } { buf[n++] = $0 }
             END { s = (n > 25) ? n - 25 : 0; for (i = s; i < n; i++) print buf[i] }' "$file" >&2 || true
        printf -- '---\n' >&2
    fi
}

# ---------------------------------------------------------------------------------------------
# dockerd

# launch_dockerd EXTRA_FLAGS...: start dockerd detached (own session, so it outlives this
# script's process group), record its pid, wait bounded for it to answer.
launch_dockerd() {
    local -a flags=(--pidfile "$STATE/dockerd.pid" --log-level warn "$@")
    local -a user_flags=()
    if [[ -n "${IMAGEFACTORY_DOCKERD_FLAGS:-}" ]]; then
        read -r -a user_flags <<<"$IMAGEFACTORY_DOCKERD_FLAGS"
        flags+=("${user_flags[@]}")
    fi
    printf '=== start %s: dockerd %s\n' "$(date -u +%FT%TZ)" "${flags[*]}" >>"$STATE/dockerd.log"
    setsid dockerd "${flags[@]}" >>"$STATE/dockerd.log" 2>&1 </dev/null 9>&- &
    local pid=$!
    printf '%s\n' "$pid" >"$DOCKERD_RECORD"
    # Bounded wait: stop early if dockerd died.
    dockerd_up_or_dead() { docker_answers || ! if_pid_alive "$pid"; }
    if_wait_until "$DOCKERD_TIMEOUT" 0.5 dockerd_up_or_dead || true
    if docker_answers; then
        # dockerd's own pidfile is authoritative (in case setsid had to fork).
        local real
        real="$(cat "$STATE/dockerd.pid" 2>/dev/null || true)"
        if [[ "$real" != "$pid" ]] && if_pid_alive "$real" dockerd; then
            printf '%s\n' "$real" >"$DOCKERD_RECORD"
        fi
        return 0
    fi
    if if_pid_alive "$pid"; then
        if_warn "dockerd (pid $pid) did not answer within ${DOCKERD_TIMEOUT}s; stopping it"
        stop_pid "$pid" dockerd 30
    fi
    rm -f "$DOCKERD_RECORD"
    return 1
}

start_dockerd() {
    local pid
    pid="$(recorded_pid "$DOCKERD_RECORD" dockerd)"
    if docker_answers; then
        if [[ -n "$pid" ]]; then
            if_log "dockerd: already running (started by services.sh, pid $pid)"
        else
            if_log "dockerd: already running (not started by services.sh; left alone)"
        fi
        return 0
    fi
    if [[ -n "$pid" ]]; then
        if_log "dockerd: recorded pid $pid is alive but not answering; waiting"
        if if_wait_until "$DOCKERD_TIMEOUT" 1 docker_answers; then
            return 0
        fi
        if_die "dockerd (pid $pid, started by services.sh) does not answer; run '$0 stop' and retry"
    fi
    command -v dockerd >/dev/null || if_die "dockerd not found: run scripts/setup.sh first"

    if_log "dockerd: starting (log: $STATE/dockerd.log)"
    # Defaults (overlay2, docker0 bridge, iptables) work on a plain Debian 12 host. If they fail
    # (e.g. no iptables/bridge support in a sandbox), retry without the bridge network: image
    # builds and test containers use --network host / none anyway.
    if ! launch_dockerd; then
        log_tail "$STATE/dockerd.log"
        if_warn "dockerd failed with default flags; retrying with --bridge=none --iptables=false"
        if ! launch_dockerd --bridge=none --iptables=false --ip6tables=false; then
            log_tail "$STATE/dockerd.log"
            if_die "dockerd did not start; see $STATE/dockerd.log"
        fi
    fi
    pid="$(recorded_pid "$DOCKERD_RECORD" dockerd)"
    local driver
    driver="$("$IF_DOCKER" info --format '{{.Driver}}' 2>/dev/null || echo '?')"
    if_log "dockerd: running (pid $pid, storage driver $driver)"
}

# ---------------------------------------------------------------------------------------------
# registry

ensure_password() {
    if [[ ! -s "$PASSWORD_FILE" ]]; then
        (
            umask 077
            # 48 hex characters from the kernel CSPRNG; od reads exactly 24 bytes (no SIGPIPE).
            od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$PASSWORD_FILE.tmp"
        )
        mv -f "$PASSWORD_FILE.tmp" "$PASSWORD_FILE"
        if_log "registry: generated password for user '$IF_REGISTRY_USER' in $PASSWORD_FILE"
    fi
    chmod 600 "$PASSWORD_FILE"
}

write_registry_config() {
    mkdir -p "$REGISTRY_DIR/data"
    chmod 700 "$REGISTRY_DIR"
    local htpasswd="$REGISTRY_DIR/htpasswd"
    # bcrypt cost 6: the registry checks the password on every request (basic auth, no token),
    # and at cost 10 each check took ~70 ms, a push or an evidence append dozens of them. The
    # registry listens on loopback only; its password is random (see $PASSWORD_FILE).
    local cost=06
    if [[ ! -s "$htpasswd" || "$PASSWORD_FILE" -nt "$htpasswd" ]] ||
        ! grep -q "^[^:]*:\\\$2y\\\$$cost\\\$" "$htpasswd"; then
        command -v htpasswd >/dev/null || if_die "htpasswd not found (apache2-utils): run scripts/setup.sh"
        # -i: password from stdin (never on a command line); -B: bcrypt; -n: to stdout.
        (
            umask 077
            htpasswd -niB -C "$cost" "$IF_REGISTRY_USER" <"$PASSWORD_FILE" | sed '/^$/d' >"$htpasswd.tmp"
        )
        mv -f "$htpasswd.tmp" "$htpasswd"
    fi
    local secret_file="$REGISTRY_DIR/http.secret"
    if [[ ! -s "$secret_file" ]]; then
        (
            umask 077
            od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$secret_file"
        )
    fi
    (
        umask 077
        cat >"$REGISTRY_DIR/config.yml" <<EOF
# Generated by scripts/services.sh; rewritten on every start.
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: ${REGISTRY_DIR}/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:${PORT}
  secret: $(cat "$secret_file")
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: imagefactory-registry
    path: ${htpasswd}
EOF
    )
}

start_registry() {
    local pid
    pid="$(recorded_pid "$REGISTRY_RECORD" docker-registry)"
    if registry_answers; then
        if [[ -n "$pid" ]]; then
            if_log "registry: already running on 127.0.0.1:$PORT (started by services.sh, pid $pid)"
        else
            if_log "registry: something already answers on 127.0.0.1:$PORT (not started by services.sh; left alone)"
            registry_demands_auth ||
                if_warn "registry on 127.0.0.1:$PORT does not demand authentication (GET /v2/ -> $(registry_code))"
        fi
        return 0
    fi
    if [[ -n "$pid" ]]; then
        if_warn "registry: recorded pid $pid is alive but 127.0.0.1:$PORT does not answer; restarting it"
        stop_pid "$pid" docker-registry 10
        rm -f "$REGISTRY_RECORD"
    fi
    command -v docker-registry >/dev/null || if_die "docker-registry not found: run scripts/setup.sh first"

    ensure_password
    write_registry_config
    if_log "registry: starting on 127.0.0.1:$PORT (log: $STATE/registry.log)"
    printf '=== start %s: docker-registry serve %s\n' "$(date -u +%FT%TZ)" "$REGISTRY_DIR/config.yml" >>"$STATE/registry.log"
    setsid docker-registry serve "$REGISTRY_DIR/config.yml" >>"$STATE/registry.log" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$REGISTRY_RECORD"
    registry_up_or_dead() { registry_answers || ! if_pid_alive "$pid"; }
    if_wait_until "$REGISTRY_TIMEOUT" 0.2 registry_up_or_dead || true
    if ! if_pid_alive "$pid"; then
        rm -f "$REGISTRY_RECORD"
        log_tail "$STATE/registry.log"
        if_die "registry exited during start-up; see $STATE/registry.log"
    fi
    if ! registry_demands_auth; then
        stop_pid "$pid" docker-registry 10
        rm -f "$REGISTRY_RECORD"
        log_tail "$STATE/registry.log"
        if_die "registry did not answer 401 on http://127.0.0.1:$PORT/v2/ within ${REGISTRY_TIMEOUT}s"
    fi
    if_log "registry: running on 127.0.0.1:$PORT (pid $pid, user $IF_REGISTRY_USER, htpasswd/bcrypt)"
}

# ---------------------------------------------------------------------------------------------
# stop

# stop_pid PID COMM GRACE_S: SIGTERM, wait up to GRACE_S, then SIGKILL (bounded).
stop_pid() {
    local pid="$1" comm="$2" grace="$3"
    if_pid_alive "$pid" "$comm" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    gone() { ! if_pid_alive "$pid" "$comm"; }
    if if_wait_until "$grace" 0.2 gone; then
        return 0
    fi
    if_warn "$comm (pid $pid) still running after ${grace}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    if_wait_until 10 0.2 gone || if_warn "$comm (pid $pid) survived SIGKILL"
}

stop_service() {
    local name="$1" record="$2" comm="$3" grace="$4" pid
    pid="$(recorded_pid "$record" "$comm")"
    if [[ -n "$pid" ]]; then
        if_log "$name: stopping (pid $pid)"
        stop_pid "$pid" "$comm" "$grace"
        if_log "$name: stopped"
    else
        if_log "$name: nothing started by services.sh is running; left alone"
    fi
    rm -f "$record"
}

# ---------------------------------------------------------------------------------------------
# status

status_line() {
    local name="$1" up="$2" record="$3" comm="$4" where="$5" pid
    pid="$(recorded_pid "$record" "$comm")"
    if [[ "$up" == yes ]]; then
        if [[ -n "$pid" ]]; then
            printf '%s: running%s (started by services.sh, pid %s)\n' "$name" "$where" "$pid"
        else
            printf '%s: running%s (not started by services.sh)\n' "$name" "$where"
        fi
    elif [[ -n "$pid" ]]; then
        printf '%s: not answering%s (started by services.sh, pid %s still alive)\n' "$name" "$where" "$pid"
    else
        printf '%s: stopped\n' "$name"
    fi
}

cmd_status() {
    local d=no r=no rc=0
    docker_answers && d=yes
    registry_answers && r=yes
    status_line dockerd "$d" "$DOCKERD_RECORD" dockerd ""
    status_line registry "$r" "$REGISTRY_RECORD" docker-registry " on 127.0.0.1:$PORT"
    [[ "$d" == yes && "$r" == yes ]] || rc=1
    return "$rc"
}

# ---------------------------------------------------------------------------------------------

main() {
    local cmd="${1:-}"
    case "$cmd" in
    start | stop | status) ;;
    *)
        printf 'usage: %s start|stop|status\n' "$0" >&2
        exit 2
        ;;
    esac
    if [[ "$cmd" != status ]]; then
        [[ "$(id -u)" == 0 ]] || if_die "services.sh $cmd must run as root (it manages dockerd)"
    fi
    if [[ "$cmd" != status ]]; then
        mkdir -p "$STATE"
        chmod 700 "$STATE"
        # Serialize concurrent start/stop runs (bounded).
        exec 9>"$STATE/.services.lock"
        flock -w 180 9 || if_die "another services.sh run holds $STATE/.services.lock"
    fi
    case "$cmd" in
    start)
        start_dockerd
        start_registry
        ;;
    stop)
        stop_service registry "$REGISTRY_RECORD" docker-registry 10
        stop_service dockerd "$DOCKERD_RECORD" dockerd 45
        ;;
    status)
        cmd_status
        ;;
    esac
}

main "$@"
