#!/usr/bin/env bash
# Prepare everything the opsmon test suite needs on a fresh Debian 12 machine:
#   1. apt packages (docker engine, busybox, Prometheus tools, compose, debootstrap)
#      and a check that the PostgreSQL 15 server binaries exist;
#   2. a Python virtualenv with the project installed (`pip install -e '.[test]'`);
#   3. a running Docker engine on unix:///var/run/docker.sock;
#   4. the local image local/busybox:1 (nothing can be pulled here);
#   5. the end-to-end suite's images (scripts/e2e-images.sh: built once, cached by a hash
#      of their inputs in the Docker image store, one line per image).
#
# Idempotent and safe to run again: each step only does work when something is
# missing. Prints one line per step with its duration; a failing step prints
# its captured output and the script exits non-zero.
#
# Environment:
#   OPSMON_VENV                    virtualenv folder (default: .venv in the repo root)
#   OPSMON_PYTHON                  interpreter used to create the venv (default: python3)
#   OPSMON_DOCKER_STORAGE_DRIVER   force a dockerd storage driver (default: overlay2
#                                  when the kernel supports it, else vfs)
#   OPSMON_APT_LOCK_TIMEOUT        seconds to wait for another apt/dpkg (default: 600)
#
# A dockerd started here has its pid in /tmp/opsmon-dockerd.pid; scripts/stop-test-env.sh
# stops it (and only it).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="${OPSMON_VENV:-.venv}"
PYTHON="${OPSMON_PYTHON:-python3}"
APT_LOCK_TIMEOUT="${OPSMON_APT_LOCK_TIMEOUT:-600}"
PG_BIN=/usr/lib/postgresql/15/bin
DOCKER_SOCK=/var/run/docker.sock
DOCKER_HOST_URL="unix://${DOCKER_SOCK}"
DOCKERD_PIDFILE=/tmp/opsmon-dockerd.pid
DOCKERD_LOG=/tmp/opsmon-dockerd.log
BUSYBOX_IMAGE=local/busybox:1
BUSYBOX_APPLETS="sh httpd sleep wget cat echo env printf kill ls mkdir rm test true false grep
head tail dd nc tr sed awk cut wc sort uniq id ps top free df du date hostname touch cp mv ln
chmod stat find xargs yes seq timeout nslookup ping ifconfig ip netstat vi less more gzip tar
which whoami uname basename dirname readlink realpath sync mount umount"

# Talk to the engine on the socket this script manages, whatever the caller's env says.
export DOCKER_HOST="$DOCKER_HOST_URL"
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH || true

if [[ $EUID -ne 0 ]]; then
    echo "test-env: must run as root (apt-get, dockerd)" >&2
    exit 1
fi

STEP_LOG="$(mktemp -t opsmon-test-env.XXXXXX)"
trap 'rm -f "$STEP_LOG"' EXIT

# step NAME FUNCTION: run FUNCTION with its output captured; print "ok"/"FAIL" and timing.
step() {
    local name="$1"; shift
    local start end rc=0
    start=$(date +%s.%N)
    : >"$STEP_LOG"
    # Run in a subshell so `set -e` applies inside the function body too.
    ( set -euo pipefail; "$@" ) >>"$STEP_LOG" 2>&1 || rc=$?
    end=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')
    local note=""
    if [[ -s "$STEP_LOG" ]]; then
        note=$(grep '^NOTE: ' "$STEP_LOG" | sed 's/^NOTE: //' | paste -sd';' - || true)
    fi
    if [[ $rc -ne 0 ]]; then
        printf 'test-env: %-22s FAIL (%ss, exit %d)\n' "$name" "$secs" "$rc" >&2
        sed 's/^/    /' "$STEP_LOG" >&2
        exit "$rc"
    fi
    printf 'test-env: %-22s ok   (%ss)%s\n' "$name" "$secs" "${note:+  $note}"
}

note() { echo "NOTE: $*"; }

# ---------------------------------------------------------------- apt ------

# Inodes of the locks apt/dpkg take; held when they appear in /proc/locks.
apt_lock_held() {
    local f ino
    for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock \
             /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
        [[ -e $f ]] || continue
        ino=$(stat -c %i "$f")
        if awk -v ino="$ino" '{ split($6, a, ":"); if (a[3] == ino) found=1 } END { exit !found }' /proc/locks; then
            return 0
        fi
    done
    return 1
}

