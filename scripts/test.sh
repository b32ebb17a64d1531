#!/usr/bin/env bash
# Run the whole gc-audit test suite on a fresh machine.
#
# Installs what the tests need when it is missing (as root, with apt-get):
#   docker-registry  Debian's distribution 2.8.2, started on 127.0.0.1 by the tests that compare
#                    gc-audit with the real registry and its garbage-collect.
#   bsdutils         script(1): tests/progress_terminal.rs runs gc-audit under a pseudo-terminal.
# Then runs every test of the workspace (unit, scenario, end-to-end, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v script >/dev/null 2>&1 || need_apt+=(bsdutils)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need_apt[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "test.sh: missing ${need_apt[*]}: install with 'sudo apt-get install -y ${need_apt[*]}'" >&2
    exit 1
  fi
fi

# The tests that use a manifest cache name their own directory, and the others pass --no-cache;
# should one forget, it still does not write into this user's ~/.cache.
XDG_CACHE_HOME="$(mktemp -d)"
export XDG_CACHE_HOME
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT

cargo test --workspace --locked "$@"
