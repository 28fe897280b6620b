"""upstream_merged/data/libriphone.py: a LibriSpeech corpus whose every word has espeak-ng phones in the vocabulary."""
from data_helpers import tree_digest
from upstream_merged.data import libriphone



def test_lexicon_covers_the_corpus_with_vocabulary_phones(libriphone_root):
    vocabulary = libriphone_root.joinpath("phoneme.txt").read_text().split("\n")[:-1]
    assert len(vocabulary) == len(set(vocabulary)) > 10 and all(p and " " not in p for p in vocabulary)
    lexicon = {}
    for line in libriphone_root.joinpath("lexicon.txt").read_text().splitlines():
        word, *phones = line.split()
        assert phones and set(phones) <= set(vocabulary) and word == word.upper()
        lexicon[word] = phones
    words = {w for trans in (libriphone_root / "LibriSpeech").rglob("*.trans.txt")
             for line in trans.read_text().splitlines() for w in line.split()[1:]}
    assert words == set(lexicon)
    assert len(list((libriphone_root / "LibriSpeech").rglob("*.flac"))) == 3 * 2 * 4


def test_phones_drop_stress_marks():
    assert libriphone.phones("yesterday") == ["j", "E", "s", "t", "3", "d", "eI"]


def test_two_runs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        libriphone.build(tmp_path / name, speakers=1, chapters=1, utterances=1)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
