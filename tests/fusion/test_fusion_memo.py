"""The frozen backbones' hidden-state memo: same features as a forward, each clip forwarded once, safe to share."""
import numpy as np
import pytest
import torch

from upstream_merged.fusion.memo import MEMO_ENV, STORE_AFTER_ENV, FrozenMemo, pad_clips
from upstream_merged.registry import entries

ENTRY = "fusion_hubert_wavlm_whisper_hconv_tiny"


@pytest.fixture(scope="module")
def trio():
    return entries()[ENTRY]()


def _count_forwards(backbone, monkeypatch):
    backbone.rng_draws_per_forward  # measured once per backbone (two 1 s forwards), before counting the memo's
    calls = []
    original = backbone.upstream.forward

    def counted(wavs):
        calls.append(len(wavs))
        return original(wavs)

    monkeypatch.setattr(backbone.upstream, "forward", counted)
    return calls


def _clips(*lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=generator) for n in lengths]


def test_equal_length_batches_get_the_batched_features_and_each_clip_is_forwarded_once(trio, tmp_path, monkeypatch):
    wavs = _clips(16000, 16000, 16000)
    with torch.no_grad():
        expected = {role: b(wavs) for role, b in trio.backbones.items()}
    memo = FrozenMemo(tmp_path / "memo")
    for role, backbone in trio.backbones.items():
        calls = _count_forwards(backbone, monkeypatch)
        backbone.memo = memo
        try:
            with torch.no_grad():
                first, again = backbone(wavs), backbone(wavs[::-1])
        finally:
            backbone.memo = None
        assert calls == [1, 1, 1], role  # each clip alone, once; the second batch is read back
        for got, want in zip(first, expected[role]):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
        for got, want in zip(again, expected[role]):
            torch.testing.assert_close(got, want.flip(0), atol=1e-5, rtol=1e-4)
    assert (memo.misses, memo.hits) == (9, 9)
    assert len(list((tmp_path / "memo").rglob("*.npy"))) == 9
    assert not list((tmp_path / "memo").rglob("*.part"))


