"""upstream_merged/data/fluent_commands.py writes the FSC layout s3prl's fluent_commands expert reads, deterministically."""
import os
import subprocess

import pandas as pd
import soundfile as sf

from data_helpers import DATA_CLI, tree_digest
from upstream_merged.data import fluent_commands as fsc



def test_layout_is_what_the_expert_reads(fluent_commands_root):
    frames = {split: pd.read_csv(fluent_commands_root / "data" / f"{split}_data.csv") for split in fsc.SPLITS}
    for frame in frames.values():
        assert list(frame.columns) == ["Unnamed: 0", "path", "speakerId", "transcription", "action", "object", "location"]
        for path, speaker in zip(frame["path"], frame["speakerId"]):
            assert path.startswith(f"wavs/speakers/{speaker}/") and path.endswith(".wav")
            data, rate = sf.read(fluent_commands_root / path)
            assert rate == 16000 and data.ndim == 1 and len(data) > 8000
    assert [len(frames[s]) for s in fsc.SPLITS] == [4 * 17, 17, 17]
    speakers = [set(frames[s]["speakerId"]) for s in fsc.SPLITS]
    assert sum(map(len, speakers)) == len(set.union(*speakers)) == 6  # disjoint speakers
    for slot in ("action", "object", "location"):  # the expert builds its labels from train's values only
        assert set(frames["valid"][slot]) | set(frames["test"][slot]) <= set(frames["train"][slot])
    intents = set(zip(frames["train"]["action"], frames["train"]["object"], frames["train"]["location"]))
    assert len(intents) == len(fsc.COMMANDS)


def test_stock_dataset_loads_a_clip(fluent_commands_root):
    from s3prl.downstream.fluent_commands.dataset import FluentCommandsDataset

    frame = pd.read_csv(fluent_commands_root / "data" / "test_data.csv")
    sy_intent = {slot: {v: i for i, v in enumerate(sorted(set(frame[slot])))} for slot in ("action", "object", "location")}
    wav, label, name = FluentCommandsDataset(frame, str(fluent_commands_root), sy_intent)[0]
    assert wav.ndim == 1 and len(label) == 3 and name == frame["path"][0].split("/")[-1][:-4]


def test_two_runs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        fsc.build(tmp_path / name, train_speakers=1, valid_speakers=1, test_speakers=1)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_cli_errors_without_espeak_and_leaves_nothing(tmp_path):
    result = subprocess.run([*DATA_CLI, "fluent_commands", str(tmp_path / "out")],
                            capture_output=True, text=True, env=dict(os.environ, PATH=str(tmp_path)))
    assert result.returncode == 2 and "espeak-ng" in result.stderr and "apt-get install" in result.stderr
    assert not (tmp_path / "out").exists()
