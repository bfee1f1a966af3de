#!/usr/bin/env bash
# Builds every plugin (examples/) and host-test fixture (fixtures/) of this
# workspace as a WebAssembly component (wasm32-wasip2, release profile),
# checks each one, and copies them, flat and under cargo's artifact names, to
# an output directory:
#
#   OUT/required_properties.wasm  OUT/pii_scrubber.wasm  OUT/bot_filter.wasm
#   OUT/fixture_<name>.wasm       (fixtures/<name>/, e.g. fixture_trap.wasm)
#   OUT/not-a-component.wasm      (a plain core module, checked in)
#
# Usage: plugins/build.sh [OUT]       OUT defaults to plugins/dist/
#
# Target dir: $CARGO_TARGET_DIR if set, else ${SLUICE_CACHE:-~/.cache/sluice}/plugins-target
# (outside the clone, separate from the host's target dir); the components
# are built in $CARGO_TARGET_DIR/wasm32-wasip2/release/.
#
# Checks per component: the header says "component" (layer 0x0d 0x00 0x01 0x00
# after the magic, where a core module has version 1 0 0 0), and the binary
# names the interface that [package.metadata.sluice].export in its Cargo.toml
# says it exports (for sluice plugins: and not the other world's interface,
# and no sluice:plugin interface of another version: the examples are
# `@0.2.0` plugins, most fixtures `@0.1.0` ones, and the SDK carries both).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/dist}
target=wasm32-wasip2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${SLUICE_CACHE:-$HOME/.cache/sluice}/plugins-target}
built=$CARGO_TARGET_DIR/$target/release

cd "$here"
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$target"; then
        echo "installing the $target target" >&2
        rustup target add "$target" >&2
    fi
else
    echo "warning: rustup not found; assuming the $target target is installed" >&2
fi

cargo build --locked --workspace --target "$target" --release

# First 8 bytes as hex; `od` only, no wasm-tools needed.
header() { od -An -tx1 -N8 "$1" | tr -d ' \n'; }
readonly COMPONENT=0061736d0d000100 CORE_MODULE=0061736d01000000

# `key = "value"` from a crate's [package.metadata.sluice] table.
meta() { sed -n '/^\[package\.metadata\.sluice\]/,/^\[/s/^'"$2"' = "\(.*\)"$/\1/p' "$1/Cargo.toml"; }

mkdir -p "$out"
failures=0
printf '%-32s %9s  %-10s %s\n' "file" "bytes" "kind" "world (export)"
for dir in examples/*/ fixtures/*/; do
    dir=${dir%/}
    [[ -f $dir/Cargo.toml ]] || continue
    package=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$dir/Cargo.toml" | head -n1)
    file=${package//-/_}.wasm
    world=$(meta "$dir" world)
    export=$(meta "$dir" export)
    if [[ ! -f $built/$file ]]; then
        echo "error: $built/$file was not built (is $dir a cdylib workspace member?)" >&2
        failures=$((failures + 1))
        continue
    fi
    # Copy then rename: a reader never sees a half-written component.
    cp "$built/$file" "$out/$file.tmp" && mv -f "$out/$file.tmp" "$out/$file"

    problem=
    if [[ $(header "$out/$file") != "$COMPONENT" ]]; then
        problem="not a component (header $(header "$out/$file"))"
    elif [[ -z $export ]]; then
        problem="no [package.metadata.sluice] export in $dir/Cargo.toml"
    elif ! grep -qaF "$export" "$out/$file"; then
        problem="does not export $export"
    fi
    case $export in
        sluice:plugin/validate@*) other=sluice:plugin/enrich@ ;;
        sluice:plugin/enrich@*) other=sluice:plugin/validate@ ;;
        *) other= ;;
    esac
    if [[ -z $problem && -n $other ]] && grep -qaF "$other" "$out/$file"; then
        problem="also names $other (wrong world?)"
    fi
    if [[ -z $problem && $export == sluice:plugin/* ]]; then
        # Every sluice:plugin interface it names (imports included) is of
        # the version it exports.
        version=${export##*@}
        stray=$(grep -aoE 'sluice:plugin/[a-z-]+@[0-9]+\.[0-9]+\.[0-9]+' "$out/$file" \
            | grep -vF "@$version" | sort -u | tr '\n' ' ' || true)
        if [[ -n $stray ]]; then
            problem="also names ${stray% } (another version)"
        fi
    fi
    printf '%-32s %9d  %-10s %s\n' "$file" "$(wc -c <"$out/$file")" component "$world ($export)"
    if [[ -n $problem ]]; then
        echo "error: $out/$file: $problem" >&2
        failures=$((failures + 1))
    fi
done

file=not-a-component.wasm
cp "fixtures/$file" "$out/$file.tmp" && mv -f "$out/$file.tmp" "$out/$file"
printf '%-32s %9d  %-10s %s\n' "$file" "$(wc -c <"$out/$file")" core "(a core module, no world)"
if [[ $(header "$out/$file") != "$CORE_MODULE" ]]; then
    echo "error: $out/$file is not a core module" >&2
    failures=$((failures + 1))
fi

if ((failures > 0)); then
    echo "build.sh: $failures problem(s)" >&2
    exit 1
fi
echo "components in $out"