def test_padded_batches_give_each_clip_its_own_features_and_zeros_past_its_end(trio, tmp_path):
    wavs = _clips(16000, 9000, seed=1)
    backbone = trio.backbones["hubert"]
    with torch.no_grad():
        batched = backbone(wavs)
        alone = backbone(wavs[1:])
    backbone.memo = FrozenMemo(tmp_path)
    try:
        with torch.no_grad():
            memoised = backbone(wavs)
    finally:
        backbone.memo = None
    frames = alone[0].shape[1]
    for got, want_batch, want_alone in zip(memoised, batched, alone):
        assert got.shape == want_batch.shape
        torch.testing.assert_close(got[0], want_batch[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got[1, :frames], want_alone[0], atol=1e-5, rtol=1e-4)
        assert torch.count_nonzero(got[1, frames:]) == 0


def test_wavs_that_need_their_gradient_bypass_the_memo(trio, tmp_path):
    backbone = trio.backbones["wavlm"]
    backbone.memo = FrozenMemo(tmp_path)
    try:
        wav = _clips(8000)[0].requires_grad_(True)
        states = backbone([wav])
        states[-1].sum().backward()
    finally:
        backbone.memo = None
    assert wav.grad is not None and torch.count_nonzero(wav.grad) > 0
    assert not list(tmp_path.rglob("*.npy"))


def test_a_clip_or_weights_change_makes_a_new_key(trio, tmp_path):
    memo = FrozenMemo(tmp_path)
    hubert, wavlm = trio.backbones["hubert"], trio.backbones["wavlm"]
    wav = _clips(4000)[0]
    changed = wav.clone()
    changed[17] += 1e-3
    keys = {memo.clip_key(hubert.memo_key(), wav), memo.clip_key(hubert.memo_key(), changed),
            memo.clip_key(wavlm.memo_key(), wav), memo.clip_key(hubert.memo_key(), wav[:-1])}
    assert len(keys) == 4
    assert memo.clip_key(hubert.memo_key(), wav.clone()) == memo.clip_key(hubert.memo_key(), wav)


def test_the_environment_variable_turns_the_memo_on_for_every_backbone(tmp_path, monkeypatch):
    monkeypatch.setenv(MEMO_ENV, str(tmp_path / "shared"))
    upstream = entries()[ENTRY]()
    memos = {id(b.memo) for b in upstream.backbones.values()}
    assert len(memos) == 1 and upstream.backbones["hubert"].memo.directory == tmp_path / "shared"
    with torch.no_grad():
        upstream(_clips(16000, 16000))
    assert len(list((tmp_path / "shared").rglob("*.npy"))) == 2 * len(upstream.backbones)
    monkeypatch.setenv(MEMO_ENV, "")
    assert all(b.memo is None for b in entries()[ENTRY]().backbones.values())


def test_a_memo_path_that_is_a_file_is_refused_by_name(tmp_path, monkeypatch):
    blocker = tmp_path / "memo"
    blocker.write_text("not a directory")
    monkeypatch.setenv(MEMO_ENV, str(blocker))
    with pytest.raises(ValueError, match=f"{MEMO_ENV}=.*memo: exists and is not a directory"):
        FrozenMemo.from_env()
    assert blocker.read_text() == "not a directory"


def test_pad_clips_stacks_layers_and_zero_pads_frames():
    short, long = torch.ones(3, 2, 4), torch.full((3, 5, 4), 2.0)
    layers = pad_clips([short, long])
    assert len(layers) == 3 and layers[0].shape == (2, 5, 4)
    assert torch.equal(layers[1][0, :2], torch.ones(2, 4)) and torch.count_nonzero(layers[1][0, 2:]) == 0
    assert torch.equal(layers[2][1], torch.full((5, 4), 2.0))


def test_stored_arrays_round_trip(tmp_path):
    memo = FrozenMemo(tmp_path)
    states = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    memo.store("ab" + "0" * 62, states)
    assert np.array_equal(memo.load("ab" + "0" * 62), states)
    assert memo.load("cd" + "0" * 62) is None


def test_store_after_two_skips_clips_seen_once_and_keeps_recurring_ones(trio, tmp_path, monkeypatch):
    monkeypatch.setenv(MEMO_ENV, str(tmp_path))
    monkeypatch.setenv(STORE_AFTER_ENV, "2")
    memo = FrozenMemo.from_env()
    backbone = trio.backbones["hubert"]
    backbone.memo = memo
    calls = _count_forwards(backbone, monkeypatch)
    recurring, once = _clips(8000, 8000, seed=3)
    try:
        with torch.no_grad():
            backbone([recurring, once])
            assert not list(tmp_path.rglob("*.npy"))  # first sighting: forwarded, not written
            backbone([recurring])
            backbone([recurring])
    finally:
        backbone.memo = None
    assert calls == [1, 1, 1]  # the third read of the recurring clip comes from the memo
    assert len(list(tmp_path.rglob("*.npy"))) == 1 and memo.hits == 1


def test_store_after_counts_sightings_across_processes_sharing_the_memo(tmp_path):
    states = np.ones((2, 3, 4), dtype=np.float32)
    key = "ef" + "0" * 62
    assert FrozenMemo(tmp_path, store_after=2).store(key, states) is False  # one run reads the clip once
    assert memo_files(tmp_path) == [f"{key}.seen"]
    later = FrozenMemo(tmp_path, store_after=2)  # the next seed's run, a new process
    assert later.store(key, states) is True
    assert memo_files(tmp_path) == [f"{key}.npy"]  # the counter goes once the states are written
    assert np.array_equal(later.load(key), states)


def memo_files(directory):
    return sorted(p.name for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_store_after_is_refused_by_name(tmp_path, monkeypatch, value):
    monkeypatch.setenv(MEMO_ENV, str(tmp_path / "m"))
    monkeypatch.setenv(STORE_AFTER_ENV, value)
    with pytest.raises(ValueError, match=STORE_AFTER_ENV):
        FrozenMemo.from_env()


def test_the_global_rng_moves_as_the_forward_moves_it_whether_the_memo_is_cold_or_warm(trio, tmp_path):
    wavs = _clips(16000, 16000, seed=4)
    for role, backbone in trio.backbones.items():
        torch.manual_seed(7)
        with torch.no_grad():
            expected = backbone(wavs)
        after_forward = torch.get_rng_state()
        backbone.memo = FrozenMemo(tmp_path / role)
        try:
            for state in ("cold", "warm"):
                torch.manual_seed(7)
                with torch.no_grad():
                    got = backbone(wavs)
                assert torch.equal(torch.get_rng_state(), after_forward), (role, state)
                for have, want in zip(got, expected):
                    torch.testing.assert_close(have, want, atol=1e-5, rtol=1e-4)
        finally:
            backbone.memo = None
        assert backbone.memo is None
    # not vacuous: HuBERT's LayerDrop draws one number per layer even in eval mode, Whisper's encoder none
    assert trio.backbones["hubert"].rng_draws_per_forward == trio.backbones["hubert"].depth - 1
    assert trio.backbones["whisper"].rng_draws_per_forward == 0
