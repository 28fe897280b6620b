#!/usr/bin/env python3
"""Small-scale zero-shot MAM evidence with real structure, entirely on CPU (issue 12, item 5).

Stages (each cached under OUT; a rerun skips finished stages):

1. ``data``: espeak-ng LJ Speech-layout train / eval sets and a VCTK-layout eval set (tools/make_*.py).
2. ``ctc``:  the shipped small HuBERT (``small:hubert``, pretrained here) fine-tuned with CTC on the
   LJ-style train set (HubertForCTC, the ls960-ft character vocabulary) -> OUT/hubert_small_ctc.
3. ``mlm``:  a BERT of the target's size (width, depth, heads, FFN) pretrained with masked-LM on the
   license texts apt installs in /usr/share/common-licenses (real English prose; word-level vocabulary)
   -> OUT/bert_small_mlm. A randomly initialised BERT of the same size is the control source.
4. ``eval``: ``mam-eval`` (upstream_merged.mam.zero_shot) over λ x {MLM BERT, random BERT} x layer
   subsets x components on the eval sets -> OUT/zero_shot/zero_shot.{md,csv,png}.

    python tools/mam_small_evidence.py OUT [--ctc-steps 1500] [--mlm-steps 1500] [--train-utts 300]

Deterministic seeds; the numbers are whatever they are (tiny models, synthetic speech).
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
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


def stage_data(out: Path, train_utts: int, eval_utts: int) -> None:
    """LJ-style train/eval sets and a VCTK-style eval set."""
    import make_ljspeech
    import make_vctk

    if not (out / "lj_train").exists():
        make_ljspeech.build(out / "lj_train", utterances=train_utts, seed=101)
    if not (out / "lj_eval").exists():
        make_ljspeech.build(out / "lj_eval", utterances=eval_utts, seed=202)
    if not (out / "vctk_eval").exists():
        make_vctk.build(out / "vctk_eval", speakers=2, utterances=max(1, eval_utts // 2), seed=303)


def stage_ctc(out: Path, steps: int, encoder_source: str = "small:hubert", batch: int = 8, lr: float = 2e-3,
              seed: int = 0) -> Path:
    """CTC fine-tuning of small:hubert on the LJ-style train set; returns the HubertForCTC dir."""
    from transformers import HubertConfig, HubertForCTC

    from upstream_merged.mam.eval_data import load_audio, read_ljspeech
    from upstream_merged.mam.eval_metrics import normalise_transcript, vocabulary_charset
    from upstream_merged.models.hubert import load_hubert_family
    from upstream_merged.sources import resolve_source
    from upstream_merged.testing.tiny_task_models import CTC_CONFIG, LS960_FT_VOCAB, write_hubert_ctc_dir

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
    charset = vocabulary_charset(LS960_FT_VOCAB)
    items = read_ljspeech(out / "lj_train")
    wavs = [load_audio(i.path) for i in items]
    labels = [[LS960_FT_VOCAB["|" if c == " " else c] for c in normalise_transcript(i.reference, charset)] for i in items]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
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
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if step % 100 == 0 or step == 1:
            log.info("ctc step %d/%d loss %.3f (%.0f s)", step, steps, loss.item(), time.time() - started)
    write_hubert_ctc_dir(target, model.eval(), normalize=False)
    (target / "training.json").write_text(json.dumps({"encoder": encoder_source, "steps": steps, "batch": batch,
                                                      "lr": lr, "seed": seed,
                                                      "train_utterances": len(items),
                                                      "seconds": round(time.time() - started)}))
    return target


def corpus_sentences() -> List[List[str]]:
    """Lower-cased word sequences from the license texts (sentences of >= 4 words)."""
    text = " ".join(p.read_text(errors="ignore") for p in sorted(LICENSES.iterdir()) if p.is_file())
    sentences = re.split(r"(?<=[.;:!?])\s+", text)
    out = [re.findall(r"[a-z']+", s.lower()) for s in sentences]
    return [s for s in out if len(s) >= 4]


def target_dims(ctc: Path) -> dict:
    """BertConfig size keys equal to the CTC target's encoder (MAM needs equal width, heads and depth)."""
    config = json.loads((ctc / "config.json").read_text())
    return {k: config[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}


def stage_mlm(out: Path, steps: int, dims: dict, batch: int = 32, length: int = 32, vocab_size: int = 2000,
              seed: int = 0) -> Path:
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
    config = BertConfig(vocab_size=len(vocab), **dims, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = BertForMaskedLM(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
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
        if step % 100 == 0 or step == 1:
            log.info("mlm step %d/%d loss %.3f (%.0f s)", step, steps, loss.item(), time.time() - started)
    target.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    cfg.update(architectures=["BertForMaskedLM"], model_type="bert")
    (target / "config.json").write_text(json.dumps(cfg, indent=2))
    (target / "vocab.txt").write_text("\n".join(vocab) + "\n")
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if k != "cls.predictions.decoder.weight"}  # tied to the word embeddings (as HF saves it)
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    (target / "training.json").write_text(json.dumps({"steps": steps, "batch": batch, "length": length,
                                                      "final_loss": float(loss), "tokens": len(stream),
                                                      "seconds": round(time.time() - started)}))
    return target


def random_bert(out: Path, dims: dict, seed: int = 7) -> Path:
    """The control source: an untrained BERT of the same size (seeded)."""
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    target = out / "bert_small_random"
    if (target / "model.safetensors").is_file():
        return target
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=2000, **dims, max_position_embeddings=64))
    target.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    cfg.update(architectures=["BertModel"], model_type="bert")
    (target / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, str(target / "model.safetensors"))
    return target


def stage_eval(out: Path, ctc: Path, sources: List[Path], subsets: List[str], components: List[str]):
    """The zero-shot sweep on the eval sets."""
    from upstream_merged.mam.zero_shot import DatasetSpec, ZeroShotGrid, run_zero_shot

    grid = ZeroShotGrid(target=str(ctc), sources=[str(s) for s in sources],
                        layer_subsets=subsets, components=components,
                        datasets=[DatasetSpec(name="ljspeech_synth", kind="ljspeech", root=str(out / "lj_eval")),
                                  DatasetSpec(name="vctk_synth_mic1", kind="vctk", root=str(out / "vctk_eval"))])
    return run_zero_shot(grid, out / "zero_shot", progress=False)


def main(argv=None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-utts", type=int, default=300)
    parser.add_argument("--eval-utts", type=int, default=40)
    parser.add_argument("--ctc-steps", type=int, default=1500)
    parser.add_argument("--mlm-steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--encoder", default="small:hubert", help="HuBERT-family encoder fine-tuned with CTC")
    parser.add_argument("--subsets", default="all+lower+upper", help="layer subsets joined by '+'")
    parser.add_argument("--components", default="q+k+v+qkv", help="components joined by '+'")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    random.seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    stage_data(args.out, args.train_utts, args.eval_utts)
    ctc = stage_ctc(args.out, args.ctc_steps, args.encoder)
    dims = target_dims(ctc)
    mlm = stage_mlm(args.out, args.mlm_steps, dims)
    control = random_bert(args.out, dims)
    result = stage_eval(args.out, ctc, [mlm, control], args.subsets.split("+"), args.components.split("+"))
    for path in result.files:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
