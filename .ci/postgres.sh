#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests that load data through PostgresHook.
#
#   .ci/postgres.sh [start [DIR]]   start a cluster in DIR (default: a new temp dir) and print its URI
#   .ci/postgres.sh stop DIR        stop that cluster and delete DIR
#   .ci/postgres.sh uri DIR         print the URI of the cluster in DIR
#
# stdout carries only the URI (so `uri=$(.ci/postgres.sh)` works); progress goes to stderr.
# `start` on a DIR that already holds a cluster reuses it (starting it if it is stopped).
# Installs PostgreSQL with apt only when no server binaries are found (CI's fresh Debian 12).
set -euo pipefail

PG_USER=coinstats
PG_PASSWORD=coinstats
PG_DATABASE=coinstats_test
# Marks a directory this script made, so `stop` never deletes a directory it was pointed at by mistake.
MARKER=.coinstats-postgres

log() { echo "postgres.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Debian puts server binaries in /usr/lib/postgresql/<major>/bin, off PATH; newest major wins.
find_bindir() {
    local dir
    if [[ -n ${PG_BINDIR:-} ]]; then
        [[ -x $PG_BINDIR/postgres && -x $PG_BINDIR/initdb ]] || return 1
        echo "$PG_BINDIR"
        return 0
    fi
    while read -r dir; do
        if [[ -x $dir/postgres && -x $dir/initdb && -x $dir/pg_ctl ]]; then
            echo "$dir"
            return 0
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV)
    if command -v initdb >/dev/null; then
        dir=$(dirname "$(readlink -f "$(command -v initdb)")")
        if [[ -x $dir/postgres && -x $dir/pg_ctl ]]; then
            echo "$dir"
            return 0
        fi
    fi
    return 1
}

install_postgres() {
    [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get to install it"
    local t0=$SECONDS dropin=/etc/postgresql-common/createcluster.d/zz-coinstats-ci.conf
    log "installing PostgreSQL with apt-get"
    # The package would otherwise create and start a 'main' cluster on 5432 that nothing here uses.
    mkdir -p "$(dirname "$dropin")"
    echo "create_main_cluster = false" >"$dropin"
    local -a apt_install=(apt-get install -y -q --no-install-recommends postgresql)
    # A fresh image has no package lists; refresh them only when the install fails, as that is slow.
    if ! DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" >&2; then
        log "apt-get install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" >&2
    fi
    rm -f "$dropin"
    log "apt install took $((SECONDS - t0)) s"
}

# PostgreSQL refuses to run as root, so as root the server and its tools run as the postgres user.
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        # cd / because the caller's directory (e.g. /root) may be unreadable by postgres.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

ensure_pg_user() {
    [[ $EUID -eq 0 ]] || return 0
    id -u postgres >/dev/null 2>&1 && return 0
    log "creating system user postgres"
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home --shell /bin/bash postgres
}

# The kernel hands out a free port for port 0; the race until postgres binds it is retried in start_server.
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    else
        # No python3: a random high port, a clash is just as retryable.
        echo $((20000 + RANDOM % 40000))
    fi
}

uri_of() { echo "postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$(cat "$1/port")/$PG_DATABASE"; }

is_running() { as_pg "$BINDIR/pg_ctl" status -D "$1/data" >/dev/null 2>&1; }

wait_ready() {
    local dir=$1 port i
    port=$(cat "$dir/port")
    # pg_ctl -w already waited; this confirms the TCP listener the tests use, bounded to ~10 s.
    for ((i = 0; i < 100; i++)); do
        if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$dir/postgres.log" >&2 || true
    die "server in $dir did not accept connections on 127.0.0.1:$port"
}

