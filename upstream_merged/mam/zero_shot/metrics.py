"""Zero-shot metrics: transcript normalisation implied by a CTC vocabulary, corpus WER / CER, top-1 accuracy."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence, Tuple

try:  # s3prl's asr expert uses it too; the fallback below gives the same numbers, slower
    from editdistance import eval as _edit_distance
except ImportError:  # pragma: no cover - depends on the environment
    _edit_distance = None

# vocabulary entries that are not characters of the transcript
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
WORD_DELIMITER = "|"


def vocabulary_charset(vocabulary: Iterable[str]) -> str:
    """The characters a CTC character vocabulary can emit (specials and the word delimiter excluded)."""
    return "".join(sorted(t for t in vocabulary if len(t) == 1 and t != WORD_DELIMITER and t not in SPECIAL_TOKENS))


def normalise_transcript(text: str, charset: str) -> str:
    """What a character-CTC model can output for ``text``: case folded to the vocabulary's case, hyphens and
    slashes split words, every other character outside ``charset`` (punctuation) dropped, spaces collapsed."""
    upper = any(c.isupper() for c in charset)
    text = text.upper() if upper else text.lower()
    text = re.sub(r"[-/]", " ", text)
    allowed = set(charset) | {" "}
    text = "".join(c if c in allowed else ("" if not c.isspace() else " ") for c in text)
    return " ".join(text.split())


def edit_distance(reference: Sequence[Hashable], hypothesis: Sequence[Hashable]) -> int:
    """Levenshtein distance (editdistance when installed, else a plain dynamic programme)."""
    if _edit_distance is not None:
        return int(_edit_distance(reference, hypothesis))
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        current = [i]
        for j, h in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class ErrorCounts:
    """Corpus-level edit counts: errors over reference length, for words and characters."""

    word_errors: int
    words: int
    char_errors: int
    chars: int

    @property
    def wer(self) -> float:
        """Word error rate (word edits / reference words)."""
        return self.word_errors / self.words if self.words else 0.0

    @property
    def cer(self) -> float:
        """Character error rate (character edits / reference characters, spaces included)."""
        return self.char_errors / self.chars if self.chars else 0.0


def error_counts(pairs: Sequence[Tuple[str, str]]) -> ErrorCounts:
    """Sum word and character edit distances over (reference, hypothesis) pairs (already normalised)."""
    word_errors = words = char_errors = chars = 0
    for reference, hypothesis in pairs:
        ref_words, hyp_words = reference.split(), hypothesis.split()
        word_errors += edit_distance(ref_words, hyp_words)
        words += len(ref_words)
        char_errors += edit_distance(reference, hypothesis)
        chars += len(reference)
    return ErrorCounts(word_errors, words, char_errors, chars)
