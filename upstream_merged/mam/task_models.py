"""Task-fine-tuned MAM targets loaded strictly WITH their heads, and written back in the same format.

* ``HubertForCTC`` directories as ``facebook/hubert-large-ls960-ft`` ships them: config.json
  (``architectures: [HubertForCTC]``), weights (``hubert.*`` + ``lm_head.*``), and the
  ``Wav2Vec2Processor`` files (preprocessor_config.json, vocab.json, tokenizer_config.json,
  special_tokens_map.json). Every checkpoint key must fill the model, the vocabulary must match the
  head's rows and the CTC blank (``pad_token_id``) must be the tokenizer's pad token.
* Fine-tuned BEATs ``.pt`` files (cfg ``finetuned_model: true``, ``predictor_class`` classes,
  ``predictor.weight/bias`` and an optional ``label_dict``) as :class:`BEATsClassifier`, whose
  forward is the official one: mean over valid tokens of ``predictor(last hidden state)``.

MAM merges only attention projections of the *encoder* (``AttentionModel.model`` is the encoder
sub-module); heads are never touched. :func:`write_task_target` writes the merged result as a dir
``HubertForCTC.from_pretrained`` / :func:`load_beats_classifier` read back.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from upstream_merged.models.checkpoint import CheckpointError, load_strict, read_config, read_weights, rename_checkpoint_keys

logger = logging.getLogger(__name__)

CTC_ARCH = "HubertForCTC"
# The files of a Wav2Vec2Processor directory besides config.json and the weights (copied to merged dirs).
PROCESSOR_FILES = ("preprocessor_config.json", "vocab.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")
CTC_WEIGHTS = "model.safetensors"
BEATS_CLASSIFIER_FILE = "model.pt"


def is_ctc_dir(path: Path) -> bool:
    """True when ``path`` is an HF dir whose config.json names ``HubertForCTC``."""
    path = Path(path)
    if not (path.is_dir() and (path / "config.json").is_file()):
        return False
    return CTC_ARCH in (read_config(path).get("architectures") or [])


# ---------------------------------------------------------------------------------------------------
# HubertForCTC
# ---------------------------------------------------------------------------------------------------

@dataclass
class CTCModel:
    """A HubertForCTC with its processor (feature extractor + CTC tokenizer)."""

    model: nn.Module  # transformers HubertForCTC, eval mode
    processor: object  # transformers Wav2Vec2Processor
    path: Path

    @property
    def encoder(self) -> nn.Module:
        """The HubertModel inside (what MAM merges into)."""
        return self.model.hubert

    @property
    def vocabulary(self) -> List[str]:
        """Token strings in id order."""
        vocab = self.processor.tokenizer.get_vocab()
        return [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]

    @torch.no_grad()
    def transcribe(self, wav: torch.Tensor) -> str:
        """Greedy CTC decoding of one 16 kHz mono waveform (1-D) with the tokenizer's collapse rules."""
        features = self.processor.feature_extractor(wav.numpy(), sampling_rate=16000, return_tensors="pt")
        logits = self.model(features.input_values).logits  # (1, frames, vocab)
        ids = logits.argmax(dim=-1)[0]
        return self.processor.tokenizer.decode(ids.tolist())


def _ctc_config(directory: Path):
    from upstream_merged.models.hubert import hubert_config_from_dict

    config = read_config(directory)
    hf_config, sample_rate, kind = hubert_config_from_dict(config, str(directory))
    if kind != "hubert" or sample_rate != 16000:
        raise CheckpointError(f"{directory}: a {CTC_ARCH} target must be a 16 kHz HuBERT (got {kind} at {sample_rate} Hz)")
    if not isinstance(config.get("vocab_size"), int):
        raise CheckpointError(f"{directory}/config.json: {CTC_ARCH} needs an integer vocab_size (the CTC head's rows)")
    return hf_config


def load_processor(directory: Path):
    """The directory's Wav2Vec2Processor; missing tokenizer files raise an error naming them."""
    from transformers import Wav2Vec2Processor

    directory = Path(directory)
    missing = [name for name in PROCESSOR_FILES[:3] if not (directory / name).is_file()]
    if missing:
        raise CheckpointError(f"{directory}: a {CTC_ARCH} target needs its processor files; missing {missing} "
                              f"(copy them from the checkpoint's repository, e.g. facebook/hubert-large-ls960-ft)")
    return Wav2Vec2Processor.from_pretrained(str(directory), local_files_only=True)


