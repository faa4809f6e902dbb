"""How long the app takes from `streamlit run` to a chat box a person can type into.

Two starts on a fresh data dir: the first ingests docs_corpus (what a newcomer sees after
`make run`), the second finds the store already filled (every later start). Each is timed to the
server's health check and to the chat input being visible in headless Chromium, which is what
"ready" means to a user. Target: cold start to ready <= 10 s.

    .venv/bin/python bench/app_start.py [--json] [--provider use|e5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import REPO, free_port, start_process, stop_process  # noqa: E402
from tests.test_browser import make_driver  # noqa: E402


def one_start(data_dir: Path, provider: str | None = None) -> dict[str, float]:
    from selenium.webdriver.common.by import By

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
    env["RAG_DATA_DIR"] = str(data_dir)
    if provider:
        env["RAG_EMBEDDING_PROVIDER"] = provider
    started = time.perf_counter()
    proc = start_process(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        f"http://127.0.0.1:{port}/_stcore/health", data_dir.parent / f"streamlit-{port}.log",
        timeout=120, cwd=data_dir.parent, env=env,
    )
    healthy = time.perf_counter()
    driver = make_driver()
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            boxes = driver.find_elements(By.CSS_SELECTOR, 'textarea[data-testid="stChatInputTextArea"]')
            running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
            if boxes and boxes[0].is_displayed() and not running:
                break
            time.sleep(0.05)
        ready = time.perf_counter()
    finally:
        driver.quit()
        stop_process(proc)
    return {"health_s": round(healthy - started, 2), "ready_s": round(ready - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--provider", help="RAG_EMBEDDING_PROVIDER for the app (default: its own default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rag"
        first = one_start(data, args.provider)
        again = one_start(data, args.provider)
    result = {"first_start": first, "cold_start": again, "target_ready_s": 10.0}
    print(f"first start (ingests docs_corpus): health {first['health_s']} s, ready {first['ready_s']} s")
    print(f"cold start (store filled):         health {again['health_s']} s, ready {again['ready_s']} s"
          f"  -> {again['ready_s'] / 10.0:.2f}x of the 10 s target")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
