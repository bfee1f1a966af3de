# Sourced by build.sh, test.sh and tools/test-plugin.sh (from plugins/js/).

SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
export SLUICE_CACHE

# Node.js >= 20 and npm, or an error saying what to install.
require_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "error: node and npm not found: install Node.js 20 and npm" >&2
    return 1
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if ((major < 20)); then
    echo "error: Node.js $(node --version) is too old: install Node.js 20 and npm" >&2
    return 1
  fi
}

# `npm ci` unless node_modules was installed from this very package-lock.json
# (node_modules/.sluice-lock holds the lockfile's hash after a good install).
ensure_node_modules() {
  require_node
  local want have=""
  want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
  [[ -f node_modules/.sluice-lock ]] && have="$(cat node_modules/.sluice-lock)"
  if [[ "$want" != "$have" ]]; then
    echo "npm ci (node_modules missing or stale)" >&2
    local start=$SECONDS
    npm ci --cache "$SLUICE_CACHE/npm" --prefer-offline --no-audit --no-fund --loglevel=error >&2
    echo "$want" > node_modules/.sluice-lock
    echo "npm ci: $((SECONDS - start)) s" >&2
  fi
}
