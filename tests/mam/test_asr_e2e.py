"""tools/make_librispeech.py makes a corpus the stock s3prl `asr` recipe trains on with `-u mam_hubert_bert_tiny`."""
from __future__ import annotations

import importlib.util
import math
import shutil
import sys
from pathlib import Path

import pytest

from upstream_merged.testing.s3prl_run import CONFIG_DIR, run_downstream

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import make_librispeech  # noqa: E402

STEPS = 4


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory) -> Path:
    """A tiny synthetic LibriSpeech corpus (2 speakers x 4 utterances per split)."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.fail("espeak-ng and sox are required (tools/setup_env.sh installs them)")
    out = tmp_path_factory.mktemp("librispeech")
    make_librispeech.build(out, speakers=2, chapters=1, utterances=4, seed=0, workers=2)
    return out


def test_corpus_layout_matches_what_s3prl_asr_reads(librispeech):
    import pandas as pd
    from s3prl.downstream.asr.dictionary import Dictionary

    for split in make_librispeech.SPLITS:
        table = pd.read_csv(librispeech / "len_for_bucket" / f"{split}.csv")
        assert list(table.columns[1:]) == ["file_path", "length", "label"] and len(table) == 8
        assert list(table["length"]) == sorted(table["length"], reverse=True)
        for file_path, length in zip(table["file_path"], table["length"]):
            audio = librispeech / "LibriSpeech" / file_path
            speaker, chapter, _ = audio.stem.split("-")
            assert audio.parent == librispeech / "LibriSpeech" / split / speaker / chapter
            assert make_librispeech.flac_frames(audio) == length > 16000 * 0.3
            assert audio.stem in (audio.parent / f"{speaker}-{chapter}.trans.txt").read_text()
    dictionary = Dictionary.load(str(librispeech / "char.dict"))
    line = (librispeech / "LibriSpeech" / "dev-clean" / "200" / "2000" / "200-2000.trans.txt").read_text().split("\n")[0]
    tokens = " ".join(line.split(" ", 1)[1].replace(" ", "|")) + " |"  # as SequenceDataset's process_trans
    encoded = dictionary.encode_line(tokens, line_tokenizer=str.split, add_if_not_exist=False)
    assert dictionary.unk() not in encoded.tolist()


def test_plan_is_deterministic():
    assert make_librispeech.plan_corpus(2, 1, 3, seed=5) == make_librispeech.plan_corpus(2, 1, 3, seed=5)
    assert make_librispeech.plan_corpus(2, 1, 3, seed=5) != make_librispeech.plan_corpus(2, 1, 3, seed=6)


@pytest.mark.skipif(importlib.util.find_spec("editdistance") is None,
                    reason="s3prl's asr expert imports editdistance (not in tools/requirements.txt yet)")
def test_stock_asr_recipe_trains_on_the_synthetic_corpus(tmp_path, librispeech, plugin_cache_env):
    overrides = (f"{make_librispeech.asr_overrides(librispeech)},,config.runner.total_steps={STEPS},,"
                 f"config.runner.eval_step={STEPS},,config.runner.save_step={STEPS}")
    result = run_downstream(["-m", "train", "-u", "mam_hubert_bert_tiny", "-d", "asr",
                             "-c", str(CONFIG_DIR / "asr_cpu_small.yaml"), "-p", str(tmp_path / "exp"), "-o", overrides],
                            cwd=tmp_path, env=plugin_cache_env).check()
    losses = result.metric("dev-clean loss")
    assert len(losses) == 1 and math.isfinite(losses[0])
    assert len(result.metric("dev-clean wer")) == 1
    assert (tmp_path / "exp" / f"states-{STEPS}.ckpt").is_file()
    assert (tmp_path / "exp" / "dev-clean-noLM-ref.ark").read_text().count("\n") == 8
