"""s3prl upstreams for MAM results: a merged dir (fixed λ) or a live L-MAM model whose λ trains under -f."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from upstream_merged.core.rng import without_global_rng_effects
from upstream_merged.mam.build import BEATS_FILE, load_pair, read_report
from upstream_merged.mam.learnable import LAMBDA_MODULE, LambdaBank, attach_learnable, freeze_all_but_lambdas
from upstream_merged.mam.loading import AttentionModel
from upstream_merged.mam.recipe import MAMRecipe
from upstream_merged.models.checkpoint import CheckpointError
from upstream_merged.upstream.frozen_state import keep_frozen_out_of_state_dict

logger = logging.getLogger(__name__)


def target_upstream(target: AttentionModel) -> nn.Module:
    """The s3prl upstream expert for a loaded HuBERT-family or BEATs target model."""
    if target.arch == "hubert":
        from upstream_merged.upstream.hubert import HubertFamilyUpstream

        return HubertFamilyUpstream(target.model, target.sample_rate, target.normalize)
    if target.arch == "beats":
        from upstream_merged.upstream.beats import BEATsUpstream

        return BEATsUpstream(target.model)
    raise ValueError(f"no s3prl upstream for a {target.arch} target")


def merged_dir_upstream(directory: Path) -> nn.Module:
    """The upstream for a dir written by ``python -m upstream_merged merge`` from a MAM recipe."""
    directory = Path(directory)
    report = read_report(directory)
    if report is None:
        raise CheckpointError(f"{directory} is not a MAM output dir (no mam_report.json)")
    from upstream_merged.mam.loading import load_attention_model

    path = directory / BEATS_FILE if report["target"]["arch"] == "beats" else directory
    return target_upstream(load_attention_model(path))


class LearnableMAMUpstream(nn.Module):
    """A target upstream whose attention projections are parametrized merges with trainable λ per layer."""

    def __init__(self, upstream: nn.Module, bank: LambdaBank):
        super().__init__()
        self.upstream = upstream
        setattr(self, LAMBDA_MODULE, bank)

    @property
    def lambdas(self) -> Dict[int, float]:
        """Current λ per merged target layer."""
        return getattr(self, LAMBDA_MODULE).as_dict()

    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        """Samples of 16 kHz input per output frame (the target's)."""
        return self.upstream.get_downsample_rates(key)

    def forward(self, wavs: List[torch.Tensor]) -> Dict[str, object]:
        return self.upstream(wavs)


def frozen_part(trainable: str) -> Callable[[str], Optional[str]]:
    """Which L-MAM state-dict keys are frozen: the source projections, and every target tensor when only λ trains."""
    def part_of(key: str) -> Optional[str]:
        if ".parametrizations." in key and key.endswith(".source"):
            return "source"
        if trainable == "lambdas" and not key.startswith(f"{LAMBDA_MODULE}."):
            return "target"
        return None

    return part_of


@without_global_rng_effects  # model construction draws from torch's RNG; λ starts at lambda_init, not at random
def learnable_upstream(recipe: MAMRecipe, entry: Optional[str] = None) -> LearnableMAMUpstream:
    """Build an L-MAM upstream from the recipe's sources (λ starts at ``lambda_init``; no random init).

    Its ``state_dict()`` (what s3prl saves under -f) holds λ, the target only when the recipe trains it
    (``trainable: all``), and a fingerprint of the frozen rest, checked when a checkpoint is loaded.
    """
    if not recipe.learnable:
        raise ValueError("this entry learns λ: the recipe needs `learnable: true` and `lambda_init` "
                         "(use a mam_* entry for a fixed-λ recipe)")
    pair = load_pair(recipe)
    bank = attach_learnable(pair.target.model, pair.source.model.state_dict(), pair.plan,
                            pair.target.layout, pair.source.layout, lr_scale=recipe.lambda_lr_scale)
    upstream = LearnableMAMUpstream(target_upstream(pair.target), bank)
    if recipe.trainable == "lambdas":
        freeze_all_but_lambdas(upstream)
    fingerprint = keep_frozen_out_of_state_dict(upstream, frozen_part(recipe.trainable), kind="model",
                                                owner=entry or "L-MAM upstream")
    fingerprint.describe(sources={role: recipe.sources[role] for role in fingerprint.parts})
    logger.info("L-MAM: λ init %s (sigmoid-constrained, trains under -f)", upstream.lambdas)
    return upstream
