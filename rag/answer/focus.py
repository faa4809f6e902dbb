"""What kind of answer a question asks for, and whether a sentence reads like that kind of answer.

Term overlap finds the sentences about the question's topic; it cannot tell, among them, the one
that says what HNSW *trades off* from the one that says what HNSW *is*: both name HNSW. The words
that ask for a reason, a drawback, a difference, a way or a time (なぜ, 欠点, 違い, どうすれば, when)
are mostly question words, left out of the overlap, or are rarely repeated by the answering
sentence. What the answering sentence does carry is a discourse marker of that kind of answer:
a reason has ため/ので/because, a drawback or trade-off 一方/ただし/but/at the price of, a
difference 一方/逆/whereas/unlike. `focus_of` reads the question's kinds, `has_marker` looks for
their markers in a sentence; the chooser adds a small bonus (`Weights.focus`). A sentence that
opens with そのため or says "therefore" points back: the reason it follows from is the sentence
before it (`follows_from_before`), which a why-question rarely shares words with.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Focus = Literal["reason", "drawback", "difference", "way", "time"]

_ASKS: dict[Focus, re.Pattern[str]] = {
    "reason": re.compile(r"なぜ|どうして|理由|原因|何故|\bwhy\b|\breasons?\b|\bcauses?\b", re.I),
    "drawback": re.compile(
        r"欠点|短所|デメリット|弱点|代償|トレードオフ|引き換え|犠牲|注意点|問題点|しすぎる|すぎると|できない|苦手|悪く|"
        r"trade[- ]?offs?|\btrades?\b|downsides?|drawbacks?|disadvantages?|\bcosts?\b|\bprice\b|"
        r"\bhurts?\b|\bweakness|\bpitfalls?|\bcannot\b|\bcan't\b|too (?:large|big|high|small|many)|"
        r"\bproblem", re.I),
    "difference": re.compile(
        r"違い|違う|異なる|比べ|使い分け|どちら|との差|\bvs\.?\b|versus|differen|compare|comparison|"
        r"\bbetter\b|\bor\b.*\?$|instead of|rather than", re.I),
    "way": re.compile(
        r"どうすれば|どうやって|どのように|方法|やり方|には(?:どう|何)|すればよい|\bhow (?:do|can|should|to)\b|"
        r"\bhow do i\b|\bwork around\b|\bways? to\b", re.I),
    # "in which situation", not "on which date" (いつ, "When did …" ask for a date: no marker helps)
    "time": re.compile(
        r"どんな(?:とき|時|場合)|どういう(?:とき|時|場合)|いつ使|\bwhen (?:should|to|is it|would)\b|"
        r"\bin which cases?\b|\bwhen (?:does|do|is|are)\b.*\b(?:hurt|help|matter|fail|break|better|worse|"
        r"useful|needed)", re.I),
}

_MARKS: dict[Focus, re.Pattern[str]] = {
    "reason": re.compile(
        r"ため|ので|から[、。]|からです|理由|原因|第一に|によって|\bbecause\b|\bsince\b|\bdue to\b|"
        r"\bso that\b|\btherefore\b|\bas a result\b|\bthat is why\b|\bwhich is why\b|\bcauses?\b", re.I),
    "drawback": re.compile(
        r"一方|ただし|しかし|ですが|ますが|けれど|代わりに|引き換え|犠牲|欠け|遅く|増え|苦手|できません|限りません|"
        r"注意|\bbut\b|\bhowever\b|\bat the (?:price|cost|expense) of\b|\btrades?\b|\btrade-off|"
        r"\binstead\b|\bslower\b|\bmore memory\b|\bless\b|\bloses?\b|\bhurts?\b|\bcan(?:not|'t)\b|"
        r"\bwithout\b|\bexpense\b|\bworse\b|\bdrops?\b", re.I),
    "difference": re.compile(
        r"一方|違い|違う|異な|逆|対して|に比べ|よりも|場合は|\bwhereas\b|\bunlike\b|\bwhile\b|"
        r"\binstead\b|\bthan\b|\bdiffer|\bboth\b|\bbut\b|\bhowever\b", re.I),
    "way": re.compile(
        r"してください|します|すると|だけで|には|ことで|使います|設定|実行|\bcompute\b|\bset\b|\buse\b|"
        r"\brun\b|\btry\b|\bby\b|\bto (?:turn|make|get|remove|check)\b|\bcheck\b|\brephrase\b|\blook\b",
        re.I),
    "time": re.compile(
        r"場合|とき|時に|ときは|\bwhen\b|\bif\b|\bonce\b|\bonly when\b|\bwhenever\b|\bmainly when\b", re.I),
}


_CONSEQUENCE = re.compile(
    r"^(?:そのため|このため|それゆえ|したがって|従って|だから|その結果|そこで)|"
    r"^(?:so,|(?:thus|hence|consequently|as a result|that is why|this is why)\b(?!-))|"
    r"\b(?:therefore|thus|hence|consequently)\b", re.I)


def focus_of(question: str) -> frozenset[Focus]:
    """The kinds of answer the question asks for; empty for a plain what/who/which question."""
    text = unicodedata.normalize("NFKC", question).strip()
    return frozenset(kind for kind, pattern in _ASKS.items() if pattern.search(text))


def has_marker(sentence: str, kinds: frozenset[Focus]) -> bool:
    """Whether the sentence carries a marker of one of the kinds of answer asked for."""
    text = unicodedata.normalize("NFKC", sentence)
    return any(_MARKS[kind].search(text) for kind in kinds)


def follows_from_before(sentence: str) -> bool:
    """Whether the sentence states a consequence of what comes before it (そのため…, "… may
    therefore …"): asked *why*, the reason is the sentence before, not this one."""
    return bool(_CONSEQUENCE.search(unicodedata.normalize("NFKC", sentence).strip()))
