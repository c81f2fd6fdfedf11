#!/usr/bin/env bash
# The main job as far as it exists: builds percrec and runs `percrec demo`.
# Today that is the media-plane self-test: one double-encrypted RTP packet carrying an EKT field
# goes sender → Media Distributor → receiver, and every step is checked and printed.
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/bootstrap.sh
swift build --product percrec
exec "$(swift build --show-bin-path)/percrec" demo "$@"
