#!/usr/bin/env bash
# A throwaway MariaDB server for the tests that load data through MySqlHook.
#
#   .ci/mariadb.sh [start [DIR]]   start a server in DIR (default: a new temp dir) and print its URI
#   .ci/mariadb.sh stop DIR        stop that server and delete DIR
#   .ci/mariadb.sh uri DIR         print the URI of the server in DIR
#   .ci/mariadb.sh client-dev      apt-install what building mysqlclient needs (libmariadb-dev,
#                                  pkg-config, a C compiler) when it is missing; run before `make venv`
#
# stdout carries only the URI (so `uri=$(.ci/mariadb.sh)` works); progress goes to stderr.
# Installs Debian's mariadb-server with apt only when no server binary is found (CI's fresh Debian 12).
# The server runs on 127.0.0.1 on a free port with its own data dir and socket; it never touches a
# system-wide MariaDB, and `stop` ends only the server whose pid file is in DIR.
set -euo pipefail

DB_USER=coinstats
DB_PASSWORD=coinstats
DB_DATABASE=coinstats_test
MARKER=.coinstats-mariadb

log() { echo "mariadb.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

find_server() {
    local candidate
    for candidate in "${MARIADB_BIN:-}" /usr/sbin/mariadbd /usr/sbin/mysqld "$(command -v mariadbd 2>/dev/null || true)"; do
        if [[ -n $candidate && -x $candidate ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_mariadb() {
    [[ $EUID -eq 0 ]] || die "MariaDB is not installed and installing it needs root (apt-get install mariadb-server)"
    command -v apt-get >/dev/null || die "MariaDB is not installed and there is no apt-get to install it"
    local t0=$SECONDS
    log "installing mariadb-server with apt-get"
    # policy-rc.d 101: the package must not start a system-wide server that nothing here uses.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    local -a apt_install=(apt-get install -y -q --no-install-recommends mariadb-server mariadb-client)
    if ! DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" >&2; then
        log "apt-get install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" >&2
    fi
    [[ $created_policy -eq 0 ]] || rm -f "$policy"
    log "apt install took $((SECONDS - t0)) s"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

uri_of() { echo "mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$(cat "$1/port")/$DB_DATABASE"; }

client() {
    local dir=$1
    shift
    local bin
    bin=$(command -v mariadb || command -v mysql) || die "no mariadb client found"
    "$bin" --no-defaults --protocol=socket --socket="$dir/mysqld.sock" -u root "$@"
}

is_running() {
    local dir=$1 pid
    [[ -f $dir/mysqld.pid ]] || return 1
    pid=$(cat "$dir/mysqld.pid")
    kill -0 "$pid" 2>/dev/null
}

wait_ready() {
    local dir=$1 i
    for ((i = 0; i < 300; i++)); do
        if [[ -S $dir/mysqld.sock ]] && client "$dir" -e 'SELECT 1' >/dev/null 2>&1; then
            return 0
        fi
        if [[ -f $dir/launcher.pid ]] && ! kill -0 "$(cat "$dir/launcher.pid")" 2>/dev/null; then
            tail -n 30 "$dir/mysqld.log" >&2 || true
            die "server in $dir exited during start-up"
        fi
        sleep 0.1
    done
    tail -n 30 "$dir/mysqld.log" >&2 || true
    die "server in $dir did not accept connections within 30 s"
}

start_server() {
    local dir=$1 attempt port server
    server=$(find_server)
    for attempt in 1 2 3; do
        port=${DB_PORT:-$(free_port)}
        echo "$port" >"$dir/port"
        # Durability off (throwaway data); no networking except 127.0.0.1; no name resolution.
        setsid "$server" --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
            --pid-file="$dir/mysqld.pid" --port="$port" --bind-address=127.0.0.1 \
            --log-error="$dir/mysqld.log" --skip-name-resolve --user="$(id -un)" \
            --innodb-flush-log-at-trx-commit=0 --sync-binlog=0 --innodb-doublewrite=0 \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
            </dev/null >/dev/null 2>&1 &
        echo $! >"$dir/launcher.pid"
        if (wait_ready "$dir") 2>/dev/null; then
            return 0
        fi
        log "start on port $port failed (attempt $attempt); log tail:"
        tail -n 5 "$dir/mysqld.log" >&2 || true
        kill "$(cat "$dir/launcher.pid")" 2>/dev/null || true
    done
    die "could not start MariaDB in $dir"
}

cmd_start() {
    local dir=${1:-} t_start_ns
    t_start_ns=$(date +%s%N)
    find_server >/dev/null || {
        install_mariadb
        find_server >/dev/null || die "no MariaDB server binary after installing"
    }
    [[ -n $dir ]] || dir=$(mktemp -d /tmp/coinstats-mariadb.XXXXXX)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if [[ -f $dir/$MARKER && -d $dir/data/mysql ]]; then
        if is_running "$dir"; then
            log "reusing the running server in $dir"
        else
            DB_PORT=${DB_PORT:-$(cat "$dir/port")} start_server "$dir"
        fi
    else
        [[ -z $(ls -A "$dir") ]] || die "$dir is not empty and holds no server made by this script"
        touch "$dir/$MARKER"
        chmod 700 "$dir"
        local installer
        installer=$(command -v mariadb-install-db || command -v mysql_install_db) || die "no mariadb-install-db"
        if ! "$installer" --no-defaults --datadir="$dir/data" --user="$(id -un)" --auth-root-authentication-method=socket \
            --skip-test-db >"$dir/install.log" 2>&1; then
            cat "$dir/install.log" >&2
            die "mariadb-install-db failed in $dir"
        fi
        start_server "$dir"
        client "$dir" <<SQL
CREATE DATABASE $DB_DATABASE CHARACTER SET utf8mb4;
CREATE USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
    fi
    local ms=$((($(date +%s%N) - t_start_ns) / 1000000))
    log "MariaDB $("$(find_server)" --version | awk '{print $3}') ready in ${ms} ms (dir $dir; stop with: .ci/mariadb.sh stop $dir)"
    uri_of "$dir"
}

cmd_stop() {
    local dir=${1:?usage: mariadb.sh stop DIR} pid i
    [[ -d $dir ]] || {
        log "$dir does not exist; nothing to stop"
        return 0
    }
    if [[ -z $(ls -A "$dir") ]]; then
        rmdir "$dir"
        return 0
    fi
    [[ -f $dir/$MARKER ]] || die "$dir was not made by this script; refusing to stop or delete it"
    if is_running "$dir"; then
        pid=$(cat "$dir/mysqld.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    log "stopped and removed $dir"
}

# mysqlclient (MySqlHook's default driver) has no Linux wheels: pip compiles it against
# libmariadb, found through pkg-config. Nothing is installed when both are already there.
cmd_client_dev() {
    local -a packages=()
    command -v pkg-config >/dev/null || packages+=(pkg-config)
    if ! command -v pkg-config >/dev/null || ! pkg-config --exists libmariadb; then
        packages+=(libmariadb-dev)
    fi
    command -v cc >/dev/null || packages+=(gcc libc6-dev)
    if [[ ${#packages[@]} -eq 0 ]]; then
        log "libmariadb-dev, pkg-config and a C compiler are present"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "building mysqlclient needs ${packages[*]}; installing them needs root (apt-get install)"
    command -v apt-get >/dev/null || die "building mysqlclient needs ${packages[*]} and there is no apt-get"
    local t0=$SECONDS
    log "installing ${packages[*]} with apt-get"
    local -a apt_install=(apt-get install -y -q --no-install-recommends "${packages[@]}")
    if ! DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" >&2; then
        log "apt-get install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" >&2
    fi
    pkg-config --exists libmariadb || die "pkg-config still finds no libmariadb after installing"
    log "apt install took $((SECONDS - t0)) s"
}

cmd_uri() {
    local dir=${1:?usage: mariadb.sh uri DIR}
    [[ -f $dir/port ]] || die "no server in $dir"
    uri_of "$dir"
}

case ${1:-start} in
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
uri) cmd_uri "${2:-}" ;;
client-dev) cmd_client_dev ;;
*) die "usage: $0 [start [DIR]] | stop DIR | uri DIR | client-dev" ;;
esac
