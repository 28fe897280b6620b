"""LibriSpeech phone sequences for SUPERB phoneme recognition: flac + trans.txt, words mapped by lexicons."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Sequence

from .bucketed import BucketedCorpus, read_id_text

logger = logging.getLogger(__name__)


def read_lexicons(files: Sequence[str], vocabulary: set) -> Dict[str, List[str]]:
    """word -> phones from 'WORD P1 P2 ...' lines; the first pronunciation of a word wins."""
    lexicon: Dict[str, List[str]] = {}
    for file in files:
        with open(file) as handle:
            for number, line in enumerate(handle, 1):
                word, *phones = line.replace("\t", " ").split()
                unknown = [p for p in phones if p not in vocabulary]
                if unknown:
                    raise ValueError(f"{file}:{number}: phones {unknown} of {word!r} are not in the vocabulary "
                                     "(config.downstream_expert.text.vocab_file)")
                lexicon.setdefault(word, phones)
    return lexicon


def read_transcripts(flacs: Sequence[Path]) -> Dict[str, str]:
    """utterance id -> transcript, from each chapter's <spk>-<chapter>.trans.txt."""
    texts: Dict[str, str] = {}
    for trans in sorted({f.parent / ("-".join(f.stem.split("-")[:2]) + ".trans.txt") for f in flacs}):
        texts.update(read_id_text(trans))
    return texts


class LibriPhoneDataset(BucketedCorpus):
    """The stock ctc recipe's 'libriphone' corpus: (flac path, phone ids) items, longest first, bucketed."""

    def __init__(self, split, tokenizer, bucket_size, path, lexicon, ascending=False, **kwargs):
        word2phones = read_lexicons(lexicon, set(tokenizer._vocab2idx))
        flacs: List[Path] = []
        for name in split:
            found = sorted(Path(path, name).rglob("*.flac"))
            if not found:
                raise FileNotFoundError(f"no .flac files under {Path(path, name)} "
                                        "(config.downstream_expert.corpus.path should be the LibriSpeech root)")
            flacs += found
        texts = read_transcripts(flacs)
        items = []
        for flac in flacs:
            words = texts[flac.stem].split()
            missing = [w for w in words if w not in word2phones]
            if missing:
                raise KeyError(f"{flac}: words {missing} are in no lexicon (config.downstream_expert.corpus.lexicon)")
            items.append((flac, tokenizer.encode(" ".join(p for w in words for p in word2phones[w]))))
        super().__init__(items, bucket_size, ascending)
        logger.info("libriphone %s: %d utterances", list(split), len(items))
