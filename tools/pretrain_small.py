#!/usr/bin/env python
"""Pretrain a small HuBERT-architecture encoder on a corpus of tools/make_pretrain_corpora.py.

    python tools/pretrain_small.py CORPUS OUT --objective hubert|mert [--steps N] [--batch B] [--seed S]

hubert (speech, HuBERT iteration 1): k-means (k=100) units of 39-dim MFCC+delta+delta-delta (100 Hz,
every second frame -> 50 Hz), span masking (p=0.08, span 10), cross-entropy on masked frames with
logits = cosine(projected output, learned unit embedding) / 0.1.
mert (music, MERT style): the same masked prediction of two codebooks (k-means of log-mel, k-means of
chroma) plus an MSE reconstruction of the masked frames' log-CQT.

Both use the same HubertConfig (``ARCH``); ``--init-seed`` picks the random initialisation. OUT gets the
encoder as a Hugging Face dir (config.json, model.safetensors, preprocessor_config.json), the
training heads and k-means codebooks (pretrain_state.safetensors), train_log.jsonl, loss_curve.png and
summary.json. ``--measure K`` times K steps and exits; ``--resume`` continues from OUT/checkpoint.pt.
``--init-from RUN`` continues a finished run (its encoder, heads and codebooks) as a new run, and
``--degrade PROFILE`` feeds every crop through a recording condition of upstream_merged.synth.degrade
while its targets stay those of the clean audio (WavLM's denoising masked prediction).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from upstream_merged.core.atomic import write_atomically, write_text_atomically  # noqa: E402
from upstream_merged.core.memory import keep_freed_memory_in_the_heap  # noqa: E402

logger = logging.getLogger("pretrain_small")
RATE = 16000
HOP = 320  # the HuBERT CNN's total stride: one encoder frame per 320 samples (50 Hz)

# The shipped small architecture (both encoders): HuBERT's CNN kernels/strides at reduced width.
ARCH = dict(
    conv_dim=[128] * 7,
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_bias=False,
    feat_extract_norm="group",
    feat_proj_layer_norm=True,
    do_stable_layer_norm=False,
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    num_conv_pos_embeddings=64,
    num_conv_pos_embedding_groups=16,
    hidden_dropout=0.1,
    attention_dropout=0.1,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,
    mask_time_prob=0.08,
    mask_time_length=10,
    mask_feature_prob=0.0,
)
# A few-second CPU test of the same code path.
TEST_ARCH = dict(ARCH, conv_dim=[16] * 7, hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
NORMALIZE = {"hubert": False, "mert": True}  # per-clip input normalisation, as HuBERT base / MERT ship it


# ----------------------------------------------------------------------------- data
def read_corpus(corpus: Path, domain: str) -> Tuple[np.ndarray, np.ndarray, List[dict]]:
    """Train and held-out audio of one domain, each concatenated into a float32 stream, plus the rows."""
    import soundfile

    manifest = corpus / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"{manifest} not found: write the corpus with tools/make_pretrain_corpora.py {corpus}")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["domain"] == domain]
    if not rows:
        raise SystemExit(f"{manifest} has no {domain} clips; regenerate it with --{domain}-minutes > 0")
    streams = {}
    for split in ("train", "heldout"):
        parts = []
        for row in rows:
            if row["split"] != split:
                continue
            audio, rate = soundfile.read(str(corpus / row["path"]), dtype="float32")
            if rate != RATE or audio.ndim != 1:
                raise SystemExit(f"{row['path']}: expected 16 kHz mono, got {rate} Hz shape {audio.shape}")
            parts.append(audio)
            row["samples"] = len(audio)  # utterance boundaries in the concatenated stream
        streams[split] = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return streams["train"], streams["heldout"], rows


def _frames(stream_len: int) -> int:
    return stream_len // HOP


def mfcc_features(stream: np.ndarray) -> np.ndarray:
    """39-dim MFCC + delta + delta-delta at 100 Hz, every second frame: (frames at 50 Hz, 39)."""
    import torchaudio

    mfcc = torchaudio.transforms.MFCC(sample_rate=RATE, n_mfcc=13,
                                      melkwargs=dict(n_fft=400, hop_length=HOP // 2, n_mels=23, center=True))
    feats = []
    for start in range(0, len(stream), RATE * 600):  # 10-minute chunks bound the STFT memory
        chunk = torch.from_numpy(stream[start:start + RATE * 600])
        m = mfcc(chunk)  # (13, T100)
        d1 = torchaudio.functional.compute_deltas(m)
        d2 = torchaudio.functional.compute_deltas(d1)
        feats.append(torch.cat([m, d1, d2], 0).T[::2][: _frames(len(chunk))])  # (T50, 39)
    return torch.cat(feats).numpy()


def music_features(stream: np.ndarray) -> Dict[str, np.ndarray]:
    """log-mel (64), chroma (12) and log-CQT (84 bins from C1) at 50 Hz, each (frames, dim)."""
    import librosa
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=RATE, n_fft=1024, hop_length=HOP, n_mels=64, center=True)
    out: Dict[str, List[np.ndarray]] = {"mel": [], "chroma": [], "cqt": []}
    for start in range(0, len(stream), RATE * 300):
        chunk = stream[start:start + RATE * 300]
        n = _frames(len(chunk))
        out["mel"].append(torch.log(mel(torch.from_numpy(chunk)) + 1e-6).T[:n].numpy())
        cqt = np.abs(librosa.cqt(chunk, sr=RATE, hop_length=HOP, n_bins=84, bins_per_octave=12))
        out["chroma"].append(librosa.feature.chroma_cqt(C=cqt, sr=RATE, hop_length=HOP).T[:n])
        out["cqt"].append(librosa.amplitude_to_db(cqt, ref=1.0, top_db=None).T[:n])
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}


def kmeans(data: np.ndarray, k: int, seed: int, iters: int = 30) -> np.ndarray:
    """Seeded k-means (k-means++ init, Lloyd iterations) in torch; returns the (k, dim) centroids."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(data).float()
    centroids = [x[torch.randint(len(x), (1,), generator=gen)].squeeze(0)]
    dist = torch.full((len(x),), float("inf"))
    for _ in range(1, k):
        dist = torch.minimum(dist, ((x - centroids[-1]) ** 2).sum(1))
        centroids.append(x[torch.multinomial(dist / dist.sum(), 1, generator=gen)].squeeze(0))
    c = torch.stack(centroids)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).float()
        empty = counts == 0  # keep an empty cluster's centroid where it was
        c = torch.where(empty[:, None], c, sums / counts.clamp(min=1)[:, None])
    return c.numpy()


