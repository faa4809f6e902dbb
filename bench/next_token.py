"""How fast the offline next-token engine answers: cold CLI, warm steps, scoring, first conversion.

Targets (issue 17): the first distribution within 3 s on a warm app and 15 s on a cold one, with
the weights cached after the first use. Measured here:
- convert: the GGUF assembled, read and dequantized into a fresh cache (only with --convert);
- cold CLI: `rag next SEED --json` in a new process, weights cached (median of 3, wall clock);
- in process: loading the cached files, the first distribution, one step on (a token appended),
  a temperature change (logits cached), and scoring the test paragraphs (tokens per second).
The load average is printed with the figures: on a shared machine it explains most of the spread.

    .venv/bin/python bench/next_token.py [--lm-dir DIR] [--convert] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEED = "我輩は猫である。名前はまだ"


def cold_cli(lm_dir: Path, runs: int = 3) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
    env["RAG_LM_DIR"] = str(lm_dir)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag", "next", SEED, "--json"], cwd=REPO, env=env,
                       check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-dir", type=Path, default=REPO / ".bench-data" / "lm")
    parser.add_argument("--convert", action="store_true", help="also time a first conversion")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from rag.lens import gemma_files
    from rag.lens.nexttoken import NextTokenModel

    figures: dict[str, float] = {"load_average_1min": os.getloadavg()[0]}
    if args.convert:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            gemma_files.load(Path(tmp))
            figures["convert_s"] = time.perf_counter() - started
    gemma_files.load(args.lm_dir)  # make sure the cache exists before timing cold starts
    figures["cold_cli_s"] = cold_cli(args.lm_dir)

    started = time.perf_counter()
    model = NextTokenModel(gemma_files.load(args.lm_dir))
    figures["load_s"] = time.perf_counter() - started
    first = model.distribution(SEED)
    figures["first_distribution_s"] = first.seconds
    step = model.distribution([*[t.id for t in first.tokens], first.candidates[0].id])
    figures["step_s"] = step.seconds
    figures["temperature_change_s"] = model.distribution(SEED, temperature=0.7).seconds
    paragraphs = json.loads((REPO / "tests/data/wiki_paragraphs.json").read_text("utf-8"))["paragraphs"]
    tokens, seconds = 0, 0.0
    for p in paragraphs:
        score = model.score(p["text"])
        tokens, seconds = tokens + len(score.tokens), seconds + score.seconds
    figures["score_tokens_per_s"] = tokens / seconds
    figures["load_average_1min_after"] = os.getloadavg()[0]

    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in figures.items()}, indent=2))
        return
    for name, value in figures.items():
        print(f"{name:<26} {value:8.2f}")


if __name__ == "__main__":
    main()
