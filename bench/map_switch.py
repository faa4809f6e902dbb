"""How long a method/dims click takes to redraw the map in a real browser (target <= 0.5 s).

Starts the app as the browser tests do (`streamlit run app.py` on a free port, its own data dir,
the bundled corpus ingested on first start), opens the Explorer in headless Chromium, places a
query on the map, visits each map once (a fit, or a map the background prefetch already made),
then switches between the now cached maps and times, inside the page, from the click to the
frame after Plotly has drawn the new map (its title names the method; 3-D has a scene).

    .venv/bin/python bench/map_switch.py             # 3 rounds over the 6 maps
    .venv/bin/python bench/map_switch.py --rounds 5

Times are wall seconds on this machine with everything else it runs: read them beside the
load average printed first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_browser import Page, make_driver, running_app, wait_for_first_start  # noqa: E402

TARGET_S = 0.5
MAPS = [("pca", 2), ("tsne", 2), ("umap", 2), ("pca", 3), ("tsne", 3), ("umap", 3)]

# Clicks the segmented-control button labelled `label` under the control whose label starts with
# `group`, then resolves with the milliseconds until a frame after the map shows `method`/`dims`.
_CLICK_AND_WAIT = """
const [group, label, method, dims, done] = arguments;
const controls = [...document.querySelectorAll('[data-testid="stButtonGroup"]')];
const control = controls.find(c => (c.closest('[data-testid="stElementContainer"]') || c)
    .innerText.includes(group));
const button = [...control.querySelectorAll('button')].find(b => b.innerText.trim() === label);
const figureShown = () => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullLayout || !gd.layout || !gd.layout.title) return false;
  const title = String(gd.layout.title.text || gd.layout.title);
  return title.includes(method.toUpperCase() + ' ·') && (!!gd._fullLayout.scene === (dims === 3));
};
const running = () => !!document.querySelector('[data-testid="stStatusWidget"]');
const started = performance.now();
let shown = null, idle = null;
button.click();
const poll = () => {
  const now = performance.now();
  if (now - started > 60000) { done([-1, -1, -1]); return; }
  if (shown === null && figureShown()) shown = now - started;
  if (idle === null && shown !== null && !running()) idle = now - started;
  if (shown !== null && idle !== null) {
    requestAnimationFrame(() => requestAnimationFrame(() => done([shown, idle, performance.now() - started])));
    return;
  }
  requestAnimationFrame(poll);
};
requestAnimationFrame(poll);
"""


def switch(page: Page, method: str, dims: int, current: tuple[str, int]) -> tuple[float, float, float]:
    """Seconds from one click (method or dims, whichever differs) to the new figure in the page
    (Plotly has drawn it: its layout names the new map), to the app's run finished, and to the
    frame after both."""
    if method != current[0]:
        group, label = "手法 / method", method
    else:
        group, label = "次元 / dims", str(dims)
    page.d.set_script_timeout(90)
    shown, idle, drawn = page.d.execute_async_script(_CLICK_AND_WAIT, group, label, method, dims)
    if drawn < 0:
        raise RuntimeError(f"{method} {dims}-D was not drawn within 60 s")
    page.idle()
    return shown / 1000, idle / 1000, drawn / 1000


def route() -> list[tuple[str, int]]:
    """A walk through all six maps where each step changes one control (method or dims)."""
    return [("tsne", 2), ("umap", 2), ("umap", 3), ("tsne", 3), ("pca", 3), ("pca", 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"target: a switch between cached maps <= {TARGET_S} s from click to drawn")
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp)) as url:
        wait_for_first_start(url)
        driver = make_driver(1400, 1000)
        try:
            page = Page(driver, url)
            driver.get(url + "/explorer")
            page.wait_css(".js-plotly-plot .main-svg", timeout=120)
            page.idle()
            box = page.wait_css('input[aria-label^="地図に置くテキスト"]')[0]
            from selenium.webdriver.common.keys import Keys

            box.send_keys("コサイン類似度とは？")
            box.send_keys(Keys.ENTER)
            page.wait_for(lambda: page.d.execute_script(
                "const gd = document.querySelector('.js-plotly-plot');"
                "return !!gd && !!gd.data && gd.data.some(t => t.name === 'query');"), "the query on the map")
            page.idle()
            current = ("pca", 2)
            for method, dims in route():
                *_, seconds = switch(page, method, dims, current)
                current = (method, dims)
                print(f"first visit  {method:4s} {dims}-D: {seconds:5.2f} s (a fit, or a prefetched map)",
                      flush=True)
            times = []
            for _ in range(args.rounds):
                for method, dims in route():
                    shown, _, seconds = switch(page, method, dims, current)
                    current = (method, dims)
                    times.append(seconds)
                    print(f"cached switch to {method:4s} {dims}-D: {seconds:5.2f} s "
                          f"(x{TARGET_S} s {seconds / TARGET_S:4.2f}; the new figure set in the page at "
                          f"{shown:4.2f} s, the rest is painting it)", flush=True)
            median = statistics.median(times)
            print(f"cached switches: median {median:.2f} s, worst {max(times):.2f} s over {len(times)} "
                  f"clicks -> median/{TARGET_S} s = {median / TARGET_S:.2f}")
        finally:
            driver.quit()
    time.sleep(0.1)


if __name__ == "__main__":
    main()