wait_for_apt_lock() {
    local deadline=$(( $(date +%s) + APT_LOCK_TIMEOUT )) waited=0
    while apt_lock_held; do
        if (( $(date +%s) >= deadline )); then
            echo "apt/dpkg lock still held by another process after ${APT_LOCK_TIMEOUT}s" >&2
            return 1
        fi
        waited=1
        sleep 2
    done
    if (( waited )); then note "waited for apt lock"; fi
    return 0
}

APT_PKGS=(docker.io busybox-static prometheus prometheus-alertmanager
          prometheus-blackbox-exporter docker-compose debootstrap haproxy)

pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

apt_install() {
    # Keep apt from starting the packages' services (Prometheus on :9090 etc.);
    # only if no policy is in place already, and removed again afterwards.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        wait_for_apt_lock &&
        apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" update -qq &&
        wait_for_apt_lock &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" \
            install -y -qq --no-install-recommends "$@"
    } || rc=$?
    if (( made_policy )); then rm -f /usr/sbin/policy-rc.d; fi
    return "$rc"
}

step_apt() {
    # Another process may be installing right now: let it finish before judging.
    wait_for_apt_lock
    local missing=() p
    for p in "${APT_PKGS[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    # The binaries the tests call, in case a package is "installed" but broken.
    local c
    for c in dockerd busybox prometheus promtool prometheus-alertmanager \
             prometheus-blackbox-exporter docker-compose debootstrap haproxy; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    if (( ${#missing[@]} )); then
        note "installing: ${missing[*]}"
        apt_install "${APT_PKGS[@]}"
    fi
    for c in dockerd busybox prometheus promtool prometheus-alertmanager \
             prometheus-blackbox-exporter docker-compose debootstrap haproxy; do
        command -v "$c" >/dev/null 2>&1 || { echo "still missing after install: $c" >&2; return 1; }
    done
}

# Services the Debian packages may have started on their default ports
# (9090, 9093/9094, 9115, 9100). Only the packaged daemons are touched, by their
# init system or pid file: never Prometheus processes that tests started.
DEFAULT_SERVICES=(prometheus prometheus-alertmanager prometheus-blackbox-exporter
                  prometheus-node-exporter)

step_stop_default_services() {
    local svc pidfile pid stopped=()
    local have_systemd=0
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        have_systemd=1
    fi
    for svc in "${DEFAULT_SERVICES[@]}"; do
        if (( have_systemd )); then
            if systemctl is-active --quiet "$svc" 2>/dev/null; then
                systemctl stop "$svc" && stopped+=("$svc")
            fi
            if systemctl is-enabled --quiet "$svc" 2>/dev/null; then
                systemctl disable --quiet "$svc" || true
            fi
            continue
        fi
        [[ -x /etc/init.d/$svc ]] || continue
        for pidfile in "/run/prometheus/$svc.pid" "/run/$svc/$svc.pid"; do
            [[ -s $pidfile ]] || continue
            pid=$(cat "$pidfile")
            [[ $pid =~ ^[0-9]+$ ]] || continue
            kill -0 "$pid" 2>/dev/null || continue
            # Make sure the pid file really names the packaged daemon.
            [[ "$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)" == "/usr/bin/$svc" ]] || continue
            service "$svc" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
            local _
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
            stopped+=("$svc")
        done
        # Keep it from starting at boot (sysvinit links); harmless when absent.
        if command -v update-rc.d >/dev/null 2>&1 && compgen -G "/etc/rc[2-5].d/S*$svc" >/dev/null; then
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    if (( ${#stopped[@]} )); then note "stopped: ${stopped[*]}"; fi
}

step_postgres() {
    local b
    for b in postgres initdb pg_ctl; do
        if [[ ! -x $PG_BIN/$b ]]; then
            note "PostgreSQL 15 missing from $PG_BIN: installing postgresql-15"
            apt_install postgresql-15
            break
        fi
    done
    for b in postgres initdb pg_ctl; do
        if [[ ! -x $PG_BIN/$b ]]; then
            echo "PostgreSQL 15 server binary $PG_BIN/$b not found (even after installing postgresql-15)" >&2
            return 1
        fi
    done
    id postgres >/dev/null 2>&1 || { echo "user 'postgres' missing (initdb must not run as root)" >&2; return 1; }
}

# ---------------------------------------------------------------- venv -----

step_venv() {
    if [[ ! -f pyproject.toml ]]; then
        note "skipped: no pyproject.toml in $REPO_ROOT"
        return 0
    fi
    if [[ ! -x $VENV/bin/python ]]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
}

# ---------------------------------------------------------------- docker ---

docker_answers() {
    timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

pick_storage_driver() {
    if [[ -n ${OPSMON_DOCKER_STORAGE_DRIVER:-} ]]; then
        echo "$OPSMON_DOCKER_STORAGE_DRIVER"; return
    fi
    # overlay2 needs the overlay filesystem and a backing fs that supports it
    # (ext4/xfs); anything else falls back to vfs, which always works (slower).
    modprobe overlay >/dev/null 2>&1 || true
    local backing
    mkdir -p /var/lib/docker
    backing=$(stat -f -c %T /var/lib/docker 2>/dev/null || echo unknown)
    if grep -qw overlay /proc/filesystems && [[ $backing == ext2/ext3 || $backing == xfs ]]; then
        echo overlay2
    else
        echo vfs
    fi
}

step_dockerd() {
    if docker_answers; then
        return 0
    fi
    if [[ -S $DOCKER_SOCK ]] && pgrep -x dockerd >/dev/null 2>&1; then
        # Some dockerd owns the socket but does not answer yet: give it time, leave it alone.
        local _
        for _ in $(seq 30); do docker_answers && return 0; sleep 1; done
        echo "a dockerd is running but does not answer on $DOCKER_HOST_URL" >&2
        return 1
    fi
    local driver
    driver=$(pick_storage_driver)
    note "started dockerd (storage driver $driver)"
    setsid dockerd --host "$DOCKER_HOST_URL" --bridge=none --iptables=false --ip6tables=false \
        --storage-driver="$driver" </dev/null >"$DOCKERD_LOG" 2>&1 &
    local pid=$!
    echo "$pid" >"$DOCKERD_PIDFILE"
    local deadline=$(( $(date +%s) + 60 ))
    until docker_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$DOCKERD_PIDFILE"
            echo "dockerd exited early; last lines of $DOCKERD_LOG:" >&2
            tail -n 30 "$DOCKERD_LOG" >&2
            return 1
        fi
        if (( $(date +%s) >= deadline )); then
            echo "dockerd (pid $pid) did not answer within 60s; last lines of $DOCKERD_LOG:" >&2
            tail -n 30 "$DOCKERD_LOG" >&2
            return 1
        fi
        sleep 0.5
    done
}

step_busybox_image() {
    if docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    local root
    root=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT   # this step runs in its own subshell
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/root"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    local a
    for a in $BUSYBOX_APPLETS; do
        # Only applets this busybox build really has.
        if /bin/busybox --list | grep -qx "$a"; then
            ln -s busybox "$root/bin/$a"
        fi
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -c . | docker import \
        -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$BUSYBOX_IMAGE" >/dev/null
    note "built $BUSYBOX_IMAGE"
}

step_smoke() {
    local out
    out=$(timeout 60 docker run --rm --network host "$BUSYBOX_IMAGE" echo hi)
    [[ $out == hi ]] || { echo "container printed '$out', expected 'hi'" >&2; return 1; }
}

step_node() {
    # The e2e stack's npm installs and `next build` run on the host (Node is on the machine).
    local c
    for c in node npm; do
        command -v "$c" >/dev/null 2>&1 || { echo "$c not found: the e2e images need Node and npm" >&2; return 1; }
    done
}

# ---------------------------------------------------------------- main -----

step "apt packages"        step_apt
step "default services"    step_stop_default_services
step "postgresql 15"       step_postgres
step "python venv"         step_venv
step "docker engine"       step_dockerd
step "image $BUSYBOX_IMAGE" step_busybox_image
step "docker run smoke"    step_smoke
step "node and npm"        step_node
e2e_start=$(date +%s)
bash scripts/e2e-images.sh | sed 's/^e2e-images: /test-env:   /'
echo "test-env: e2e images           ok   ($(( $(date +%s) - e2e_start ))s)"

docker_ver=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
driver=$(docker info --format '{{.Driver}}' 2>/dev/null || echo '?')
prom_ver=$(promtool --version 2>&1 | awk 'NR==1{print $3}')
pg_ver=$("$PG_BIN/postgres" --version | awk '{print $3}')
echo "test-env: ready: docker ${docker_ver} (${driver}), promtool ${prom_ver}, postgres ${pg_ver}"
