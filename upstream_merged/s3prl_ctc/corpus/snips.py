"""Audio SNIPS for SUPERB slot filling: <split>/<Speaker>-<id>.wav, transcripts (with slots) by utterance id."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List

from .bucketed import BucketedCorpus, read_id_text

logger = logging.getLogger(__name__)


class SnipsDataset(BucketedCorpus):
    """The stock ctc recipe's 'snips' corpus: (wav path, token ids) of the split's listed speakers, longest first."""

    def __init__(self, split, tokenizer, bucket_size, path, ascending=False, **kwargs):
        names = [split] if isinstance(split, str) else list(split)
        key = f"{names[0]}_speakers"
        if key not in kwargs:
            raise KeyError(f"config.downstream_expert.corpus.{key} is missing (the speakers of split {names[0]!r})")
        speakers: List[str] = list(kwargs[key])
        table = Path(path, "all.iob.snips.txt" if "-slot" in tokenizer.token_type else "all-trans.txt")
        if not table.is_file():
            raise FileNotFoundError(f"{table} is missing (config.downstream_expert.corpus.path should be the SNIPS root)")
        transcripts = read_id_text(table)
        items = []
        for name in names:
            found = [wav for wav in sorted(Path(path, name).rglob("*.wav"))
                     if wav.stem in transcripts and any(wav.stem.startswith(s) for s in speakers)]
            if not found:
                raise FileNotFoundError(f"no transcribed .wav of speakers {speakers} under {Path(path, name)}")
            items += [(wav, tokenizer.encode(transcripts[wav.stem])) for wav in found]
        super().__init__(items, bucket_size, ascending)
        logger.info("snips %s: %d utterances of %d speakers", names, len(items), len(speakers))
