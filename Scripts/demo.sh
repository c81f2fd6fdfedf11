#!/usr/bin/env bash
# The main job: builds percrec and runs `percrec demo`: the media-plane self-test, then a
# 3-participant lab conference of about 30 s (one join, one leave, so rekeys) recorded by a
# `percrec record` process into the embedded archive storage/archive.sqlite, with its epoch keys
# sealed to a demo authority, then exported by the administrator to Ogg Opus and WebM files in
# storage/export/ (their paths are printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/bootstrap.sh
swift build --product percrec
exec "$(swift build --show-bin-path)/percrec" demo "$@"
