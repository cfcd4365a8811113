#!/usr/bin/env bash
# Quick start, step 1: installs packages, fetches MNIST, builds, and trains the
# default network (lenet5) with its own settings, printing its test accuracy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/fetch-mnist.sh"
bash "$root/scripts/build.sh"
"$root/build/kiln" train lenet5 --out "$root/runs/lenet5"
