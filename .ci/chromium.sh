#!/usr/bin/env bash
# Debian's chromium for the e2e UI checks (Playwright drives it; no browser is ever downloaded).
#
#   .ci/chromium.sh     print the browser's executable path, installing `chromium` with apt if missing
#
# stdout carries only the path; progress goes to stderr. CHROMIUM=/path/to/browser overrides it.
set -euo pipefail

log() { echo "chromium.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

find_browser() {
    local candidate
    for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
        if [[ -n $candidate && -x $candidate ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_chromium() {
    [[ $EUID -eq 0 ]] || die "chromium is not installed and installing it needs root (apt-get install chromium)"
    command -v apt-get >/dev/null || die "chromium is not installed and there is no apt-get to install it"
    local t0=$SECONDS
    log "installing chromium with apt-get"
    local -a apt_install=(apt-get install -y -q --no-install-recommends chromium)
    # A fresh image has no package lists; refresh them only when the install fails, as that is slow.
    if ! DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" >&2; then
        log "apt-get install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" >&2
    fi
    log "apt install took $((SECONDS - t0)) s"
}

find_browser || {
    install_chromium
    find_browser || die "no chromium executable after installing"
}
