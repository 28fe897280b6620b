"""Tiny task-fine-tuned checkpoints in their publishers' formats: a HubertForCTC dir and a fine-tuned BEATs.

* ``tiny:hubert_ctc`` — laid out as ``facebook/hubert-large-ls960-ft``: config.json
  (``architectures: [HubertForCTC]``, vocab_size 32, pad_token_id 0), model.safetensors with
  ``hubert.*`` + ``lm_head.*`` keys (old weight_g/weight_v names, as the published conversion),
  and the Wav2Vec2Processor files (preprocessor_config.json, vocab.json with the ls960-ft character
  vocabulary, tokenizer_config.json, special_tokens_map.json).
* ``tiny:beats_esc50`` — an official-format fine-tuned BEATs .pt (cfg ``finetuned_model: true``,
  ``predictor`` head, ``label_dict``) whose classes are the synthetic ESC-50 categories of
  ``upstream_merged.synth.events`` (what tools/make_esc50.py writes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Sequence

import torch
from safetensors.torch import save_file
from transformers import HubertConfig, HubertForCTC

from upstream_merged.core.rng import isolated_rng
from upstream_merged.tiny import randomize_, tiny_writer
from upstream_merged.tiny.hubert import PREPROCESSOR, _with_weight_norm_names, tiny_hubert_config

# facebook/hubert-large-ls960-ft's vocab.json: CTC blank <pad> = 0, '|' = word delimiter, upper-case letters, "'".
LS960_FT_VOCAB: Dict[str, int] = {token: i for i, token in enumerate(
    ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C",
     "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"])}
TOKENIZER_CONFIG = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                    "do_lower_case": False, "word_delimiter_token": "|", "tokenizer_class": "Wav2Vec2CTCTokenizer"}
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
CTC_CONFIG = dict(vocab_size=len(LS960_FT_VOCAB), pad_token_id=0, bos_token_id=1, eos_token_id=2,
                  ctc_loss_reduction="sum", ctc_zero_infinity=False, final_dropout=0.1)


def build_tiny_hubert_ctc(seed: int = 0, **overrides) -> HubertForCTC:
    """A seeded, fully randomised tiny HubertForCTC (32-token character head) in eval mode."""
    config = HubertConfig(**tiny_hubert_config(**CTC_CONFIG, **overrides), layerdrop=0.0, apply_spec_augment=False)
    with isolated_rng(seed):
        return randomize_(HubertForCTC(config), seed).eval()


def write_hubert_ctc_dir(directory: Path, model: HubertForCTC, vocab: Dict[str, int] = LS960_FT_VOCAB,
                         normalize: bool = True) -> Path:
    """Save ``model`` as hubert-large-ls960-ft is published: config, safetensors, processor and tokenizer files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.update(architectures=["HubertForCTC"], model_type="hubert")
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    preprocessor = dict(PREPROCESSOR, sampling_rate=16000, do_normalize=normalize)
    (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    (directory / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS, indent=2))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(_with_weight_norm_names(state, "weight_g"), str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


def write_beats_classifier(path: Path, labels: Sequence[str], seed: int = 0, **overrides) -> Path:
    """A tiny fine-tuned BEATs .pt (official format) with a ``len(labels)``-class predictor and label_dict."""
    from upstream_merged.models.checkpoint import torch_load_weights_only
    from upstream_merged.tiny.beats import tiny_beats_config, write_beats_checkpoint

    cfg = tiny_beats_config(finetuned_model=True, predictor_class=len(labels), **overrides)
    path = write_beats_checkpoint(Path(path), cfg, seed)
    blob = torch_load_weights_only(path)
    blob["label_dict"] = {i: str(label) for i, label in enumerate(labels)}
    torch.save(blob, path)
    return path


@tiny_writer("hubert_ctc")
def _tiny_hubert_ctc(directory: Path, seed: int) -> None:
    write_hubert_ctc_dir(directory, build_tiny_hubert_ctc(seed))


@tiny_writer("beats_esc50")
def _tiny_beats_esc50(directory: Path, seed: int) -> None:
    from upstream_merged.synth.events import CATEGORIES

    write_beats_classifier(Path(directory) / "BEATs_tiny_esc50.pt", CATEGORIES, seed)
