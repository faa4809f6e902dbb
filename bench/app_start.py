"""How long the app takes from `streamlit run` to a chat box a person can type into.

Two starts on a fresh data dir: the first ingests docs_corpus (what a newcomer sees after
`make run`), the second finds the store already filled (every later start). Each is timed to the
server's health check, to the first text of ours on the page (`label`: a spinner or the
navigation, so the page is not blank), to the chat input being visible in headless Chromium
(`ready`: a question can be asked; on the first start the corpus is still being ingested in the
background then), and to the end of the first-start ingest (`indexed`: its report is shown).
Target: ready <= 10 s.

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
        deadline = time.monotonic() + 900  # e5 indexes docs_corpus in minutes on 2 loaded cores
        label = ready = indexed = None
        while time.monotonic() < deadline and indexed is None:
            now = time.perf_counter()
            text = driver.find_element(By.TAG_NAME, "body").text
            if label is None and ("Chat" in text or "Loading" in text or "First start" in text):
                label = now
            if ready is None:
                boxes = driver.find_elements(By.CSS_SELECTOR, 'textarea[data-testid="stChatInputTextArea"]')
                if boxes and boxes[0].is_displayed():
                    ready = now
            if ready is not None and "First start" not in text:
                indexed = now
            time.sleep(0.05)
    finally:
        driver.quit()
        stop_process(proc)

    def since(t: float | None) -> float | None:
        return None if t is None else round(t - started, 2)

    return {"health_s": since(healthy), "label_s": since(label), "ready_s": since(ready),
            "indexed_s": since(indexed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--provider", help="RAG_EMBEDDING_PROVIDER for the app (default: its own default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rag"
        first = one_start(data, args.provider)
        again = one_start(data, args.provider)
    result = {"first_start": first, "cold_start": again, "target_ready_s": 10.0,
              "load_average": round(os.getloadavg()[0], 1)}
    print(f"load average {result['load_average']} on {os.cpu_count()} cores")
    for name, r in (("first start (ingests docs_corpus)", first), ("cold start (store filled)", again)):
        print(f"{name:34s} health {r['health_s']} s, first label {r['label_s']} s, chat box "
              f"{r['ready_s']} s, indexed {r['indexed_s']} s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
