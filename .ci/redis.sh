#!/usr/bin/env bash
# A throwaway Redis server (the Celery broker of `make e2e`).
#
#   .ci/redis.sh [start [DIR]]   start a server in DIR (default: a new temp dir) and print its URL
#   .ci/redis.sh stop DIR        stop that server and delete DIR
#   .ci/redis.sh uri DIR         print the URL of the server in DIR
#
# stdout carries only the URL; progress goes to stderr. Installs Debian's redis-server with apt only
# when it is missing. The server listens on 127.0.0.1 on a free port, keeps nothing on disk, and
# `stop` ends only the server whose pid file is in DIR.
set -euo pipefail

MARKER=.coinstats-redis

log() { echo "redis.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

install_redis() {
    [[ $EUID -eq 0 ]] || die "redis-server is not installed and installing it needs root (apt-get install redis-server)"
    command -v apt-get >/dev/null || die "redis-server is not installed and there is no apt-get to install it"
    local t0=$SECONDS policy=/usr/sbin/policy-rc.d created_policy=0
    log "installing redis-server with apt-get"
    # policy-rc.d 101: the package must not start a system-wide server on 6379.
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    local -a apt_install=(apt-get install -y -q --no-install-recommends redis-server)
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

uri_of() { echo "redis://127.0.0.1:$(cat "$1/port")/0"; }

ping() { redis-cli -h 127.0.0.1 -p "$(cat "$1/port")" ping 2>/dev/null | grep -q PONG; }

cmd_start() {
    local dir=${1:-} attempt port i t_start_ns
    t_start_ns=$(date +%s%N)
    command -v redis-server >/dev/null || install_redis
    [[ -n $dir ]] || dir=$(mktemp -d /tmp/coinstats-redis.XXXXXX)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if [[ -f $dir/$MARKER && -f $dir/redis.pid ]] && ping "$dir"; then
        log "reusing the running server in $dir"
        uri_of "$dir"
        return 0
    fi
    [[ -f $dir/$MARKER || -z $(ls -A "$dir") ]] || die "$dir is not empty and holds no server made by this script"
    touch "$dir/$MARKER"
    for attempt in 1 2 3; do
        port=${REDIS_PORT:-$(free_port)}
        echo "$port" >"$dir/port"
        redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$dir/redis.pid" \
            --logfile "$dir/redis.log" --dir "$dir" --save "" --appendonly no >&2 || true
        for ((i = 0; i < 100; i++)); do
            if ping "$dir"; then
                log "Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) ready in $((($(date +%s%N) - t_start_ns) / 1000000)) ms (dir $dir)"
                uri_of "$dir"
                return 0
            fi
            sleep 0.05
        done
        log "start on port $port failed (attempt $attempt)"
        tail -n 5 "$dir/redis.log" >&2 || true
    done
    die "could not start Redis in $dir"
}

cmd_stop() {
    local dir=${1:?usage: redis.sh stop DIR} pid i
    [[ -d $dir ]] || return 0
    if [[ -z $(ls -A "$dir") ]]; then
        rmdir "$dir"
        return 0
    fi
    [[ -f $dir/$MARKER ]] || die "$dir was not made by this script; refusing to stop or delete it"
    if [[ -f $dir/redis.pid ]]; then
        pid=$(cat "$dir/redis.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    log "stopped and removed $dir"
}

cmd_uri() {
    local dir=${1:?usage: redis.sh uri DIR}
    [[ -f $dir/port ]] || die "no server in $dir"
    uri_of "$dir"
}

case ${1:-start} in
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
uri) cmd_uri "${2:-}" ;;
*) die "usage: $0 [start [DIR]] | stop DIR | uri DIR" ;;
esac