def check_vocabulary(processor, vocab_size: int, pad_token_id: Optional[int], source: str) -> None:
    """The tokenizer must have one token per head row and its pad token must be the CTC blank."""
    tokenizer = processor.tokenizer
    if len(tokenizer) != vocab_size:
        raise CheckpointError(f"{source}: tokenizer has {len(tokenizer)} tokens but config vocab_size={vocab_size} "
                              f"(the lm_head rows); vocab.json does not belong to this checkpoint")
    if pad_token_id is not None and tokenizer.pad_token_id != pad_token_id:
        raise CheckpointError(f"{source}: config pad_token_id={pad_token_id} (the CTC blank) but the tokenizer's pad "
                              f"token {tokenizer.pad_token!r} has id {tokenizer.pad_token_id}")


def load_hubert_ctc(directory: str | Path) -> CTCModel:
    """Load a HubertForCTC directory strictly (encoder + lm_head + processor), in eval mode."""
    from transformers import HubertForCTC
    from transformers.modeling_utils import no_init_weights

    directory = Path(directory)
    hf_config = _ctc_config(directory)
    with no_init_weights():  # every tensor is overwritten below, strictly
        model = HubertForCTC(hf_config)
    state = rename_checkpoint_keys(read_weights(directory), model.state_dict())  # weight_g/v <-> parametrizations
    head = [k for k in state if k.startswith("lm_head.")]
    if not head:
        raise CheckpointError(f"{directory}: config names {CTC_ARCH} but the weights hold no lm_head.* "
                              f"(a bare HubertModel checkpoint: set architectures to HubertModel)")
    load_strict(model, state, str(directory))
    processor = load_processor(directory)
    check_vocabulary(processor, hf_config.vocab_size, hf_config.pad_token_id, str(directory))
    return CTCModel(model.eval(), processor, directory)


def write_ctc_dir(source_dir: Path, state: Dict[str, torch.Tensor], out_dir: Path) -> Path:
    """Write a HubertForCTC state dict into ``out_dir`` with ``source_dir``'s config.json and processor files."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("config.json",) + PROCESSOR_FILES:
        if (Path(source_dir) / name).is_file():
            shutil.copyfile(Path(source_dir) / name, out_dir / name)
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(out_dir / CTC_WEIGHTS),
              metadata={"format": "pt"})
    return out_dir


# ---------------------------------------------------------------------------------------------------
# Fine-tuned BEATs (classifier)
# ---------------------------------------------------------------------------------------------------

class BEATsClassifier(nn.Module):
    """A fine-tuned BEATs: encoder + ``predictor`` (official ``extract_features`` with a predictor)."""

    def __init__(self, encoder: nn.Module, labels: Sequence[str]):
        super().__init__()
        config = encoder.config
        self.beats = encoder
        self.predictor_dropout = nn.Dropout(config.predictor_dropout)
        self.predictor = nn.Linear(config.encoder_embed_dim, config.predictor_class)
        self.labels = list(labels)

    def forward(self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Class logits (B, classes) of 16 kHz waveforms (B, samples); sigmoid gives the official probabilities."""
        from upstream_merged.models.beats import beats_fbank

        lengths = lengths if lengths is not None else torch.full((wavs.shape[0],), wavs.shape[1], dtype=torch.long)
        fbanks = [beats_fbank(w[: int(n)]) for w, n in zip(wavs, lengths)]
        frames = torch.tensor([f.shape[0] for f in fbanks], dtype=torch.long)
        fbank = nn.utils.rnn.pad_sequence(fbanks, batch_first=True)
        out = self.beats(fbank, frames)
        logits = self.predictor(self.predictor_dropout(out.last_hidden_state))  # (B, tokens, classes)
        if out.padding_mask is not None and bool(out.padding_mask.any()):
            valid = (~out.padding_mask).unsqueeze(-1).to(logits.dtype)
            return (logits * valid).sum(dim=1) / valid.sum(dim=1)
        return logits.mean(dim=1)

    @torch.no_grad()
    def predict(self, wav: torch.Tensor) -> int:
        """Top-1 class index of one 16 kHz waveform (1-D)."""
        return int(self(wav.unsqueeze(0)).argmax(dim=-1)[0])


