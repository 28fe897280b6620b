"""Chance-corrected Table I scores, their paired bootstrap and the claim verdicts."""
import math

import numpy as np
import pytest

from upstream_merged.evaluation.claims import (CONTRADICTED, NOT_RUN, SUPPORTED, UNDECIDED, Claim, Evidence,
                                               TaskGroup, chance_corrected, chance_correctness, evaluate_claims,
                                               judge, score_intervals)

TASKS = [TaskGroup("ks", "speech"), TaskGroup("pitch", "music")]
REFS = {"speech": "speech_enc", "music": "music_enc"}


def flags(n, accuracy, seed):
    """{clip id: correct} with exactly round(accuracy * n) correct clips, placed at random."""
    rng = np.random.default_rng(seed)
    correct = np.zeros(n, dtype=bool)
    correct[rng.choice(n, int(round(accuracy * n)), replace=False)] = True
    return {f"c{i:04d}": bool(v) for i, v in enumerate(correct)}


def results(n=1000, **rows):
    """row -> task -> three seeds of flags at the given (ks, pitch) accuracies."""
    out = {}
    for k, (row, (ks, pitch)) in enumerate(rows.items()):
        out[row] = {"ks": [flags(n, ks, 100 * k + s) for s in range(3)],
                    "pitch": [flags(n, pitch, 100 * k + 50 + s) for s in range(3)]}
    return out


def standard(**extra):
    return results(chance=(0.1, 0.1), speech_enc=(0.8, 0.3), music_enc=(0.5, 0.7), **extra)


def test_chance_corrected_maps_chance_to_0_and_reference_to_1000():
    assert chance_corrected(0.1, 0.1, 0.8) == 0
    assert chance_corrected(0.8, 0.1, 0.8) == pytest.approx(1000)
    assert chance_corrected(0.45, 0.1, 0.8) == pytest.approx(500)
    assert math.isnan(chance_corrected(0.3, 0.1, 0.11))  # reference at chance: no score


def test_chance_row_predicts_the_training_majority():
    out = chance_correctness([0, 1, 1, 2], {"a": 1, "b": 0, "c": 1})
    assert out == {"a": True, "b": False, "c": True}


def test_scores_per_task_group_and_average():
    evidence = Evidence(standard(row=(0.45, 0.4)), TASKS, REFS)
    scores = evidence.scores("row")
    assert scores["ks"] == pytest.approx(500)
    assert scores["pitch"] == pytest.approx(500)
    assert scores["speech"] == pytest.approx(500) and scores["average"] == pytest.approx(500)
    assert evidence.scores("speech_enc")["speech"] == pytest.approx(1000)
    assert evidence.scores("music_enc")["music"] == pytest.approx(1000)
    assert evidence.scores("chance")["average"] == pytest.approx(0)


def test_rows_on_other_clips_are_refused_naming_the_row():
    data = standard()
    data["bad"] = {"ks": [{"x": True}], "pitch": data["music_enc"]["pitch"]}
    with pytest.raises(ValueError, match="row bad on ks"):
        Evidence(data, TASKS, REFS)


def test_missing_reference_is_refused():
    data = standard()
    del data["music_enc"]
    with pytest.raises(ValueError, match="music_enc"):
        Evidence(data, TASKS, REFS)


@pytest.mark.parametrize("kind,margin,low,high,expected", [
    ("greater", 0, 5, 20, SUPPORTED), ("greater", 0, -20, -5, CONTRADICTED), ("greater", 0, -5, 5, UNDECIDED),
    ("below", 100, -300, -150, SUPPORTED), ("below", 100, -90, 10, CONTRADICTED), ("below", 100, -150, -50, UNDECIDED),
    ("equivalent", 20, -10, 15, SUPPORTED), ("equivalent", 20, 25, 60, CONTRADICTED),
    ("equivalent", 20, -30, 10, UNDECIDED), ("greater", 0, float("nan"), 1, UNDECIDED)])
def test_judge(kind, margin, low, high, expected):
    assert judge(kind, margin, low, high) == expected


def test_verdicts_follow_the_data():
    data = standard(better=(0.85, 0.75), same=(0.8, 0.3), worse=(0.4, 0.3))
    evidence = Evidence(data, TASKS, REFS)
    claims = [Claim("up", "better > speech", "better", "speech_enc", "average", "greater"),
              Claim("eq", "same ~ speech on speech", "same", "speech_enc", "speech", "equivalent", margin=100),
              Claim("down", "worse collapses", "worse", "speech_enc", "speech", "below", margin=100),
              Claim("wrong", "worse > speech", "worse", "speech_enc", "speech", "greater"),
              Claim("missing", "fusion > speech", "fusion", "speech_enc", "average", "greater")]
    verdicts = {v.claim.key: v for v in evaluate_claims(evidence, claims, resamples=500)}
    assert verdicts["up"].verdict == SUPPORTED and verdicts["up"].low > 0
    assert verdicts["eq"].verdict == SUPPORTED and verdicts["eq"].difference == pytest.approx(0, abs=1e-9)
    assert verdicts["down"].verdict == SUPPORTED and verdicts["down"].difference == pytest.approx(-4000 / 7)
    assert verdicts["wrong"].verdict == CONTRADICTED
    assert verdicts["missing"].verdict == NOT_RUN


def test_a_row_missing_a_task_of_the_scope_decides_no_claim_there():
    data = standard(partial=(0.9, 0.9))
    del data["partial"]["pitch"]  # an interrupted table: the row has keyword spotting only
    evidence = Evidence(data, TASKS, REFS)
    assert evidence.covers("partial", "speech") and evidence.covers("partial", "ks")
    assert not evidence.covers("partial", "average") and not evidence.covers("partial", "music")
    claims = [Claim("avg", "partial > speech on average", "partial", "speech_enc", "average", "greater"),
              Claim("sp", "partial > speech on speech", "partial", "speech_enc", "speech", "greater")]
    verdicts = {v.claim.key: v.verdict for v in evaluate_claims(evidence, claims, resamples=300)}
    assert verdicts == {"avg": NOT_RUN, "sp": SUPPORTED}


def test_small_differences_on_few_clips_stay_undecided():
    data = results(n=60, chance=(0.1, 0.1), speech_enc=(0.8, 0.3), music_enc=(0.5, 0.7), close=(0.82, 0.3))
    verdict, = evaluate_claims(Evidence(data, TASKS, REFS),
                               [Claim("c", "close > speech", "close", "speech_enc", "speech", "greater")], resamples=500)
    assert verdict.verdict == UNDECIDED and verdict.low < 0 < verdict.high


def test_pairing_over_clips_narrows_the_interval():
    """Two rows that differ on a few clips only: the paired interval is far narrower than independent rows' spread."""
    base = flags(1000, 0.6, 1)
    shifted = dict(base)
    flipped = [uid for uid, ok in base.items() if not ok][:30]
    for uid in flipped:
        shifted[uid] = True
    data = standard()
    data["a"] = {"ks": [shifted] * 3, "pitch": data["music_enc"]["pitch"]}
    data["b"] = {"ks": [base] * 3, "pitch": data["music_enc"]["pitch"]}
    evidence = Evidence(data, TASKS, REFS)
    verdict, = evaluate_claims(evidence, [Claim("p", "a > b", "a", "b", "ks", "greater")], resamples=1000)
    assert verdict.verdict == SUPPORTED
    intervals = score_intervals(evidence, ["b"], resamples=1000)
    single_width = intervals["b"]["ks"][1] - intervals["b"]["ks"][0]
    assert verdict.high - verdict.low < single_width / 2
