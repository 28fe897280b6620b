"""Load a MAM target or source (HuBERT/MERT dir, BEATs .pt, BERT or ViT dir), detecting its architecture."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from upstream_merged.mam.core import Dims
from upstream_merged.mam.layouts import LAYOUTS, AttentionLayout
from upstream_merged.models.checkpoint import CheckpointError, read_config

logger = logging.getLogger(__name__)


@dataclass
class AttentionModel:
    """A loaded encoder with its architecture, size and whatever is needed to write it back."""

    arch: str
    model: torch.nn.Module
    config: Dict[str, Any]  # HF config.json, or the BEATs checkpoint's 'cfg'
    path: Path
    sample_rate: int = 16000
    normalize: bool = False
    notes: List[str] = field(default_factory=list)
    task_model: Optional[torch.nn.Module] = None  # HubertForCTC / BEATsClassifier holding ``model`` and its head

    @property
    def layout(self) -> AttentionLayout:
        """Where this architecture keeps its attention projections."""
        return LAYOUTS[self.arch]

    @property
    def dims(self) -> Dims:
        """Width, heads and layers read from the config with the layout's key names."""
        layout = self.layout
        try:
            return Dims(int(self.config[layout.width_key]), int(self.config[layout.heads_key]),
                        int(self.config[layout.layers_key]))
        except KeyError as err:
            raise CheckpointError(f"{self.path}: config has no {err.args[0]!r} ({self.arch})") from None


def detect_arch(path: Path) -> str:
    """'hubert', 'beats', 'bert' or 'vit' for a checkpoint path (config.json model_type, or a BEATs .pt)."""
    path = Path(path)
    if path.is_file() or not (path / "config.json").is_file():
        if path.suffix == ".pt" or (path.is_dir() and any(path.glob("*.pt"))):
            return "beats"
        raise CheckpointError(f"{path}: neither a Hugging Face model dir (config.json) nor a BEATs .pt checkpoint")
    config = read_config(path)
    model_type = config.get("model_type")
    if model_type in ("hubert", "mert_model") or "MERTModel" in (config.get("architectures") or []):
        return "hubert"
    if model_type in ("bert", "vit"):
        return model_type
    raise CheckpointError(f"{path}/config.json: model_type {model_type!r} is not one MAM supports "
                          f"(hubert, MERT, bert, vit; BEATs as an official .pt)")


def load_attention_model(path: Path, allow_pickle: bool = False) -> AttentionModel:
    """Load ``path`` strictly as the architecture :func:`detect_arch` finds, in eval mode.

    ``allow_pickle`` (a recipe's ``allow_pickle: true``) lets a BEATs .pt that needs full unpickling
    load; it is an error for any other architecture, whose weights are always read weights-only.
    """
    path = Path(path)
    arch = detect_arch(path)
    if allow_pickle and arch != "beats":
        raise CheckpointError(f"{path}: allow_pickle applies only to BEATs .pt checkpoints, and this is a {arch} "
                              f"model (always read weights-only); remove allow_pickle from the recipe")
    if arch == "hubert":
        from upstream_merged.mam.task_models import is_ctc_dir, load_hubert_ctc

        if is_ctc_dir(path):  # a task model: loaded strictly WITH its CTC head; MAM merges its encoder only
            ctc = load_hubert_ctc(path)
            return AttentionModel(arch, ctc.encoder, ctc.model.config.to_dict(), path, 16000,
                                  bool(ctc.processor.feature_extractor.do_normalize), task_model=ctc.model)
        from upstream_merged.models.hubert import load_hubert_family

        encoder = load_hubert_family(path)
        config = encoder.model.config.to_dict()
        return AttentionModel(arch, encoder.model, config, path, encoder.sample_rate, encoder.normalize)
    if arch == "beats":
        return _load_beats(path, allow_pickle)
    from upstream_merged.mam.text_image import load_bert, load_vit

    loaded = (load_bert if arch == "bert" else load_vit)(path)
    return AttentionModel(arch, loaded.model, loaded.config, path, notes=loaded.notes)


def _load_beats(path: Path, allow_pickle: bool = False) -> AttentionModel:
    from upstream_merged.models.beats import find_beats_file, load_beats

    from upstream_merged.mam.task_models import load_task_model

    file = find_beats_file(path)
    classifier = load_task_model(file, allow_pickle=allow_pickle)
    if classifier is not None:  # fine-tuned: loaded strictly WITH its predictor; MAM merges the encoder only
        return AttentionModel("beats", classifier.beats, classifier.beats.config.to_dict(), file,
                              task_model=classifier)
    model = load_beats(file, allow_pickle=allow_pickle)
    return AttentionModel("beats", model, model.config.to_dict(), file)
