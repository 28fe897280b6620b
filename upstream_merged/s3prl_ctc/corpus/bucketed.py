"""What the ctc corpora share: 'uid text' transcript tables and a length-sorted, bucketed item list."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from torch.utils.data import Dataset


def read_id_text(table: Path) -> Dict[str, str]:
    """utterance id -> text from '<id> <text>' lines (blank lines skipped)."""
    texts: Dict[str, str] = {}
    for line in Path(table).read_text().splitlines():
        if line.strip():
            uid, text = line.split(" ", 1)
            texts[uid] = text
    return texts


class BucketedCorpus(Dataset):
    """(path, token ids) items sorted by label length (longest first unless ascending); an item is a bucket."""

    def __init__(self, items: Sequence[Tuple[Path, List[int]]], bucket_size: int, ascending: bool = False):
        self.bucket_size = bucket_size
        ordered = sorted(items, key=lambda item: len(item[1]), reverse=not ascending)
        self.file_list = [f for f, _ in ordered]
        self.text = [t for _, t in ordered]

    def __getitem__(self, index):
        if self.bucket_size > 1:
            index = min(len(self.file_list) - self.bucket_size, index)
            return list(zip(self.file_list[index:index + self.bucket_size], self.text[index:index + self.bucket_size]))
        return self.file_list[index], self.text[index]

    def __len__(self):
        return len(self.file_list)
