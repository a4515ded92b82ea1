#!/usr/bin/env bash
# Screenshot Snakemake's HTML report in headless Chromium, to check that it opens and renders.
#
#   bash tests/report_screenshot.sh [REPORT_HTML] [OUT_PNG]
#       defaults: results/report.html  results/report.png
#
# Needs Debian's chromium (apt-get install -y chromium). The report is a JavaScript app, so the
# page gets virtual time to render before the shot. Running as root needs --no-sandbox. Nothing
# is fetched from the network (the report bundles its assets). Look at the PNG afterwards.
set -euo pipefail
html=$(realpath "${1:-results/report.html}")
out=$(realpath -m "${2:-results/report.png}")
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "chromium not found: apt-get install -y chromium" >&2
    exit 2
fi
[ -f "$html" ] || { echo "no report at $html: run 'make report' first" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$profile" \
    --virtual-time-budget=10000 --window-size="${WINDOW_SIZE:-1400,1000}" \
    --screenshot="$out" "file://$html" 2>"$profile/chromium.log" || {
    cat "$profile/chromium.log" >&2
    exit 1
}
[ -s "$out" ] || { echo "no screenshot written" >&2; exit 1; }
echo "screenshot: $out"
