#!/usr/bin/env bash
# generator/fast_lowering.cpp stands in for three of Halide 14's lowering passes
# in the generator. Its definitions must be bound (exported by the generator,
# which libHalide then calls) and must not change the code: a network's training
# step generated with them and with Halide's own passes (KILN_HALIDE_PASSES=1)
# gives the same instructions, once comments and the numbers Halide appends to
# the names it makes unique (closures: "__1") are set aside.
# Usage: fast_lowering_test.sh GENERATOR NETWORK_TOML...
set -u
generator=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

for pass in 20fork_async_producers 16add_atomic_mutex 11skip_stages; do
    if ! nm -D "$generator" | grep -q " T _ZN6Halide8Internal$pass"; then
        echo "FAIL: $generator does not export its ${pass#[0-9][0-9]}: Halide's own pass would run"
        exit 1
    fi
done

# Assembly without comments and without the numbers of names made unique.
normalized() {
    sed -E -e 's/#.*//' -e 's/[ \t]+$//' -e 's/__[0-9]+\b//g' "$1"
}

for network in "$@"; do
    name=$(basename "$network" .toml)
    for pass in kiln halide; do
        mkdir -p "$tmp/$pass"
        unset KILN_HALIDE_PASSES
        [ "$pass" = halide ] && export KILN_HALIDE_PASSES=1
        if ! "$generator" -g kiln_train -f "t_$name" -o "$tmp/$pass" -e assembly target=host \
            network="$network" schedule=/dev/null >"$tmp/$pass/$name.log" 2>&1; then
            echo "FAIL: generating $name's training step ($pass's passes):"
            cat "$tmp/$pass/$name.log"
            exit 1
        fi
        normalized "$tmp/$pass/t_$name.s" >"$tmp/$pass/$name.norm"
    done
    if cmp -s "$tmp/kiln/$name.norm" "$tmp/halide/$name.norm"; then
        echo "ok: $name: the same $(grep -c . "$tmp/kiln/$name.norm") lines of assembly either way"
    else
        echo "FAIL: $name: the generated code differs between kiln's and Halide's passes:"
        diff "$tmp/kiln/$name.norm" "$tmp/halide/$name.norm" | head -20
        status=1
    fi
done
exit $status
