#!/usr/bin/env bash
# The main job as far as it exists: builds percrec and runs `percrec demo`: the media-plane
# self-test, then a 3-participant lab conference (one join, one leave, so rekeys) recorded into
# the embedded archive storage/archive.sqlite, with its epoch keys sealed to a demo authority.
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/bootstrap.sh
swift build --product percrec
exec "$(swift build --show-bin-path)/percrec" demo "$@"
