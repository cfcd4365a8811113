# Shared by bench/profile.sh and bench/ab.sh (sourced): generate a pipeline,
# build bench/profile_driver.cpp against it, run it as one of kiln's cores does.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$(mktemp -d /tmp/kiln-profile.XXXXXX)
trap 'rm -rf "$out"' EXIT

# Sets file, stem, schedule, generator, define, and the network's sizes.
resolve_network() {
    file=$1
    [[ $file == *.toml ]] || file=networks/$1.toml
    [[ -f $file ]] || { echo "bench: error: $file: no such network file" >&2; exit 2; }
    stem=$(basename "$file" .toml)
    schedule=$(dirname "$file")/../schedules/$stem.toml
    [[ -f $schedule ]] || schedule=""
    case $2 in
        train) generator=kiln_train define=-DKILN_PROFILE_TRAIN ;;
        infer) generator=kiln_forward define= ;;
        *) echo "bench: error: pipeline '$2': must be train or infer" >&2; exit 2 ;;
    esac
    read -r params w h c classes < <(build/kiln check "$file" --json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin); i = d["input"]
print(d["param_count"], i["width"], i["height"], i["channels"], i["classes"])')
}

# generate GENERATOR FUNCTION TARGET: $out/FUNCTION.{a,h}
generate() {
    "$1" -g $generator -f "$2" -o "$out" -e static_library,h target="$3" network="$file" \
        ${schedule:+schedule="$schedule"}
}

# compile_driver [DEFINE LIBRARY]: $out/driver against $out/run.a (and LIBRARY)
compile_driver() {
    g++ -O2 -std=c++17 $define ${1:-} -I"$out" -I/usr/include/halide14 bench/profile_driver.cpp "$out/run.a" \
        ${2:-} -o "$out/driver" -lpthread -ldl
}

run_driver() {
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 HL_NUM_THREADS=1 "$out/driver" $pipeline "$params" "$w" "$h" "$c" "$1" \
        "$classes" "$2"
}