def utterance_normalize(feats: np.ndarray, lengths: List[int]) -> np.ndarray:
    """Standardise each utterance's frames on its own mean and std (speaker and channel offsets out): (frames, H).

    ``lengths`` are the utterances' sample counts in stream order; frame j starts at sample j * HOP.
    """
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
    utt = torch.from_numpy(np.searchsorted(ends, np.arange(len(feats)) * HOP, side="right"))
    x = torch.from_numpy(feats).double()
    n = torch.bincount(utt, minlength=len(ends)).double().clamp(min=1)[:, None]
    mean = torch.zeros(len(ends), x.shape[1], dtype=torch.float64).index_add_(0, utt, x) / n
    var = torch.zeros_like(mean).index_add_(0, utt, (x - mean[utt]) ** 2) / n
    return ((x - mean[utt]) / (var[utt].sqrt() + 1e-5)).float().numpy()


def assign_units(feats: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid per frame (int64)."""
    c = torch.from_numpy(centroids)
    out = [torch.cdist(torch.from_numpy(feats[i:i + 50000]), c).argmin(1) for i in range(0, len(feats), 50000)]
    return torch.cat(out).numpy()


@dataclass
class Targets:
    """Per-50-Hz-frame training targets of a stream: unit ids per codebook and optional regression target."""

    units: Dict[str, np.ndarray]  # codebook -> (frames,) int64
    regress: Optional[np.ndarray] = None  # (frames, dim) standardised log-CQT (mert)


def receptive_overhang(arch: dict) -> int:
    """Samples the CNN reads past the last frame's hop: conv_frames(n * HOP + overhang) == n."""
    overhang = 0
    while conv_frames(HOP + overhang, arch) < 1:
        overhang += 1
    return overhang


@torch.no_grad()
def layer_features(encoder_dir: Path, stream: np.ndarray, layer: int, normalize: bool,
                   window_seconds: float = 20.0) -> np.ndarray:
    """Hidden states of ``layer`` of a trained encoder over a stream, one row per 320 samples: (frames, H)."""
    from upstream_merged.models.hubert import load_hubert_family

    model = load_hubert_family(encoder_dir).model.eval()
    model.config.apply_spec_augment = False
    arch = {"conv_kernel": list(model.config.conv_kernel), "conv_stride": list(model.config.conv_stride)}
    overhang = receptive_overhang(arch)
    window = int(window_seconds * RATE) // HOP * HOP
    total = _frames(len(stream))
    out = []
    for start in range(0, total * HOP, window):
        n = min(window, total * HOP - start)
        chunk = stream[start:start + n + overhang]
        chunk = np.pad(chunk, (0, n + overhang - len(chunk)))
        wav = torch.from_numpy(np.ascontiguousarray(chunk))[None]
        if normalize:
            wav = (wav - wav.mean()) / (wav.std() + 1e-7)
        hidden = model(wav, output_hidden_states=True).hidden_states[layer][0]  # (n / HOP, H)
        out.append(hidden[: n // HOP].numpy())
    return np.concatenate(out).astype(np.float32)


def build_targets(objective: str, train: np.ndarray, heldout: np.ndarray, seed: int,
                  max_kmeans_frames: int = 60000, iteration2: Optional[Tuple[Path, int, int]] = None,
                  centroids: Optional[Dict[str, np.ndarray]] = None,
                  utterance_lengths: Optional[Tuple[List[int], List[int]]] = None
                  ) -> Tuple[Targets, Targets, Dict[str, np.ndarray]]:
    """Features -> standardise on train -> seeded k-means codebooks -> unit targets for both streams.

    ``iteration2`` = (encoder dir, layer, k): HuBERT iteration 2, k-means on that layer of the iteration-1
    encoder instead of MFCC. ``centroids`` (a previous run's state) skips k-means and reuses its codebooks.
    ``utterance_lengths`` (train, held-out sample counts): standardise those layer features per utterance first.
    """
    if objective == "hubert" and iteration2 is not None:
        encoder_dir, layer, k = iteration2
        feats = {"iter2": (layer_features(encoder_dir, train, layer, NORMALIZE["hubert"]),
                           layer_features(encoder_dir, heldout, layer, NORMALIZE["hubert"]))}
        if utterance_lengths is not None:
            feats["iter2"] = tuple(utterance_normalize(f, n) for f, n in zip(feats["iter2"], utterance_lengths))
        ks = {"iter2": k}
    elif objective == "hubert":
        feats = {"mfcc": (mfcc_features(train), mfcc_features(heldout))}
        ks = {"mfcc": 100}
    else:
        tr, ho = music_features(train), music_features(heldout)
        feats = {"mel": (tr["mel"], ho["mel"]), "chroma": (tr["chroma"], ho["chroma"]), "cqt": (tr["cqt"], ho["cqt"])}
        ks = {"mel": 100, "chroma": 24}
    state: Dict[str, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    units_tr, units_ho = {}, {}
    for name, (ftr, fho) in feats.items():
        mean, std = ftr.mean(0), ftr.std(0) + 1e-5
        ftr, fho = (ftr - mean) / std, (fho - mean) / std
        state[f"{name}.mean"], state[f"{name}.std"] = mean, std
        feats[name] = (ftr.astype(np.float32), fho.astype(np.float32))
        if name not in ks:
            continue
        pick = rng.choice(len(ftr), size=min(len(ftr), max_kmeans_frames), replace=False)
        if centroids is not None:
            codebook = np.asarray(centroids[f"{name}.centroids"], dtype=np.float32)
        else:
            codebook = kmeans(ftr[np.sort(pick)], ks[name], seed)
        state[f"{name}.centroids"] = codebook
        units_tr[name], units_ho[name] = assign_units(feats[name][0], codebook), assign_units(feats[name][1], codebook)
        logger.info("k-means %s: k=%d on %d frames; largest unit holds %.1f%% of train frames", name, ks[name],
                    len(pick), 100 * np.bincount(units_tr[name], minlength=ks[name]).max() / len(units_tr[name]))
    regress = feats["cqt"] if objective == "mert" else (None, None)
    return Targets(units_tr, regress[0]), Targets(units_ho, regress[1]), state


# ----------------------------------------------------------------------------- model
def conv_frames(samples: int, arch: dict) -> int:
    """Frames the HuBERT CNN of ``arch`` produces for ``samples`` input samples."""
    for kernel, stride in zip(arch["conv_kernel"], arch["conv_stride"]):
        samples = (samples - kernel) // stride + 1
    return samples


class PretrainHeads(nn.Module):
    """HuBERT's prediction head per codebook (projection + unit embeddings, cosine/0.1) and MERT's CQT head."""

    def __init__(self, hidden: int, codebooks: Dict[str, int], regress_dim: int = 0, proj_dim: int = 256):
        super().__init__()
        self.proj = nn.ModuleDict({name: nn.Linear(hidden, proj_dim) for name in codebooks})
        self.embed = nn.ParameterDict({name: nn.Parameter(torch.randn(k, proj_dim) * 0.02) for name, k in codebooks.items()})
        self.regress = nn.Linear(hidden, regress_dim) if regress_dim else None

    def logits(self, name: str, hidden: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of projected frames to every unit embedding, / 0.1: (N, k)."""
        # normalise, then one matmul: cosine_similarity broadcast over (N, k, proj) took ~0.7 s of a step at
        # k = 100 (docs/pretraining.md, "Time")
        frames = F.normalize(self.proj[name](hidden), dim=-1, eps=1e-8)
        return frames @ F.normalize(self.embed[name], dim=-1, eps=1e-8).T / 0.1


def span_mask(batch: int, frames: int, gen: torch.Generator, prob: float = 0.08, span: int = 10) -> torch.Tensor:
    """HuBERT/wav2vec 2.0 span mask: ~prob*frames random starts, each masking ``span`` frames; (B, T) bool."""
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    limit = max(1, frames - span)
    n_starts = max(2, int(prob * frames + torch.rand(1, generator=gen).item()))
    for b in range(batch):
        for s in torch.randperm(limit, generator=gen)[:n_starts].tolist():
            mask[b, s:s + span] = True
    return mask


def sample_batch(stream: np.ndarray, targets: Targets, batch: int, samples: int, frames: int,
                 gen: torch.Generator, offsets: Optional[List[int]] = None):
    """Random crops of ``samples`` starting on a 320-sample frame boundary, with their frame targets."""
    max_frame = _frames(len(stream)) - frames - 1
    if offsets is None:
        offsets = torch.randint(0, max_frame, (batch,), generator=gen).tolist()
    wav = torch.from_numpy(np.stack([stream[o * HOP:o * HOP + samples] for o in offsets]))
    units = {n: torch.from_numpy(np.stack([u[o:o + frames] for o in offsets])) for n, u in targets.units.items()}
    regress = None
    if targets.regress is not None:
        regress = torch.from_numpy(np.stack([targets.regress[o:o + frames] for o in offsets]))
    return wav, units, regress


def degrade_batch(wav: torch.Tensor, seed: int, step: int, profile: str) -> torch.Tensor:
    """Each crop recorded under its own condition of ``profile`` (noise, room, channel, level), drawn from (seed, step)."""
    from upstream_merged.synth.degrade import apply, draw_condition

    rng = np.random.default_rng([seed, step, 0xDE])
    return torch.from_numpy(np.stack([apply(row.numpy(), RATE, draw_condition(rng, profile)) for row in wav]))


def load_finished_run(run: Path) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor], Dict[str, np.ndarray]]:
    """(encoder state dict, heads state dict, k-means state) of a finished run of this tool, to continue from."""
    from safetensors.numpy import load_file

    from upstream_merged.models.hubert import load_hubert_family

    state_file = run / "pretrain_state.safetensors"
    if not (run / "encoder").is_dir() or not state_file.is_file():
        raise SystemExit(f"--init-from {run}: needs a finished run (encoder/ and pretrain_state.safetensors)")
    encoder = load_hubert_family(run / "encoder").model.state_dict()
    saved = load_file(str(state_file))
    heads = {k[len("heads."):]: torch.from_numpy(v) for k, v in saved.items() if k.startswith("heads.")}
    kstate = {k[len("targets."):]: v for k, v in saved.items() if k.startswith("targets.")}
    return encoder, heads, kstate


def forward_loss(model, heads: PretrainHeads, wav: torch.Tensor, units: Dict[str, torch.Tensor],
                 regress: Optional[torch.Tensor], mask: torch.Tensor, normalize: bool,
                 cqt_weight: float = 1.0) -> Tuple[torch.Tensor, Dict[str, float]]:
    """Masked-prediction loss (CE per codebook, + CQT MSE when given) and per-codebook masked accuracy."""
    if normalize:
        wav = (wav - wav.mean(1, keepdim=True)) / (wav.std(1, keepdim=True) + 1e-7)
    hidden = model(wav, mask_time_indices=mask).last_hidden_state  # (B, T, H)
    masked = hidden[mask]  # (N, H)
    loss = hidden.new_zeros(())
    stats: Dict[str, float] = {}
    for name, target in units.items():
        logits = heads.logits(name, masked)
        ce = F.cross_entropy(logits, target[mask])
        loss = loss + ce
        stats[f"ce_{name}"] = ce.item()
        stats[f"acc_{name}"] = (logits.argmax(-1) == target[mask]).float().mean().item()
    if regress is not None and heads.regress is not None:
        mse = F.mse_loss(heads.regress(masked), regress[mask])
        loss = loss + cqt_weight * mse
        stats["mse_cqt"] = mse.item()
    stats["loss"] = loss.item()
    return loss, stats


def build_model(arch: dict, init_seed: int):
    """A HubertModel of ``arch`` with span masking enabled, randomly initialised from ``init_seed``."""
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(**arch, apply_spec_augment=True)
    with torch.random.fork_rng():  # transformers initialises from the global RNG; leave the caller's state alone
        torch.manual_seed(init_seed)
        return HubertModel(config)


def lr_at(step: int, steps: int, peak: float, warmup: float = 0.08, schedule: str = "linear",
          warmup_steps: int = 0, decay_fraction: float = 0.2) -> float:
    """Learning rate at ``step``.

    linear: warm-up over ``warmup`` of the run, then linear decay to 0 (HuBERT's shape; the first shipped
    encoders). wsd: warm-up over ``warmup_steps``, constant, then linear decay to 0 over the last
    ``decay_fraction`` of ``steps`` -- the run can be extended (a larger --steps on --resume) at no cost
    as long as the decay has not started.
    """
    if schedule == "wsd":
        w = max(1, warmup_steps)
        decay_start = int(steps * (1 - decay_fraction))
        if step < w:
            return peak * (step + 1) / w
        if step < decay_start:
            return peak
        return peak * max(0.0, (steps - step) / max(1, steps - decay_start))
    w = max(1, int(warmup * steps))
    return peak * (step + 1) / w if step < w else peak * max(0.0, (steps - step) / max(1, steps - w))


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model, heads, stream, targets, arch, objective, seed, samples, windows: int = 48) -> Dict[str, float]:
    """Masked-prediction loss/accuracy on fixed held-out crops with fixed masks (same every call)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed + 777)
    frames = conv_frames(samples, arch)
    max_frame = _frames(len(stream)) - frames - 1
    offsets = np.linspace(0, max_frame, windows).astype(int).tolist()
    totals: Dict[str, float] = {}
    for i in range(0, windows, 16):
        wav, units, regress = sample_batch(stream, targets, 0, samples, frames, gen, offsets[i:i + 16])
        mask = span_mask(len(wav), frames, gen)
        model.config.apply_spec_augment = True
        _, stats = forward_loss(model, heads, wav, units, regress, mask, NORMALIZE[objective])
        for k, v in stats.items():
            totals[k] = totals.get(k, 0.0) + v * len(wav) / windows
    model.train()
    return totals


def unit_baselines(train: Targets, held: Targets) -> Dict[str, dict]:
    """Chance levels per codebook on held-out frames: majority-unit accuracy, unigram-prior and uniform CE."""
    out = {}
    for name, units in held.units.items():
        k = int(max(train.units[name].max(), units.max())) + 1
        prior = np.bincount(train.units[name], minlength=k) + 1.0  # add-one: every unit has some mass
        prior /= prior.sum()
        out[name] = {"majority_acc": float(np.bincount(units, minlength=k).max() / len(units)),
                     "prior_ce": float(-np.log(prior[units]).mean()), "uniform_ce": float(np.log(k))}
    return out


def chance(targets: Targets) -> Dict[str, float]:
    """Accuracy of always predicting the most frequent unit (the majority baseline) per codebook."""
    return {name: float(np.bincount(u).max() / len(u)) for name, u in targets.units.items()}


# ----------------------------------------------------------------------------- linear probe
def probe_labels(rows: List[dict], domain: str) -> Dict[str, List]:
    """Clip-level categorical labels to probe: accent/variant for speech, every 2-40-valued label for music."""
    if domain == "speech":
        voices = [r["labels"]["voice"] for r in rows]
        return {"accent": [v.split("+")[0] for v in voices], "variant": [v.partition("+")[2] or "-" for v in voices]}
    table: Dict[str, List] = {}
    for key in sorted(rows[0]["labels"]):
        values = [r["labels"].get(key) for r in rows]
        if key in ("notes", "seconds", "sample_rate"):  # counts and constants, not classes
            continue
        if all(isinstance(v, (str, int, bool)) for v in values) and 2 <= len(set(values)) <= 40:
            table[key] = values
    return table


@torch.no_grad()
def pooled_layers(model, corpus: Path, rows: List[dict], normalize: bool, seconds: float = 4.0) -> np.ndarray:
    """Mean-pooled hidden states of every layer for the first ``seconds`` of each clip: (clips, layers, H)."""
    import soundfile

    model.eval()
    model.config.apply_spec_augment = False
    feats = []
    for row in rows:
        audio, _ = soundfile.read(str(corpus / row["path"]), dtype="float32")
        wav = torch.from_numpy(audio[: int(seconds * RATE)])[None]
        if normalize:
            wav = (wav - wav.mean()) / (wav.std() + 1e-7)
        states = model(wav, output_hidden_states=True).hidden_states
        feats.append(torch.stack([h[0].mean(0) for h in states]).numpy())
    model.config.apply_spec_augment = True
    return np.stack(feats)


def linear_probe(feats: np.ndarray, labels: List, seed: int) -> float:
    """5-fold cross-validated accuracy of a standardised logistic regression on ``feats``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.5))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, feats, np.asarray([str(v) for v in labels]), cv=folds).mean())


def probe(models: Dict[str, nn.Module], corpus: Path, rows: List[dict], domain: str, normalize: bool,
          seed: int, clips: int = 300) -> Dict[str, dict]:
    """Per model and label: probe accuracy of the last layer and of the best layer, and the majority share."""
    rng = np.random.default_rng(seed)
    rows = [rows[i] for i in np.sort(rng.choice(len(rows), size=min(clips, len(rows)), replace=False))]
    labels = probe_labels(rows, domain)
    results: Dict[str, dict] = {}
    for key, values in labels.items():
        counts = {v: values.count(v) for v in set(values)}
        keep = [i for i, v in enumerate(values) if counts[v] >= 5]  # StratifiedKFold needs 5 per class
        if len({values[i] for i in keep}) < 2:
            continue
        results[key] = {"classes": len({values[i] for i in keep}), "clips": len(keep),
                        "majority": max(counts[values[i]] for i in keep) / len(keep)}
    for name, model in models.items():
        feats = pooled_layers(model, corpus, rows, normalize)
        for key in results:
            values = labels[key]
            counts = {v: values.count(v) for v in set(values)}
            keep = [i for i, v in enumerate(values) if counts[v] >= 5]
            per_layer = [linear_probe(feats[keep, layer], [values[i] for i in keep], seed) for layer in range(feats.shape[1])]
            results[key][name] = {"last": round(per_layer[-1], 4), "best": round(max(per_layer), 4),
                                  "best_layer": int(np.argmax(per_layer))}
    return results


# ----------------------------------------------------------------------------- output
def save_encoder(model, out: Path, objective: str) -> None:
    """Write the encoder as a Hugging Face HubertModel directory (safetensors)."""
    from upstream_merged.tiny.hubert import write_hubert_dir

    model.config.apply_spec_augment = False
    write_hubert_dir(out, model, normalize=NORMALIZE[objective])
    model.config.apply_spec_augment = True


def plot_curves(log: List[dict], path: Path, title: str) -> None:
    """Training loss (smoothed), held-out loss and held-out masked accuracy against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in log if r["kind"] == "train"]
    held = [r for r in log if r["kind"] == "eval"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [r["step"] for r in train]
    loss = np.array([r["loss"] for r in train])
    axes[0].plot(steps, loss, alpha=0.3, label="train (batch)")
    if len(loss) >= 10:
        kernel = np.ones(10) / 10
        axes[0].plot(steps[9:], np.convolve(loss, kernel, mode="valid"), label="train (mean of 10)")
    axes[0].plot([r["step"] for r in held], [r["loss"] for r in held], "o-", label="held-out")
    axes[0].set_xlabel("step"), axes[0].set_ylabel("loss"), axes[0].legend(), axes[0].set_title(title)
    for key in sorted(k for k in (held[0] if held else {}) if k.startswith("acc_")):
        axes[1].plot([r["step"] for r in held], [r[key] for r in held], "o-", label=f"held-out masked {key[4:]}")
        if f"chance_{key[4:]}" in held[0]:
            axes[1].axhline(held[0][f"chance_{key[4:]}"], ls="--", lw=1, color="gray")
    axes[1].set_xlabel("step"), axes[1].set_ylabel("accuracy (dashed: majority unit)"), axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- resuming
# Arguments that change what a step computes; a checkpoint only continues a run with the same ones.
# --steps may grow (wsd: before the decay starts), so it is not among them.
FINGERPRINT_ARGS = ("objective", "batch", "crop_seconds", "lr", "seed", "init_seed", "schedule", "warmup_steps",
                    "decay_fraction", "iteration2_from", "iteration2_layer", "iteration2_clusters", "init_from",
                    "degrade", "refit_targets", "iteration2_normalize")


DEFAULTS = {"init_from": None, "degrade": "none", "refit_targets": False, "iteration2_normalize": "none"}  # arguments newer than some checkpoints


def run_fingerprint(args: argparse.Namespace, arch: dict) -> dict:
    """The arguments and architecture that a resumed run must share with the checkpoint's run."""
    values = {k: getattr(args, k) for k in FINGERPRINT_ARGS}
    for path in ("iteration2_from", "init_from"):
        values[path] = str(values[path]) if values[path] else None
    return {**values, "arch": json.loads(json.dumps(arch))}


def check_resumable(saved: dict, current: dict) -> None:
    """Refuse to resume a checkpoint written with different step-changing arguments, naming them."""
    if not saved:
        return  # a checkpoint of an older version of this tool: nothing recorded to compare
    differ = sorted(k for k in set(saved) | set(current)
                    if k not in ("iteration2_from", "init_from") and saved.get(k, DEFAULTS.get(k)) != current.get(k))
    if differ:
        raise SystemExit("cannot --resume: the checkpoint was written with different "
                         + ", ".join(f"{k} ({saved.get(k)!r} there, {current.get(k)!r} now)" for k in differ))


def install_stop_handlers():
    """SIGTERM/SIGINT set a flag the training loop checks after each step; returns the flag's reader."""
    import signal

    requested = {"stop": False}

    def handler(signum, frame):
        logger.info("signal %d: checkpointing after this step", signum)
        requested["stop"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return lambda: requested["stop"]


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--objective", choices=["hubert", "mert"], required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop-seconds", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0, help="data order, masks and k-means")
    parser.add_argument("--init-seed", type=int, default=None, help="random init (default: 1 hubert, 2 mert)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--checkpoint-every", type=int, default=100, help="also checkpoint every this many steps")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0,
                        help="checkpoint at least this often (also on SIGTERM/SIGINT); --resume continues bit-identically")
    parser.add_argument("--stop-at", type=int, default=0, help="checkpoint and exit after this step (continue with --resume)")
    parser.add_argument("--snapshot-every", type=int, default=0,
                        help="keep a copy of the encoder every this many steps in OUT/snapshots/step_NNNNNN")
    parser.add_argument("--schedule", choices=["linear", "wsd"], default="linear",
                        help="linear: warm-up 8%% then linear decay; wsd: warm-up, constant, decay over the last part")
    parser.add_argument("--warmup-steps", type=int, default=1000, help="wsd warm-up steps")
    parser.add_argument("--decay-fraction", type=float, default=0.2, help="wsd: share of --steps spent decaying")
    parser.add_argument("--iteration2-from", type=Path, default=None,
                        help="hubert iteration 2: k-means targets on a layer of this iteration-1 encoder dir")
    parser.add_argument("--iteration2-layer", type=int, default=2, help="hidden_states index used for iteration 2")
    parser.add_argument("--iteration2-clusters", type=int, default=100)
    parser.add_argument("--iteration2-normalize", choices=["none", "utterance"], default="none",
                        help="utterance: standardise the layer's features per utterance before k-means, so the units "
                             "follow what changes within an utterance (content) more than the speaker or channel")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="start from a finished run of this tool (encoder, heads, codebooks) instead of a random init")
    parser.add_argument("--refit-targets", action="store_true",
                        help="with --init-from: keep only its encoder; fit new k-means targets (e.g. --iteration2-from "
                             "that encoder: HuBERT's next iteration) and train new prediction heads")
    from upstream_merged.synth.degrade import PROFILES as DEGRADE_PROFILES

    parser.add_argument("--degrade", default="none", choices=["none", *DEGRADE_PROFILES],
                        help="feed crops through recording conditions of this upstream_merged.synth.degrade profile "
                             "(e.g. pretrain); targets stay those of the clean audio")
    parser.add_argument("--measure", type=int, default=0, help="time this many steps, print s/step, exit")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--probe-only", action="store_true",
                        help="only run the linear probe of OUT/encoder vs its random init (writes OUT/probe.json)")
    parser.add_argument("--probe-clips", type=int, default=300)
    parser.add_argument("--ship-to", type=Path, default=None,
                        help="copy the finished encoder here (e.g. upstream_merged/pretrained/hubert_small) "
                             "and rewrite the SHA256SUMS next to it")
    parser.add_argument("--baselines-only", action="store_true",
                        help="only write OUT/baselines.json: held-out chance levels of the unit targets")
    parser.add_argument("--ship-only", action="store_true", help="only copy a finished OUT/encoder to --ship-to")
    parser.add_argument("--arch", choices=["small", "test"], default="small")
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    keep_freed_memory_in_the_heap()
    arch = ARCH if args.arch == "small" else TEST_ARCH
    init_seed = args.init_seed if args.init_seed is not None else {"hubert": 1, "mert": 2}[args.objective]
    args.init_seed = init_seed
    out: Path = args.out
    if args.probe_only:
        return run_probe(args, arch, init_seed)
    if args.ship_only:
        if args.ship_to is None:
            parser.error("--ship-only needs --ship-to DEST")
        ship(out / "encoder", args.ship_to)
        return 0
    if args.refit_targets and args.init_from is None:
        parser.error("--refit-targets needs --init-from (the run whose encoder continues)")
    if args.iteration2_normalize != "none" and args.iteration2_from is None:
        parser.error("--iteration2-normalize needs --iteration2-from (it normalises that encoder's layer features)")
    # before OUT is touched and before the long corpus read: a bad --init-from fails at once and writes nothing
    start_state = load_finished_run(args.init_from) if args.init_from is not None else None
    if out.exists() and any(out.iterdir()) and not (args.force or args.resume or args.measure or args.baselines_only):
        parser.error(f"{out} is not empty; pass --force to replace it or --resume to continue")
    if args.force and not args.resume and not args.baselines_only and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    start = time.time()
    domain = "speech" if args.objective == "hubert" else "music"
    train, heldout, rows = read_corpus(args.corpus, domain)
    logger.info("%s corpus: %.1f min train, %.1f min held-out", domain, len(train) / RATE / 60, len(heldout) / RATE / 60)
    ckpt_path = out / "checkpoint.pt"
    ckpt = None
    if args.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, weights_only=False)
        check_resumable(ckpt.get("run", {}), run_fingerprint(args, arch))
    iteration2 = None
    if args.iteration2_from is not None:
        if args.objective != "hubert":
            parser.error("--iteration2-from is a hubert (speech) option")
        iteration2 = (args.iteration2_from, args.iteration2_layer, args.iteration2_clusters)
    lengths = None
    if args.iteration2_normalize == "utterance":
        lengths = tuple([r["samples"] for r in rows if r["split"] == split] for split in ("train", "heldout"))
    t_train, t_held, kstate = build_targets(args.objective, train, heldout, args.seed, iteration2=iteration2,
                                            utterance_lengths=lengths,
                                            centroids=ckpt["kstate"] if ckpt and "kstate" in ckpt
                                            else start_state[2] if start_state and not args.refit_targets else None)
    prep_seconds = time.time() - start
    baselines = unit_baselines(t_train, t_held)
    logger.info("targets ready in %.0f s; held-out chance levels: %s", prep_seconds, baselines)
    if args.baselines_only:
        (out / "baselines.json").write_text(json.dumps(baselines, indent=2) + "\n")
        return 0

    model = build_model(arch, init_seed)
    model.train()
    codebooks = {name: len(kstate[f"{name}.centroids"]) for name in t_train.units}
    regress_dim = t_train.regress.shape[1] if t_train.regress is not None else 0
    torch.manual_seed(init_seed + 1000)
    heads = PretrainHeads(arch["hidden_size"], codebooks, regress_dim)
    if start_state is not None:
        model.load_state_dict(start_state[0])
        if not args.refit_targets:
            heads.load_state_dict(start_state[1])
        logger.info("initialised from the finished run %s%s", args.init_from,
                    " (encoder only; new targets and heads)" if args.refit_targets else "")
    params = list(model.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    samples = int(args.crop_seconds * RATE)
    frames = conv_frames(samples, arch)
    log: List[dict] = []
    first = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"]), heads.load_state_dict(ckpt["heads"]), opt.load_state_dict(ckpt["opt"])
        first, log = ckpt["step"], ckpt["log"]
        if "torch_rng" in ckpt:  # dropout draws from the global generator
            torch.set_rng_state(ckpt["torch_rng"])
        logger.info("resumed at step %d", first)
    fingerprint = run_fingerprint(args, arch)

    def save_checkpoint(done: int) -> None:
        state = {"model": model.state_dict(), "heads": heads.state_dict(), "opt": opt.state_dict(),
                 "step": done, "log": log, "torch_rng": torch.get_rng_state(), "run": fingerprint,
                 "kstate": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in kstate.items()}}
        write_atomically(ckpt_path, lambda temp: torch.save(state, temp))
        logger.info("checkpoint at step %d -> %s", done, ckpt_path)

    stop_requested = install_stop_handlers()
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("encoder: %.2f M parameters; %d frames per %.1f s crop; batch %d; steps %d",
                n_params / 1e6, frames, args.crop_seconds, args.batch, args.steps)
    chance_held = chance(t_held)
    if first == 0 and not args.measure:
        ev = evaluate(model, heads, heldout, t_held, arch, args.objective, args.seed, samples)
        log.append({"kind": "eval", "step": 0, **ev, **{f"chance_{k}": v for k, v in chance_held.items()}})
        logger.info("step 0 held-out %s", {k: round(v, 4) for k, v in ev.items()})
    steps = args.measure or args.steps
    t0, step_times, last_checkpoint = time.time(), [], time.time()
    for step in range(first, steps):
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)  # the batch depends on the step only
        wav, units, regress = sample_batch(train, t_train, args.batch, samples, frames, gen)
        mask = span_mask(args.batch, frames, gen)
        if args.degrade != "none":
            wav = degrade_batch(wav, args.seed, step, args.degrade)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, args.lr, schedule=args.schedule, warmup_steps=args.warmup_steps,
                                decay_fraction=args.decay_fraction)
        ts = time.time()
        loss, stats = forward_loss(model, heads, wav, units, regress, mask, NORMALIZE[args.objective])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 10.0).item()
        opt.step()
        step_times.append(time.time() - ts)
        if not math.isfinite(stats["loss"]):
            raise SystemExit(f"loss is {stats['loss']} at step {step}; lower --lr")
        if step % args.log_every == 0 or step == steps - 1:
            row = {"kind": "train", "step": step, "lr": opt.param_groups[0]["lr"], "grad_norm": grad_norm,
                   "sec_per_step": float(np.median(step_times[-args.log_every:])), **stats}
            log.append(row)
            logger.info("step %d %s", step, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)})
        if args.measure:
            continue
        done = step + 1
        if done % args.eval_every == 0 or done == steps:
            ev = evaluate(model, heads, heldout, t_held, arch, args.objective, args.seed, samples)
            log.append({"kind": "eval", "step": done, **ev, **{f"chance_{k}": v for k, v in chance_held.items()}})
            logger.info("step %d held-out %s", done, {k: round(v, 4) for k, v in ev.items()})
        if args.snapshot_every and done % args.snapshot_every == 0:
            save_encoder(model, out / "snapshots" / f"step_{done:06d}", args.objective)
        stopping = stop_requested() or (args.stop_at and done >= args.stop_at)
        due = done % args.checkpoint_every == 0 or time.time() - last_checkpoint >= args.checkpoint_minutes * 60
        if done < steps and (stopping or due):
            save_checkpoint(done)
            last_checkpoint = time.time()
        if stopping and done < steps:
            (out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
            logger.info("stopped after step %d of %d; continue with --resume", done, steps)
            return 0
    if args.measure:
        print(f"median {np.median(step_times[1:] or step_times):.3f} s/step over {len(step_times)} steps "
              f"(batch {args.batch} x {args.crop_seconds} s; target prep {prep_seconds:.0f} s)")
        return 0
    train_seconds = time.time() - t0
    from safetensors.numpy import save_file

    encoder_dir = out / "encoder"
    save_encoder(model, encoder_dir, args.objective)
    head_state = {f"heads.{k}": v.detach().numpy() for k, v in heads.state_dict().items()}
    save_file({**head_state, **{f"targets.{k}": np.ascontiguousarray(v) for k, v in kstate.items()}},
              str(out / "pretrain_state.safetensors"))
    (out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    plot_curves(log, out / "loss_curve.png", f"{args.objective} objective, small HuBERT ({n_params / 1e6:.1f} M)")
    final = [r for r in log if r["kind"] == "eval"][-1]
    summary = {"objective": args.objective, "domain": domain, "steps": steps, "batch": args.batch,
               "crop_seconds": args.crop_seconds, "lr": args.lr, "seed": args.seed, "init_seed": init_seed,
               "schedule": args.schedule, "warmup_steps": args.warmup_steps, "decay_fraction": args.decay_fraction,
               "iteration2": [str(args.iteration2_from), args.iteration2_layer, args.iteration2_clusters]
               if args.iteration2_from else None,
               "init_from": str(args.init_from) if args.init_from else None, "degrade": args.degrade,
               "refit_targets": args.refit_targets, "iteration2_normalize": args.iteration2_normalize,
               "parameters": n_params, "corpus_minutes_train": round(len(train) / RATE / 60, 2),
               "target_prep_seconds": round(prep_seconds, 1), "train_seconds": round(train_seconds, 1),
               "median_sec_per_step": round(float(np.median(step_times)), 3) if step_times else None,
               "heldout_final": final, "heldout_chance": chance_held, "heldout_baselines": baselines, "arch": arch,
               "argv": sys.argv[1:] if argv is None else list(argv)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    ckpt_path.unlink(missing_ok=True)
    if args.probe_clips > 0:
        run_probe(args, arch, init_seed)
    if args.ship_to is not None:
        ship(encoder_dir, args.ship_to)
    logger.info("done: %d steps in %.0f s (+ %.0f s targets); encoder in %s", steps, train_seconds, prep_seconds, encoder_dir)
    return 0


SHIPPED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def ship(encoder_dir: Path, dest: Path) -> None:
    """Copy an encoder dir's HF files into ``dest`` and rewrite ``dest``/../SHA256SUMS (sha256sum format)."""
    import hashlib

    missing = [name for name in SHIPPED_FILES if not (encoder_dir / name).is_file()]
    if missing:
        raise SystemExit(f"{encoder_dir} lacks {', '.join(missing)}: train first (without --ship-only)")
    dest.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED_FILES:
        shutil.copyfile(encoder_dir / name, dest / name)
    root = dest.parent
    lines = []
    for path in sorted(root.glob("*/*")):
        if path.name in SHIPPED_FILES:
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(root)}\n")
    write_text_atomically(root / "SHA256SUMS", "".join(lines))
    logger.info("shipped %s -> %s; %s updated", encoder_dir, dest, root / "SHA256SUMS")


def run_probe(args, arch: dict, init_seed: int) -> int:
    """Probe OUT/encoder against the same architecture at its random init; write OUT/probe.json."""
    from upstream_merged.models.hubert import load_hubert_family

    domain = "speech" if args.objective == "hubert" else "music"
    _, _, rows = read_corpus(args.corpus, domain)
    trained = load_hubert_family(args.out / "encoder").model
    models = {"pretrained": trained, "random_init": build_model(arch, init_seed)}
    start = time.time()
    result = probe(models, args.corpus, rows, domain, NORMALIZE[args.objective], args.seed, args.probe_clips)
    logger.info("linear probe (%.0f s): %s", time.time() - start, json.dumps(result))
    (args.out / "probe.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
