#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/bootstrap.sh
echo "test: building (debug, with tests)"
swift build --build-tests
echo "test: running the test suite"
swift test --skip-build
