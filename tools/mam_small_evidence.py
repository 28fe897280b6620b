#!/usr/bin/env python3
"""Small-scale zero-shot MAM evidence with real structure, entirely on CPU (issue 12, item 5).

Stages (each cached under OUT; a rerun skips finished stages):

1. ``data``: espeak-ng LJ Speech-layout train / eval sets (the LJ reader's voice), a VCTK-layout
   multi-voice train set (speakers p227 on; other espeak voices) and a VCTK-layout eval set of two
   voices the training never hears (p225, p226, mic1) (tools/make_*.py). Training sentences whose
   transcript also occurs in an eval set are dropped.
2. ``ctc``:  the shipped small HuBERT (``small:hubert``, pretrained here) fine-tuned with CTC on both
   train sets (HubertForCTC, the ls960-ft character vocabulary; CNN feature encoder frozen as in
   HuBERT's fine-tuning; Adam, linear warm-up then linear decay) -> OUT/hubert_small_ctc.
3. ``mlm``:  a BERT of the target's size (width, depth, heads, FFN) pretrained with masked-LM on real
   English prose: the license texts apt installs in /usr/share/common-licenses plus the docstrings of
   the Python standard library (word-level vocabulary) -> OUT/bert_small_mlm. A randomly initialised
   BERT of the same size is the control source.
4. ``eval``: ``mam-eval`` (upstream_merged.mam.zero_shot) over λ x {MLM BERT, random BERT} x layer
   subsets x components on the eval sets -> OUT/zero_shot/zero_shot.{md,csv,png}.

    python tools/mam_small_evidence.py OUT [--ctc-steps 1500] [--mlm-steps 800] [--train-utts 400]

Deterministic seeds; the numbers are whatever they are (small models, synthetic speech). Each stage's
settings, loss curve (mean per 100 steps) and seconds go to its training.json; OUT/run.json records
the command line and the wall time of every stage.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

log = logging.getLogger("mam_small_evidence")
LICENSES = Path("/usr/share/common-licenses")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
EVAL_VCTK_SPEAKERS = ["p225", "p226"]  # make_vctk's first two voices; the train set starts at p227
EVAL_SETS = ("lj", "vctk")
LOSS_WINDOW = 100  # steps per point of the logged loss curve


def stage_data(out: Path, train_utts: int, eval_utts: int, train_voices: int = 8, per_voice: int = 50,
               vctk_eval_utts: int = 60) -> None:
    """LJ-style train/eval sets, a multi-voice VCTK-style train set and a VCTK-style eval set (unseen voices)."""
    import make_ljspeech
    import make_vctk

    builds = [("lj_train", lambda d: make_ljspeech.build(d, utterances=train_utts, seed=101, workers=1)),
              ("lj_eval", lambda d: make_ljspeech.build(d, utterances=eval_utts, seed=202, workers=1)),
              ("vctk_eval", lambda d: make_vctk.build(d, speakers=len(EVAL_VCTK_SPEAKERS), utterances=vctk_eval_utts,
                                                      seed=303, workers=1))]
    if train_voices:
        builds.append(("vctk_train", lambda d: make_vctk.build(d, speakers=len(EVAL_VCTK_SPEAKERS) + train_voices,
                                                               utterances=per_voice, seed=404, workers=1)))
    for name, build in builds:
        if not (out / name).exists():
            started = time.time()
            build(out / name)
            log.info("data %s written (%.0f s)", name, time.time() - started)


def training_items(out: Path):
    """Train items of both train sets, minus any sentence whose transcript occurs in an eval set."""
    from upstream_merged.mam.zero_shot.data import read_ljspeech, read_vctk

    items = read_ljspeech(out / "lj_train")
    if (out / "vctk_train").exists():
        known = sorted(p.name for p in (out / "vctk_train" / "txt").iterdir())
        items += read_vctk(out / "vctk_train", "mic1", [s for s in known if s not in EVAL_VCTK_SPEAKERS])
    held_out = {i.reference.lower() for i in read_ljspeech(out / "lj_eval") + read_vctk(out / "vctk_eval", "mic1")}
    kept = [i for i in items if i.reference.lower() not in held_out]
    log.info("ctc train set: %d utterances (%d dropped: sentence also in an eval set)", len(kept), len(items) - len(kept))
    return kept


def linear_schedule(optimizer, steps: int, warmup_fraction: float = 0.1):
    """Linear warm-up over the first ``warmup_fraction`` of ``steps``, then linear decay to zero."""
    warmup = max(1, int(steps * warmup_fraction))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))))


class LossCurve:
    """Mean loss per window of ``LOSS_WINDOW`` steps, logged as it fills."""

    def __init__(self, name: str, steps: int):
        self.name, self.steps, self.points, self.window, self.started = name, steps, [], [], time.time()

    def add(self, step: int, loss: float) -> None:
        """Record one step's loss; log the window mean when a window completes (and step 1)."""
        self.window.append(loss)
        if step == 1:
            log.info("%s step 1/%d loss %.3f", self.name, self.steps, loss)
        if len(self.window) == LOSS_WINDOW or step == self.steps:
            self.points.append([step, round(sum(self.window) / len(self.window), 4)])
            self.window = []
            log.info("%s step %d/%d mean loss %.3f (%.0f s)", self.name, step, self.steps, self.points[-1][1],
                     time.time() - self.started)


