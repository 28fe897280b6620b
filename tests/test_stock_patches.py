"""voxceleb1's file-list cache goes to the plugin cache, keyed by data root and split file: never stale, never site-packages."""
from pathlib import Path

import pytest

from upstream_merged import stock_patches


def _dataset_module():
    import s3prl.downstream.voxceleb1.dataset as module  # imported through the plugin hook

    return module


def test_lists_are_cached_per_data_root(tmp_path, voxceleb1_root, files_under):
    module = _dataset_module()
    stock_dir = Path(module.__file__).parent
    before = files_under(stock_dir)
    split = voxceleb1_root / "iden_split.txt"
    first = module.SpeakerClassifiDataset("dev", voxceleb1_root, str(split))
    assert len(first) == 16 and module.CACHE_PATH.startswith(str(stock_patches.voxceleb1_cache_dir(voxceleb1_root, split)))
    assert (stock_patches.voxceleb1_cache_dir(voxceleb1_root, split) / "dev.pkl").is_file()
    assert files_under(stock_dir) == before

    # a second data root with another split file gets its own lists, not the first root's
    other = tmp_path / "other"
    wav = other / "dev" / "wav" / "id10001" / "abcdefghijk" / "00001.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes((next(voxceleb1_root.glob("dev/wav/*/*/*.wav"))).read_bytes())
    (other / "iden_split.txt").write_text("2 id10001/abcdefghijk/00001.wav\n")
    second = module.SpeakerClassifiDataset("dev", other, str(other / "iden_split.txt"))
    assert second.dataset == [str(wav)]


def test_missing_root_names_the_override_key(tmp_path, voxceleb1_root):
    module = _dataset_module()
    with pytest.raises(FileNotFoundError, match=r"-o config\.downstream_expert\.datarc\.file_path="):
        module.SpeakerClassifiDataset("dev", tmp_path / "absent", str(voxceleb1_root / "iden_split.txt"))
    with pytest.raises(FileNotFoundError, match=r"-o config\.downstream_expert\.datarc\.meta_data="):
        module.SpeakerClassifiDataset("dev", voxceleb1_root, str(tmp_path / "absent.txt"))


def test_ctc_gets_a_libriphone_corpus_reader(libriphone_root):
    import s3prl.downstream.ctc as ctc
    from s3prl.downstream.ctc.text import load_text_encoder

    from upstream_merged.s3prl_ctc.corpus import libriphone as ours

    stock_has_corpus = (Path(ctc.__path__[0]) / "corpus").is_dir()
    assert (str(stock_patches.CTC_CORPUS_DIR) in ctc.__path__) != stock_has_corpus
    from s3prl.downstream.ctc.corpus.libriphone import LibriPhoneDataset

    tokenizer = load_text_encoder("word", str(libriphone_root / "phoneme.txt"))
    dataset = LibriPhoneDataset(["dev-clean"], tokenizer, 1, str(libriphone_root / "LibriSpeech"),
                                [str(libriphone_root / "lexicon.txt")])
    lengths = [len(ids) for ids in dataset.text]
    assert len(dataset) == 8 and lengths == sorted(lengths, reverse=True)
    path, ids = dataset[0]
    assert ids[-1] == tokenizer.eos_idx and tokenizer.unk_idx not in ids
    words = ours.read_transcripts([path])[path.stem].split()
    lexicon = dict((line.split()[0], line.split()[1:]) for line in (libriphone_root / "lexicon.txt").read_text().splitlines())
    assert tokenizer.decode(ids) == " ".join(p for w in words for p in lexicon[w])
    assert len(LibriPhoneDataset(["dev-clean"], tokenizer, 4, str(libriphone_root / "LibriSpeech"),
                                 [str(libriphone_root / "lexicon.txt")])[6]) == 4  # buckets stay full at the end


def test_libriphone_errors_name_the_config_key(tmp_path, libriphone_root):
    from s3prl.downstream.ctc.text import load_text_encoder

    from upstream_merged.s3prl_ctc.corpus.libriphone import LibriPhoneDataset

    tokenizer = load_text_encoder("word", str(libriphone_root / "phoneme.txt"))
    bad = tmp_path / "lexicon.txt"
    bad.write_text("HELLO h @ l QQ\n")
    with pytest.raises(ValueError, match=r"\['QQ'\].*vocab_file"):
        LibriPhoneDataset(["dev-clean"], tokenizer, 1, str(libriphone_root / "LibriSpeech"), [str(bad)])
    bad.write_text("HELLO h @ l\n")
    with pytest.raises(KeyError, match="corpus.lexicon"):
        LibriPhoneDataset(["dev-clean"], tokenizer, 1, str(libriphone_root / "LibriSpeech"), [str(bad)])
    with pytest.raises(FileNotFoundError, match="corpus.path"):
        LibriPhoneDataset(["dev-clean"], tokenizer, 1, str(tmp_path), [str(bad)])


def test_ctc_dataloaders_keep_the_configured_workers(libriphone_root):
    from s3prl.downstream.ctc.data import load_dataset
    from s3prl.downstream.ctc.text import load_text_encoder

    tokenizer = load_text_encoder("word", str(libriphone_root / "phoneme.txt"))
    corpus = {"name": "libriphone", "path": str(libriphone_root / "LibriSpeech"), "lexicon": [str(libriphone_root / "lexicon.txt")],
              "train": ["train-clean-100"], "dev": ["dev-clean"], "test": ["test-clean"], "bucketing": True,
              "batch_size": 2, "num_workers": 0}
    loaders = [load_dataset(split, tokenizer, corpus) for split in ("train", "dev", "dev")]
    assert [loader.num_workers for loader in loaders] == [0, 0, 0] and corpus["num_workers"] == 0
