"""voxceleb1's file-list cache goes to the plugin cache, keyed by data root and split file: never stale, never site-packages."""
from pathlib import Path

import pytest

from upstream_merged import stock_patches


def _dataset_module():
    import s3prl.downstream.voxceleb1.dataset as module  # imported through the plugin hook

    return module


def test_lists_are_cached_per_data_root(tmp_path, voxceleb1_root):
    module = _dataset_module()
    split = voxceleb1_root / "iden_split.txt"
    first = module.SpeakerClassifiDataset("dev", voxceleb1_root, str(split))
    assert len(first) == 16 and module.CACHE_PATH.startswith(str(stock_patches.voxceleb1_cache_dir(voxceleb1_root, split)))
    assert (stock_patches.voxceleb1_cache_dir(voxceleb1_root, split) / "dev.pkl").is_file()
    assert not (Path(module.__file__).parent / ".cache").exists()

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