def stage_ctc(out: Path, steps: int, encoder_source: str = "small:hubert", batch: int = 8, lr: float = 1e-3,
              seed: int = 0) -> Path:
    """CTC fine-tuning of small:hubert (CNN frozen) on the train sets; returns the HubertForCTC dir."""
    from transformers import HubertConfig, HubertForCTC

    from upstream_merged.mam.zero_shot.data import load_audio
    from upstream_merged.mam.zero_shot.metrics import normalise_transcript, vocabulary_charset
    from upstream_merged.models.hubert import load_hubert_family
    from upstream_merged.sources import resolve_source
    from upstream_merged.tiny.task_models import CTC_CONFIG, LS960_FT_VOCAB, write_hubert_ctc_dir

    target = out / "hubert_small_ctc"
    if (target / "model.safetensors").is_file():
        return target
    encoder = load_hubert_family(resolve_source(encoder_source))
    config = encoder.model.config.to_dict()
    config.update(CTC_CONFIG, layerdrop=0.0, apply_spec_augment=False, final_dropout=0.0)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = HubertForCTC(HubertConfig(**config))
    model.hubert.load_state_dict(encoder.model.state_dict())
    model.freeze_feature_encoder()
    charset = vocabulary_charset(LS960_FT_VOCAB)
    items = training_items(out)
    wavs = [load_audio(i.path) for i in items]
    labels = [[LS960_FT_VOCAB["|" if c == " " else c] for c in normalise_transcript(i.reference, charset)] for i in items]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=lr)
    schedule = linear_schedule(optimizer, steps)
    curve = LossCurve("ctc", steps)
    model.train()
    started = time.time()
    for step in range(1, steps + 1):
        index = torch.randint(len(wavs), (batch,), generator=generator).tolist()
        longest = max(wavs[i].numel() for i in index)
        x = torch.zeros(batch, longest)
        mask = torch.zeros(batch, longest, dtype=torch.long)
        for row, i in enumerate(index):
            x[row, : wavs[i].numel()] = wavs[i]
            mask[row, : wavs[i].numel()] = 1
        y = torch.full((batch, max(len(labels[i]) for i in index)), -100, dtype=torch.long)
        for row, i in enumerate(index):
            y[row, : len(labels[i])] = torch.tensor(labels[i])
        loss = model(x, attention_mask=mask, labels=y).loss / batch
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 5.0)
        optimizer.step()
        schedule.step()
        curve.add(step, loss.item())
    write_hubert_ctc_dir(target, model.eval(), normalize=False)
    (target / "training.json").write_text(json.dumps({
        "encoder": encoder_source, "steps": steps, "batch": batch, "lr": lr, "schedule": "linear warm-up 10 %, linear decay",
        "frozen": "feature encoder (CNN)", "seed": seed, "train_utterances": len(items),
        "train_voices": len({i.uid.split("_")[0] if i.uid.startswith("p") else "LJ" for i in items}),
        "loss_per_utterance_curve": curve.points, "seconds": round(time.time() - started)}))
    return target