def _labels(blob_labels, classes: int, source: str) -> List[str]:
    if blob_labels is None:
        return [str(i) for i in range(classes)]
    if not isinstance(blob_labels, dict) or sorted(int(k) for k in blob_labels) != list(range(classes)):
        raise CheckpointError(f"{source}: label_dict must map every class index 0..{classes - 1} to a label")
    return [str(blob_labels[k]) for k in sorted(blob_labels, key=int)]


def load_beats_classifier(path: str | Path, allow_pickle: bool = False) -> BEATsClassifier:
    """A fine-tuned BEATs .pt loaded strictly with its predictor head (and label_dict), in eval mode."""
    from upstream_merged.models.beats import (BEATs, BEATsConfig, _plain_cfg, _pos_conv_keys, _shared_bias_keys,
                                              find_beats_file)
    from upstream_merged.models.checkpoint import torch_load_weights_only

    file = find_beats_file(Path(path))
    blob = torch_load_weights_only(file, allow_pickle=allow_pickle)
    if not isinstance(blob, dict) or "cfg" not in blob or not isinstance(blob.get("model"), dict):
        raise CheckpointError(f"{file}: not an official BEATs checkpoint (expected a dict with 'cfg' and 'model')")
    cfg, state = _plain_cfg(blob["cfg"], file), dict(blob["model"])
    config = BEATsConfig.from_dict(cfg, source=str(file))
    if not config.finetuned_model:
        raise CheckpointError(f"{file}: cfg finetuned_model is false: not a fine-tuned BEATs classifier (no predictor)")
    labels = _labels(blob.get("label_dict"), config.predictor_class, str(file))
    classifier = BEATsClassifier(BEATs(config), labels)
    state = _shared_bias_keys(_pos_conv_keys(state, str(file)), config, str(file))
    full = {("beats." + k if not k.startswith("predictor.") else k): v for k, v in state.items()}
    load_strict(classifier, full, str(file))
    return classifier.eval()


def classifier_blob(classifier: BEATsClassifier) -> dict:
    """The official-format dict (cfg, model with predictor, label_dict) of a classifier."""
    state = {k[len("beats."):] if k.startswith("beats.") else k: v.detach().clone()
             for k, v in classifier.state_dict().items()}
    return {"cfg": classifier.beats.config.to_dict(), "model": state,
            "label_dict": {i: label for i, label in enumerate(classifier.labels)}}


# ---------------------------------------------------------------------------------------------------
# MAM glue
# ---------------------------------------------------------------------------------------------------

def write_task_target(task_model: nn.Module, path: Path, encoder_state: Dict[str, torch.Tensor], out_dir: Path) -> None:
    """Write a task model whose encoder takes ``encoder_state`` (the merge), its head unchanged, into ``out_dir``."""
    if isinstance(task_model, BEATsClassifier):
        blob = classifier_blob(task_model)
        blob["model"].update({k: v.detach().clone() for k, v in encoder_state.items()})
        torch.save(blob, Path(out_dir) / BEATS_CLASSIFIER_FILE)
        return
    from transformers import HubertForCTC

    if not isinstance(task_model, HubertForCTC):
        raise TypeError(f"no writer for task model {type(task_model).__name__}")
    state = dict(task_model.state_dict())
    state.update({f"hubert.{k}": v for k, v in encoder_state.items()})
    write_ctc_dir(path, state, out_dir)


def head_kind(task_model: Optional[nn.Module]) -> str:
    """'ctc', 'classifier' or '' (a bare encoder) for a report."""
    if task_model is None:
        return ""
    return "classifier" if isinstance(task_model, BEATsClassifier) else "ctc"


def load_task_model(path: Path, allow_pickle: bool = False):
    """A CTCModel or BEATsClassifier for ``path`` (HubertForCTC dir or fine-tuned BEATs .pt); None otherwise."""
    path = Path(path)
    if is_ctc_dir(path):
        return load_hubert_ctc(path)
    if path.suffix == ".pt" or (path.is_dir() and any(path.glob("*.pt"))):
        from upstream_merged.models.beats import find_beats_file, read_beats_checkpoint

        cfg, _ = read_beats_checkpoint(find_beats_file(path), allow_pickle=allow_pickle)
        if cfg.get("finetuned_model"):
            return load_beats_classifier(path, allow_pickle=allow_pickle)
    return None
