#!/usr/bin/env bash
# Builds every Python plugin (examples/*) and host-test fixture (fixtures/*)
# as a WebAssembly component with componentize-py, checks each one and
# copies it, flat, to an output directory:
#
#   OUT/py_<name>.wasm          examples/<name>/   (py_required_properties.wasm)
#   OUT/py_fixture_<name>.wasm  fixtures/<name>/   (py_fixture_infinite_loop.wasm)
#
# Usage: plugins/python/build.sh [OUT]     OUT defaults to plugins/dist/
#        (shared with plugins/build.sh; the py_ prefix keeps names apart)
#
#        plugins/python/build.sh --plugin DIR [OUT]
#        one plugin directory anywhere (what `sluice plugin build` runs for a
#        plugin made by `sluice plugin new --lang python`) -> OUT/<module>.wasm;
#        OUT defaults to DIR/dist/
#
# A plugin is a directory with <dir name>.py (the app module, which exports
# its class with sluice_plugin's @export_validator / @export_enricher; dashes
# in the directory's name become underscores: my-plugin/my_plugin.py) and a
# sluice.toml naming its world: `world = "validator"` or `world = "enricher"`.
# Its top-level hidden entries (.pytest_cache, .git, ...) and dist/ are not
# part of the component.
# It is built as
#   componentize-py -d wit/0.2.0 -w WORLD componentize MODULE -p DIR -p sdk -o OUT
# with VIRTUAL_ENV pointing at an empty site-packages, so nothing of the
# machine's Python (not even the names of its packages) ends up inside.
#
# Componentizing takes seconds per plugin, so outputs are cached in
# ${SLUICE_CACHE:-~/.cache/sluice}/plugins-py-cache/<key>.wasm, the key
# hashing the plugin's files, the SDK's, the WIT files, requirements.txt,
# the world and this recipe; entries unused for 30 days are removed.
# (componentize-py is not reproducible: two builds of the same sources
# differ in bytes, so the cache is also what keeps outputs stable.)
#
# Checks per component: the header says "component" (00 61 73 6d 0d 00 01 00)
# and the binary names the world's export interface (and not the other's).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
plugin=
if [[ ${1:-} == --plugin ]]; then
    if (($# < 2 || $# > 3)); then
        echo "usage: plugins/python/build.sh --plugin DIR [OUT]" >&2
        exit 2
    fi
    if [[ ! -d $2 ]]; then
        echo "error: $2 is not a directory" >&2
        exit 2
    fi
    plugin=$(cd "$2" && pwd)
    out=${3:-$plugin/dist}
else
    out=${1:-$here/../dist}
fi
wit=$(cd "$here/../../wit/0.2.0" && pwd)
version=${wit##*/}
sdk=$here/sdk
cache=$PY_CACHE/plugins-py-cache
# Bump when the componentize-py command line below changes.
readonly RECIPE="componentize-py -d WIT -w WORLD componentize MODULE -p DIR -p SDK; empty VIRTUAL_ENV; v1"
readonly COMPONENT=0061736d0d000100

py_venv
componentize=$PY_VENV/bin/componentize-py
mkdir -p "$out" "$cache"
find "$cache" -name '*.wasm' -mtime +30 -delete 2>/dev/null || true

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/empty-venv/lib/python3/site-packages"

header() { od -An -tx1 -N8 "$1" | tr -d ' \n'; }

# Copies a directory without bytecode, tests and sluice.toml, nor its
# top-level hidden entries and dist/ (caches, VCS, a --plugin build's output).
stage() { # SRC DEST
    rm -rf "$2" && mkdir -p "$2" && cp -R "$1/." "$2/"
    find "$2" -mindepth 1 -maxdepth 1 \( -name dist -o -name '.*' \) -exec rm -rf {} +
    find "$2" \( -name __pycache__ -o -name '*.pyc' -o -name 'test_*.py' -o -name '*_test.py' \
        -o -name conftest.py -o -name sluice.toml \) -prune -exec rm -rf {} +
}

# sha256 of every file under a directory (relative names).
tree_sums() {
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

cache_key() { # DIR WORLD MODULE
    {
        echo "recipe $RECIPE"
        echo "world $2 module $3"
        echo "plugin"; tree_sums "$1"
        echo "sdk"; tree_sums "$scratch/sdk"
        echo "wit"; tree_sums "$wit"
        echo "requirements"; sha256sum <"$PY_REQUIREMENTS"
    } | sha256sum | cut -c1-64
}

failures=0

# Builds the plugin in DIR into $out/FILE, prints its row and checks it;
# a problem is reported and counted in $failures.
build_one() { # DIR FILE
    local dir=$1 file=$2 name module world export other start app cached status seconds problem
    name=${dir##*/}
    module=${name//-/_}
    world=$(sed -n 's/^world *= *"\([a-z-]*\)" *$/\1/p' "$dir/sluice.toml")
    case $world in
        validator) export=sluice:plugin/validate@$version other=sluice:plugin/enrich@ ;;
        enricher) export=sluice:plugin/enrich@$version other=sluice:plugin/validate@ ;;
        *)
            echo "error: $dir/sluice.toml: world must be \"validator\" or \"enricher\", not \"$world\"" >&2
            failures=$((failures + 1))
            return 0
            ;;
    esac
    if [[ ! -f $dir/$module.py ]]; then
        echo "error: $dir has no $module.py (the app module is named after the directory)" >&2
        failures=$((failures + 1))
        return 0
    fi

    # The app's files as componentize-py sees them: without tests and
    # bytecode (its Python writes __pycache__ into the -p directories).
    start=$EPOCHREALTIME
    app=$scratch/app/$name
    stage "$dir" "$app"
    stage "$sdk" "$scratch/sdk" # again: a build writes bytecode into it
    cached=$cache/$(cache_key "$app" "$world" "$module").wasm
    if [[ -f $cached ]]; then
        status=cached
        touch "$cached"
    else
        status=built
        if ! VIRTUAL_ENV=$scratch/empty-venv "$componentize" -q -d "$wit" -w "$world" \
            componentize "$module" -p "$app" -p "$scratch/sdk" -o "$scratch/$file" >"$scratch/log" 2>&1; then
            sed '/^Stack backtrace:/,$d' "$scratch/log" >&2 # the Python error, not componentize-py's Rust frames
            echo "error: componentize-py failed for $dir" >&2
            failures=$((failures + 1))
            return 0
        fi
        mv -f "$scratch/$file" "$cached.tmp.$$" && mv -f "$cached.tmp.$$" "$cached"
    fi
    # Copy then rename: a reader never sees a half-written component.
    cp "$cached" "$out/$file.tmp" && mv -f "$out/$file.tmp" "$out/$file"
    seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    printf '%-34s %10d %8s  %s\n' "$file" "$(wc -c <"$out/$file")" "$seconds" "$status"

    problem=
    if [[ $(header "$out/$file") != "$COMPONENT" ]]; then
        problem="not a component (header $(header "$out/$file"))"
    elif ! grep -qaF "$export" "$out/$file"; then
        problem="does not export $export"
    elif grep -qaF "$other" "$out/$file"; then
        problem="also names $other (wrong world?)"
    fi
    if [[ -n $problem ]]; then
        echo "error: $out/$file: $problem" >&2
        rm -f "$cached"
        failures=$((failures + 1))
    fi
}

printf '%-34s %10s %8s  %s\n' file bytes seconds status
if [[ -n $plugin ]]; then
    if [[ -f $plugin/sluice.toml ]]; then
        name=${plugin##*/}
        build_one "$plugin" "${name//-/_}.wasm"
    else
        echo "error: $plugin has no sluice.toml (world = \"validator\" or \"enricher\")" >&2
        failures=$((failures + 1))
    fi
else
    for dir in "$here"/examples/*/ "$here"/fixtures/*/; do
        dir=${dir%/}
        [[ -f $dir/sluice.toml ]] || continue
        case ${dir%/*} in
            */fixtures) file=py_fixture_${dir##*/}.wasm ;;
            *) file=py_${dir##*/}.wasm ;;
        esac
        build_one "$dir" "${file//-/_}"
    done
fi

if ((failures > 0)); then
    echo "build.sh: $failures problem(s)" >&2
    exit 1
fi
echo "components in $(cd "$out" && pwd)"
