"""Opens kpipe's HTML report in Chromium, offline, and checks that every chart was drawn.

    check_report.py REPORT.html --expected EXPECTED.json --screenshot OUT.png [--chromium PATH]

EXPECTED.json maps each chart's canvas id to the number of datasets it must hold. The browser
runs headless with a fresh profile and no network: any request other than the report itself is
aborted and reported, as is any console error or page error. For every canvas, the chart must
be drawn (pixels painted, data elements drawn) with as many datasets as its `data-series`
attribute says, and the canvases must be exactly the expected ones. A full-page screenshot is
saved to OUT.png. Exits 1 on any problem, listing them all.
"""

import argparse
import json
import pathlib
import sys
import tempfile

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# What each canvas shows, measured in the page.
MEASURE = """
() => Array.from(document.querySelectorAll("canvas")).map((canvas) => {
  const chart = Chart.getChart(canvas);
  let painted = 0;
  if (canvas.width > 0 && canvas.height > 0) {
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) {
      if (pixels[i] !== 0) painted += 1;
    }
  }
  let elements = 0;
  if (chart) {
    chart.data.datasets.forEach((_, i) => {
      elements += chart.getDatasetMeta(i).data.filter((e) => !e.skip).length;
    });
  }
  return {
    id: canvas.id,
    series: canvas.getAttribute("data-series"),
    datasets: chart ? chart.data.datasets.length : null,
    elements: elements,
    painted: painted,
    pixels: canvas.width * canvas.height,
  };
})
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report")
    parser.add_argument("--expected", required=True)
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    report = pathlib.Path(args.report).resolve()
    url = report.as_uri()
    expected = json.loads(pathlib.Path(args.expected).read_text())
    problems = []
    requests = []

    def on_request(request):
        if request.url != url:
            requests.append(request.url)

    def route(route_, request):
        if request.url == url:
            route_.continue_()
        else:
            requests.append(request.url)
            route_.abort()

    with tempfile.TemporaryDirectory(prefix="kpipe-report-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=args.chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            device_scale_factor=1,
        )
        try:
            context.set_offline(True)
            context.route("**/*", route)
            page = context.new_page()
            page.on("request", on_request)
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(url, wait_until="load")
            page.wait_for_function("document.documentElement.hasAttribute('data-charts-drawn')", timeout=30_000)
            drawn = int(page.evaluate("document.documentElement.getAttribute('data-charts-drawn')"))
            measured = page.evaluate(MEASURE)
            page.screenshot(path=args.screenshot, full_page=True)
        finally:
            context.close()

    for r in measured:
        where = f"canvas #{r['id']}"
        if r["datasets"] is None:
            problems.append(f"{where}: no chart")
            continue
        if str(r["datasets"]) != r["series"]:
            problems.append(f"{where}: {r['datasets']} dataset(s) drawn, data-series says {r['series']}")
        if r["id"] in expected and r["datasets"] != expected[r["id"]]:
            problems.append(f"{where}: {r['datasets']} dataset(s), {expected[r['id']]} expected")
        if r["painted"] == 0 or r["elements"] == 0:
            problems.append(f"{where}: blank ({r['painted']} of {r['pixels']} pixels painted, {r['elements']} data elements)")
    ids = [r["id"] for r in measured]
    if len(set(ids)) != len(ids):
        problems.append(f"canvas ids repeat: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    missing = sorted(set(expected) - set(ids))
    unexpected = sorted(set(ids) - set(expected))
    if missing:
        problems.append(f"charts expected but not on the page: {missing}")
    if unexpected:
        problems.append(f"charts on the page but not expected: {unexpected}")
    if drawn != len(measured):
        problems.append(f"the page drew {drawn} chart(s) of {len(measured)} canvas(es)")
    for request in sorted(set(requests)):
        problems.append(f"network request attempted: {request}")

    if problems:
        print(f"{len(problems)} problem(s) in {report}:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(
        f"{len(measured)} chart(s) drawn as expected, {sum(r['datasets'] for r in measured)} dataset(s), "
        f"offline, no console error; screenshot {args.screenshot}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
