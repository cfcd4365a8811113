#!/usr/bin/env bash
# install_test.sh BUILD_DIR EXAMPLE_DIR DATA_DIR [CMAKE_GENERATOR]
#
# Kiln as a package: `cmake --install` into a temporary prefix; the example
# project (its own network file, find_package(Kiln)) configured and built against
# that prefix alone; its network trained briefly by the installed kiln (compiled
# on demand with the installed generator); then the example classifies MNIST
# test digits written as PNG files (half of them dark ink on white), and must get
# most of them right and agree with `kiln predict`. Bad files give one line each.
set -euo pipefail
build=$(cd "$1" && pwd)
example=$(cd "$2" && pwd)
data=$3
generator=${4:-Ninja}
count=100        # test digits classified
min_correct=85   # of them, after one epoch on 12,000 training images (measured: 96-98)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
python=/usr/bin/python3; [[ -x $python ]] || python=python3

echo "== cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
for f in bin/kiln bin/kiln_generator lib/cmake/Kiln/KilnConfig.cmake include/kiln/compiled.h include/kiln/process.h; do
    [[ -e $prefix/$f ]] || fail "$f is not installed"
done
if grep -rlF -e "$build" "$prefix/lib/cmake"; then fail "the installed CMake files name the build folder"; fi

echo "== the example project, configured against the prefix only"
start=$SECONDS
cmake -S "$example" -B "$tmp/example" -G "$generator" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
      -DKILN_TARGETS=host > "$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configuring the example"; }
cmake --build "$tmp/example" > "$tmp/build.log" 2>&1 || { tail -40 "$tmp/build.log"; fail "building the example"; }
recognizer=$tmp/example/digit-recognizer
[[ -x $recognizer ]] || fail "no digit-recognizer built"
echo "   built in $((SECONDS - start)) s"

echo "== its network trained by the installed kiln"
export KILN_CACHE=$tmp/cache
unset KILN_GENERATOR
start=$SECONDS
"$prefix/bin/kiln" train "$example/digits.toml" --epochs 1 --limit-train 12000 --limit-test 1000 \
    --data "$data" --out "$tmp/run" --no-progress
checkpoint=$tmp/run/checkpoint.safetensors
[[ -s $checkpoint ]] || fail "no checkpoint written"
echo "   trained in $((SECONDS - start)) s"

echo "== $count MNIST test digits as PNG files"
mkdir "$tmp/png"
"$python" - "$data" "$tmp/png" "$count" <<'PY'
import gzip, os, struct, sys, zlib
data, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def read(name):
    for path in (f"{data}/{name}", f"{data}/{name}.gz"):
        if os.path.exists(path):
            with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
                return f.read()
    sys.exit(f"{data}/{name}: error: missing")
images, labels = read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
with open(f"{out}/labels.txt", "w") as listing:
    for i in range(count):
        pixels = images[16 + 784 * i:16 + 784 * (i + 1)]
        if i % 2:  # dark ink on white paper
            pixels = bytes(255 - p for p in pixels)
        rows = b"".join(b"\0" + pixels[28 * r:28 * (r + 1)] for r in range(28))
        png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) +
               chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
        name = f"{out}/{i:03d}.png"
        with open(name, "wb") as f:
            f.write(png)
        print(name, labels[8 + i], file=listing)
PY
mapfile -t files < <(cut -d' ' -f1 "$tmp/png/labels.txt")

echo "== digit-recognizer on them"
"$recognizer" "$checkpoint" "${files[@]}" > "$tmp/recognized.txt" || fail "digit-recognizer exited with $?"
head -3 "$tmp/recognized.txt"
[[ $(wc -l < "$tmp/recognized.txt") -eq $count ]] || fail "expected $count lines of output"
correct=$(paste -d' ' "$tmp/png/labels.txt" "$tmp/recognized.txt" |
          awk '{ if ($3 != $1 ":") bad = 1; else if ($4 == $2) n++ } END { print bad ? -1 : n + 0 }')
[[ $correct -ge 0 ]] || fail "the output's lines are not in the order of the files"
echo "   $correct of $count correct"
[[ $correct -ge $min_correct ]] || fail "only $correct of $count digits correct (at least $min_correct expected)"

echo "== the same digits as kiln predict"
"$prefix/bin/kiln" predict "$example/digits.toml" --checkpoint "$checkpoint" "${files[@]}" > "$tmp/predicted.txt"
differ=$(paste -d' ' <(awk '{ print $2 }' "$tmp/recognized.txt") <(awk '{ print $2 }' "$tmp/predicted.txt") |
         awk '$1 != $2' | wc -l)
[[ $differ -le 1 ]] || fail "digit-recognizer and kiln predict disagree on $differ of $count digits"

echo "== bad input: one line naming the file, exit code 1"
expect_error() {  # expect_error NAME_IN_MESSAGE ARGS...
    local name=$1; shift
    local code=0
    "$recognizer" "$@" > /dev/null 2> "$tmp/err.txt" || code=$?
    [[ $code -eq 1 ]] || fail "digit-recognizer $*: exit code $code, expected 1"
    [[ $(wc -l < "$tmp/err.txt") -eq 1 ]] || { cat "$tmp/err.txt"; fail "digit-recognizer $*: not one line"; }
    grep -qF "$name: error: " "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "digit-recognizer $*: the message does not name $name"; }
}
expect_error "$tmp/missing.safetensors" "$tmp/missing.safetensors" "${files[0]}"
head -c 1000 "$checkpoint" > "$tmp/truncated.safetensors"
expect_error "$tmp/truncated.safetensors" "$tmp/truncated.safetensors" "${files[0]}"
echo "not an image" > "$tmp/note.png"
expect_error "$tmp/note.png" "$checkpoint" "${files[0]}" "$tmp/note.png"
code=0
"$recognizer" > /dev/null 2>&1 || code=$?
[[ $code -eq 2 ]] || fail "digit-recognizer without arguments: exit code $code, expected 2"
echo "install_test: OK"
