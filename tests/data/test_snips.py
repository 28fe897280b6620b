"""upstream_merged/data/snips.py: Audio-SNIPS-style utterances whose slot transcripts the stock character-slot encoder reads."""
import soundfile as sf

from data_helpers import tree_digest
from upstream_merged.data import snips



def test_slots_encode_and_decode_with_the_stock_encoder(snips_root):
    from s3prl.downstream.ctc.text import load_text_encoder

    from upstream_merged.s3prl_ctc.corpus.snips import SnipsDataset

    tokenizer = load_text_encoder("character-slot", str(snips_root / "character.txt"), str(snips_root / "SNIPS" / "slots.txt"))
    rows = dict(line.split(" ", 1) for line in (snips_root / "SNIPS" / "all.iob.snips.txt").read_text().splitlines())
    assert len(rows) == 16 * 2
    ids = tokenizer.encode(rows["Ivy-snips-train-1"])
    assert tokenizer.unk_idx not in ids and ids[-1] == tokenizer.eos_idx
    assert tokenizer.decode(ids) == "PLAY B-artist THE BEATLES E-artist ON B-service DEEZER E-service"
    for split, speakers in snips.SPEAKERS.items():
        kwargs = {f"{split}_speakers": speakers}
        dataset = SnipsDataset([split], tokenizer, 1, str(snips_root / "SNIPS"), **kwargs)
        assert len(dataset) == 2 * len(speakers)
        assert {path.stem.split("-")[0] for path in dataset.file_list} == set(speakers)
        data, rate = sf.read(dataset.file_list[0])
        assert rate == 16000 and data.ndim == 1


def test_two_runs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        snips.build(tmp_path / name, per_speaker=1)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
