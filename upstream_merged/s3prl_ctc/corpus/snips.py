"""Audio SNIPS for SUPERB slot filling: <split>/<Speaker>-<id>.wav, transcripts (with slots) by utterance id."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List

from torch.utils.data import Dataset

logger = logging.getLogger(__name__)


class SnipsDataset(Dataset):
    """The stock ctc recipe's 'snips' corpus: (wav path, token ids) of the split's listed speakers, longest first."""

    def __init__(self, split, tokenizer, bucket_size, path, ascending=False, **kwargs):
        self.bucket_size = bucket_size
        names = [split] if isinstance(split, str) else list(split)
        key = f"{names[0]}_speakers"
        if key not in kwargs:
            raise KeyError(f"config.downstream_expert.corpus.{key} is missing (the speakers of split {names[0]!r})")
        speakers: List[str] = list(kwargs[key])
        table = Path(path, "all.iob.snips.txt" if "-slot" in tokenizer.token_type else "all-trans.txt")
        if not table.is_file():
            raise FileNotFoundError(f"{table} is missing (config.downstream_expert.corpus.path should be the SNIPS root)")
        transcripts = {}
        for line in table.read_text().splitlines():
            if line.strip():
                uid, text = line.split(" ", 1)
                transcripts[uid] = text
        items = []
        for name in names:
            found = [wav for wav in sorted(Path(path, name).rglob("*.wav"))
                     if wav.stem in transcripts and any(wav.stem.startswith(s) for s in speakers)]
            if not found:
                raise FileNotFoundError(f"no transcribed .wav of speakers {speakers} under {Path(path, name)}")
            items += [(wav, tokenizer.encode(transcripts[wav.stem])) for wav in found]
        items.sort(key=lambda item: len(item[1]), reverse=not ascending)
        self.file_list = [f for f, _ in items]
        self.text = [t for _, t in items]
        logger.info("snips %s: %d utterances of %d speakers", names, len(items), len(speakers))

    def __getitem__(self, index):
        if self.bucket_size > 1:
            index = min(len(self.file_list) - self.bucket_size, index)
            return list(zip(self.file_list[index:index + self.bucket_size], self.text[index:index + self.bucket_size]))
        return self.file_list[index], self.text[index]

    def __len__(self):
        return len(self.file_list)
