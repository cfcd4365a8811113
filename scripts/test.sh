#!/usr/bin/env bash
# Quick start, step 2: builds what changed and runs every test (ctest).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure --timeout 1500
