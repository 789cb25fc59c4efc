"""The browser page under a firehose: frame times in headless Chromium while it streams.

The page at / runs ``firehose`` with n=200,000 from its own form, as a person would; a
requestAnimationFrame loop in the page records every frame's interval from the click on
Run until the card says ``succeeded``, and a PerformanceObserver the tasks over 50 ms.
A page that did one DOM update per message would show here as long frames.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N = 200_000

_MEASURE = """
const [n] = arguments;
window.measured = { frames: [], longTasks: [], end: null, chunks: null };
const m = window.measured;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) m.longTasks.push(entry.duration);
}).observe({ type: "longtask" });
document.querySelector("#param-n").value = String(n);
m.start = performance.now();
let last = m.start;
function frame(now) {
  m.frames.push(now - last);
  last = now;
  const status = document.querySelector(".card .card-status")?.textContent;
  if (status === "succeeded") {
    m.end = now;
    m.chunks = document.querySelector(".card .card-stats").textContent;
    return;
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
document.querySelector("#run").click();
"""


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _once(driver: Any, url: str) -> dict[str, Any]:
    from selenium.webdriver.support.wait import WebDriverWait

    driver.get(url + "/")
    WebDriverWait(driver, 30, 0.05).until(
        lambda d: d.execute_script("return !!document.querySelector('#run')")
    )
    driver.execute_script("document.querySelector('[data-name=\"firehose\"]').click()")
    WebDriverWait(driver, 30, 0.05).until(
        lambda d: d.execute_script("return !!document.querySelector('#param-n')")
    )
    driver.execute_script(_MEASURE, N)
    WebDriverWait(driver, 300, 0.2).until(
        lambda d: d.execute_script("return window.measured.end !== null")
    )
    measured = driver.execute_script("return window.measured")
    assert f"{N:,} chunks" in measured["chunks"], measured["chunks"]
    frames = measured["frames"][1:]  # the first counts from the click, not a frame
    return {
        "median": statistics.median(frames),
        "p99": _percentile(frames, 99),
        "worst": max(frames),
        "frames": len(frames),
        "seconds": (measured["end"] - measured["start"]) / 1000,
        "long_tasks": len(measured["longTasks"]),
        "long_task_worst": max(measured["longTasks"], default=0.0),
    }


def bench_browser(reps: int) -> str:
    sys.path.insert(0, str(HERE.parent))  # tests/: the browser helpers the tests use
    from browser import DESKTOP, chromium
    from run import server, table

    results = []
    with server("streambind") as (url, _), chromium(DESKTOP) as driver:
        _once(driver, url)  # untimed: the browser's caches and the server's first run
        for _ in range(reps):
            results.append(_once(driver, url))
            time.sleep(0.5)  # the finished run's memory settles before the next

    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    rows = [
        ["frame interval while streaming, median", f"{med('median'):.1f} ms"],
        ["frame interval while streaming, p99", f"{med('p99'):.1f} ms"],
        ["frame interval while streaming, worst", f"{med('worst'):.1f} ms"],
        ["frames drawn during the run", f"{med('frames'):.0f}"],
        ["Run clicked to the card at succeeded with every chunk", f"{med('seconds'):.2f} s"],
        [
            "tasks over 50 ms (longest)",
            f"{med('long_tasks'):.0f} ({med('long_task_worst'):.0f} ms)",
        ],
    ]
    return table(
        f"The browser page under a {N:,}-message firehose (headless Chromium, 1280×800, "
        f"median of {reps} runs)",
        ["measure", "median"],
        rows,
    )
