#!/usr/bin/env bash
# Screenshot Snakemake's HTML report in headless Chromium, to check that it opens and renders.
#
#   bash tests/report_screenshot.sh [REPORT_HTML] [OUT_PNG]
#       defaults: results/report.html  results/report.png
#
#   CLICK='Figures|metrics_heatmap.png' bash tests/report_screenshot.sh ...
#       first click through the report's menu: link texts or result file names separated by
#       '|', clicked in turn (a file name opens that result, info:NAME its caption)
#       (on a temporary copy of the page with a small script added; the report is unchanged).
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
page=$html
if [ -n "${CLICK:-}" ]; then
    page="$profile/report.html"
    cp "$html" "$page"
    cat >>"$page" <<JS
<script>
(function () {
  var steps = "${CLICK}".split("|"), i = 0;
  function go() {
    if (i >= steps.length) return;
    // the innermost elements whose text is the step, then the link or button around them
    var info = steps[i].indexOf("info:") === 0, text = steps[i].replace(/^info:/, "");
    var hits = Array.prototype.filter.call(document.querySelectorAll("body *"), function (e) {
      return e.children.length === 0 && e.textContent.trim() === text;
    });
    if (hits.length) {
      // a result file: its "eye" button shows it, its "i" button the caption
      var row = hits[0].closest("tr");
      var icon = info ? "information-circle" : "eye";
      var button = row && row.querySelector("a[iconname=" + icon + "]");
      (button || hits[0].closest("a, button") || hits[0]).click();
      i += 1;
    }
    setTimeout(go, 700);
  }
  setTimeout(go, 1500);
})();
</script>
JS
fi
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$profile" \
    --virtual-time-budget=10000 --window-size="${WINDOW_SIZE:-1400,1000}" \
    --screenshot="$out" "file://$page" 2>"$profile/chromium.log" || {
    cat "$profile/chromium.log" >&2
    exit 1
}
[ -s "$out" ] || { echo "no screenshot written" >&2; exit 1; }
echo "screenshot: $out"
