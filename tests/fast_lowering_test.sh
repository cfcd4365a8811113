#!/usr/bin/env bash
# generator/fast_lowering.cpp stands in for three of Halide 14's lowering passes
# in the generator. Its definitions must be bound (exported by the generator,
# which libHalide then calls) and must not change the computation: a network's
# training step generated with them and with Halide's own passes
# (KILN_HALIDE_PASSES=1) gives the same instructions in every function but the
# pipeline's top-level one (every loop body run in parallel: all the arithmetic),
# once comments and the numbers Halide appends to the names it makes unique
# (closures: "__1") are set aside; and the top-level function makes the same
# calls in the same order (allocations, frees, parallel loops), error reports
# aside. Halide's skip_stages, even where it skips nothing, may nest an
# allocation inside or outside a neighbour's consume block (seen in best's
# training step since its 14-wide convolutions run channels in vectors), which
# moves an allocation's failure check and the top-level function's registers.
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
        # The top-level function t_NAME (up to t_NAME_argv) apart: its calls only.
        awk -v f="t_$name:" -v end="t_${name}_argv:" '$0 == f {on = 1} $0 == end {on = 0} !on' \
            "$tmp/$pass/$name.norm" >"$tmp/$pass/$name.bodies"
        awk -v f="t_$name:" -v end="t_${name}_argv:" '$0 == f {on = 1} $0 == end {on = 0} on && /call/ && !/halide_error/' \
            "$tmp/$pass/$name.norm" >"$tmp/$pass/$name.calls"
    done
    if [ ! -s "$tmp/kiln/$name.calls" ]; then
        echo "FAIL: $name: no top-level function t_$name with calls in the assembly"
        status=1
    elif cmp -s "$tmp/kiln/$name.bodies" "$tmp/halide/$name.bodies" &&
        cmp -s "$tmp/kiln/$name.calls" "$tmp/halide/$name.calls"; then
        echo "ok: $name: the same $(grep -c . "$tmp/kiln/$name.bodies") lines of loop bodies and" \
            "$(grep -c . "$tmp/kiln/$name.calls") top-level calls either way"
    else
        echo "FAIL: $name: the generated code differs between kiln's and Halide's passes:"
        diff "$tmp/kiln/$name.bodies" "$tmp/halide/$name.bodies" | head -20
        diff "$tmp/kiln/$name.calls" "$tmp/halide/$name.calls" | head -20
        status=1
    fi
done
exit $status