def stdlib_docstrings() -> List[str]:
    """Docstrings of the Python standard library's modules, classes and functions (tests excluded), in path order."""
    import ast

    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3"}
    texts = []
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    texts.append(doc)
    return texts


def corpus_sentences() -> List[List[str]]:
    """Lower-cased word sequences (sentences of >= 4 words) from the license texts and the stdlib docstrings."""
    texts = [p.read_text(errors="ignore") for p in sorted(LICENSES.iterdir()) if p.is_file()] + stdlib_docstrings()
    sentences = re.split(r"(?<=[.;:!?])\s+", " ".join(texts))
    out = [re.findall(r"[a-z']+", s.lower()) for s in sentences]
    return [s for s in out if len(s) >= 4]


def target_dims(ctc: Path) -> dict:
    """BertConfig size keys equal to the CTC target's encoder (MAM needs equal width, heads and depth)."""
    config = json.loads((ctc / "config.json").read_text())
    return {k: config[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}


def stage_mlm(out: Path, steps: int, dims: dict, batch: int = 32, length: int = 64, vocab_size: int = 5000,
              lr: float = 1e-3, seed: int = 0) -> Path:
    """Masked-LM pretraining of a BERT of the target's size on the license texts."""
    from safetensors.torch import save_file
    from transformers import BertConfig, BertForMaskedLM

    target = out / "bert_small_mlm"
    if (target / "model.safetensors").is_file():
        return target
    sentences = corpus_sentences()
    counts = Counter(w for s in sentences for w in s)
    vocab = SPECIALS + [w for w, _ in counts.most_common(vocab_size - len(SPECIALS))]
    ids = {w: i for i, w in enumerate(vocab)}
    stream = [ids.get(w, 1) for s in sentences for w in s + ["[SEP]"]]
    log.info("mlm corpus: %d sentences, %d tokens, vocab %d", len(sentences), len(stream), len(vocab))
    config = BertConfig(vocab_size=len(vocab), **dims, max_position_embeddings=max(64, length),
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = BertForMaskedLM(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = linear_schedule(optimizer, steps)
    curve = LossCurve("mlm", steps)
    model.train()
    started = time.time()
    for step in range(1, steps + 1):
        starts = torch.randint(len(stream) - length, (batch,), generator=generator)
        x = torch.stack([torch.tensor(stream[s: s + length]) for s in starts.tolist()])
        masked = torch.rand(x.shape, generator=generator) < 0.15
        labels = torch.where(masked, x, torch.full_like(x, -100))
        inputs = torch.where(masked, torch.full_like(x, ids["[MASK]"]), x)
        loss = model(input_ids=inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        curve.add(step, loss.item())
    target.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    cfg.update(architectures=["BertForMaskedLM"], model_type="bert")
    (target / "config.json").write_text(json.dumps(cfg, indent=2))
    (target / "vocab.txt").write_text("\n".join(vocab) + "\n")
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if k != "cls.predictions.decoder.weight"}  # tied to the word embeddings (as HF saves it)
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    (target / "training.json").write_text(json.dumps({
        "steps": steps, "batch": batch, "length": length, "lr": lr, "schedule": "linear warm-up 10 %, linear decay",
        "seed": seed, "vocab": len(vocab), "tokens": len(stream), "corpus": "common-licenses + Python stdlib docstrings",
        "dims": dims, "final_loss": loss.item(), "loss_curve": curve.points, "seconds": round(time.time() - started)}))
    return target


def random_bert(out: Path, dims: dict, seed: int = 7) -> Path:
    """The control source: an untrained BERT of the same size (seeded)."""
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    target = out / "bert_small_random"
    if (target / "model.safetensors").is_file():
        return target
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=5000, **dims, max_position_embeddings=64))
    target.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    cfg.update(architectures=["BertModel"], model_type="bert")
    (target / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, str(target / "model.safetensors"))
    return target


def stage_eval(out: Path, ctc: Path, sources: List[Path], subsets: List[str], components: List[str],
               lambdas: List[float], eval_sets: List[str] = EVAL_SETS):
    """The zero-shot sweep on the chosen eval sets (lj, vctk)."""
    from upstream_merged.mam.zero_shot.run import DatasetSpec, ZeroShotGrid, run_zero_shot

    specs = {"lj": DatasetSpec(name="ljspeech_synth", kind="ljspeech", root=str(out / "lj_eval")),
             "vctk": DatasetSpec(name="vctk_synth_mic1", kind="vctk", root=str(out / "vctk_eval"))}
    unknown = sorted(set(eval_sets) - set(specs))
    if unknown or not eval_sets:
        raise ValueError(f"eval sets {unknown or eval_sets} are not a non-empty choice among {sorted(specs)}")
    grid = ZeroShotGrid(target=str(ctc), sources=[str(s) for s in sources], lambdas=[0.0] + lambdas,
                        layer_subsets=subsets, components=components, datasets=[specs[name] for name in eval_sets])
    return run_zero_shot(grid, out / "zero_shot", progress=True)


def main(argv=None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-utts", type=int, default=400, help="LJ-style (reader's voice) train utterances")
    parser.add_argument("--train-voices", type=int, default=8, help="other espeak voices in the VCTK-style train set")
    parser.add_argument("--per-voice", type=int, default=50, help="train utterances per other voice")
    parser.add_argument("--eval-utts", type=int, default=200, help="LJ-style eval utterances")
    parser.add_argument("--vctk-eval-utts", type=int, default=60, help="VCTK-style eval utterances per unseen voice")
    parser.add_argument("--ctc-steps", type=int, default=1500)
    parser.add_argument("--ctc-lr", type=float, default=1e-3)
    parser.add_argument("--mlm-steps", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0, help="seed of the CTC fine-tuning and the MLM")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--encoder", default="small:hubert", help="HuBERT-family encoder fine-tuned with CTC")
    parser.add_argument("--subsets", default="all+lower+upper", help="layer subsets joined by '+'")
    parser.add_argument("--components", default="q+k+v+qkv", help="components joined by '+'")
    parser.add_argument("--eval-sets", default="lj+vctk", help="eval sets joined by '+' (lj, vctk)")
    parser.add_argument("--lambdas", default="0.01+0.025+0.05+0.1+0.2", help="λ > 0 joined by '+' (λ = 0 always runs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    random.seed(0)
    lambdas = [float(v) for v in args.lambdas.split("+")]
    if any(not 0 < v <= 1 for v in lambdas):
        parser.error(f"--lambdas {args.lambdas!r}: each λ must be in (0, 1]")
    args.out.mkdir(parents=True, exist_ok=True)
    stage_seconds = {}

    def timed(name, run):
        started = time.time()
        value = run()
        stage_seconds[name] = round(time.time() - started)
        log.info("stage %s done (%d s)", name, stage_seconds[name])
        return value

    timed("data", lambda: stage_data(args.out, args.train_utts, args.eval_utts, args.train_voices, args.per_voice,
                                     args.vctk_eval_utts))
    ctc = timed("ctc", lambda: stage_ctc(args.out, args.ctc_steps, args.encoder, lr=args.ctc_lr, seed=args.seed))
    dims = target_dims(ctc)
    mlm = timed("mlm", lambda: stage_mlm(args.out, args.mlm_steps, dims, seed=args.seed))
    control = random_bert(args.out, dims)
    result = timed("eval", lambda: stage_eval(args.out, ctc, [mlm, control], args.subsets.split("+"),
                                              args.components.split("+"), lambdas, args.eval_sets.split("+")))
    (args.out / "run.json").write_text(json.dumps({"argv": sys.argv if argv is None else argv,
                                                   "stage_seconds": stage_seconds}, indent=2))
    for path in result.files:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