init_cluster() {
    local dir=$1
    # --no-sync: a throwaway cluster need not survive a crash. C locale: no locale packages needed.
    if ! as_pg "$BINDIR/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --no-sync --auth=trust \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed in $dir"
    fi
    # Superuser only over the socket in the private dir; the test user with a password over TCP.
    cat >"$dir/data/pg_hba.conf" <<EOF
local all all               trust
host  all all 127.0.0.1/32  scram-sha-256
EOF
    # Durability settings off: test data is disposable and fsyncs dominate small-transaction tests.
    cat >>"$dir/data/postgresql.conf" <<EOF

# --- .ci/postgres.sh: throwaway test server ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
checkpoint_timeout = 1d
max_wal_size = 1GB
logging_collector = off
EOF
}

start_server() {
    local dir=$1 attempt port
    for attempt in 1 2 3; do
        port=${PG_PORT:-$(free_port)}
        echo "$port" >"$dir/port"
        if as_pg "$BINDIR/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 30 -s -o "-p $port" >&2; then
            return 0
        fi
        log "start on port $port failed (attempt $attempt); log tail:"
        tail -n 5 "$dir/postgres.log" >&2 || true
    done
    die "could not start PostgreSQL in $dir"
}

create_user_and_db() {
    local dir=$1
    as_pg "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(cat "$dir/port")" -U postgres -d postgres >/dev/null <<EOF
CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' CREATEDB;
CREATE DATABASE $PG_DATABASE OWNER $PG_USER;
EOF
}

cmd_start() {
    local dir=${1:-} t_start_ns
    t_start_ns=$(date +%s%N)
    BINDIR=$(find_bindir) || {
        install_postgres
        BINDIR=$(find_bindir) || die "no PostgreSQL server binaries after installing"
    }
    ensure_pg_user
    if [[ -z $dir ]]; then
        # /tmp, not $TMPDIR under /root: the postgres user must be able to reach the directory.
        dir=$(mktemp -d /tmp/coinstats-postgres.XXXXXX)
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if [[ -f $dir/$MARKER && -f $dir/data/PG_VERSION ]]; then
        if is_running "$dir"; then
            log "reusing the running server in $dir"
        else
            log "restarting the existing cluster in $dir"
            PG_PORT=${PG_PORT:-$(cat "$dir/port")} start_server "$dir"
        fi
        wait_ready "$dir"
    else
        [[ -z $(ls -A "$dir") ]] || die "$dir is not empty and holds no cluster made by this script"
        touch "$dir/$MARKER"
        if [[ $EUID -eq 0 ]]; then
            chown postgres: "$dir"
        fi
        # Private: the unix socket in here gives superuser access without a password.
        chmod 700 "$dir"
        init_cluster "$dir"
        start_server "$dir"
        wait_ready "$dir"
        create_user_and_db "$dir"
    fi
    local ms=$((($(date +%s%N) - t_start_ns) / 1000000))
    log "PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') ready in ${ms} ms (dir $dir; stop with: .ci/postgres.sh stop $dir)"
    uri_of "$dir"
}

cmd_stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    [[ -d $dir ]] || {
        log "$dir does not exist; nothing to stop"
        return 0
    }
    # An empty dir is what a caller's mktemp left when start failed before making the cluster.
    if [[ -z $(ls -A "$dir") ]]; then
        rmdir "$dir"
        return 0
    fi
    [[ -f $dir/$MARKER ]] || die "$dir was not made by this script; refusing to stop or delete it"
    BINDIR=$(find_bindir) || die "no PostgreSQL binaries found"
    if is_running "$dir"; then
        # immediate: no shutdown checkpoint, the data is thrown away next anyway.
        as_pg "$BINDIR/pg_ctl" stop -D "$dir/data" -m immediate -w -t 30 -s >&2
    fi
    rm -rf "$dir"
    log "stopped and removed $dir"
}

cmd_uri() {
    local dir=${1:?usage: postgres.sh uri DIR}
    [[ -f $dir/port ]] || die "no cluster in $dir"
    uri_of "$dir"
}

case ${1:-start} in
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
uri) cmd_uri "${2:-}" ;;
*) die "usage: $0 [start [DIR]] | stop DIR | uri DIR" ;;
esac
