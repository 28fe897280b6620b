"""Recipe schema of the correlation-permutation merge (``method: permutation``), strictly validated."""
from __future__ import annotations

from typing import List, Literal, Optional, Tuple, Union

from pydantic import Field, PositiveFloat, field_validator, model_validator

from upstream_merged.permutation.presets import DEFAULT_PRESET, PRESETS, match_preset
from upstream_merged.recipe import RecipeBase, StrictModel, register_method

PresetName = Literal["avg", "linear", "cnn_ffn_attn", "cnn", "cnn_ffn", "cnn_all", "ffn_attn", "cnn_ffn_attn_residual"]
Component = Literal["cnn", "ffn", "attn", "residual", "qkv_independent"]
ROLES = ("a", "b")


class SyntheticAudio(StrictModel):
    """Seeded synthetic calibration clips (speech-like and music-like), generated in memory."""

    clips: int = Field(64, ge=1)
    seconds: float = Field(4.0, gt=0)
    speech_share: float = Field(0.5, ge=0, le=1)


class DatasetAudio(StrictModel):
    """Calibration clips from a Hugging Face ``datasets`` dataset: a seeded selection, fetched once and cached."""

    id: str  # hub id (fixie-ai/librispeech_asr), a local dataset dir, or a builder name (parquet, audiofolder)
    config: Optional[str] = None
    split: str = "train"
    audio_column: str = "audio"
    clips: int = Field(..., ge=1)  # this source's share of the calibration set (per-domain counts)
    max_seconds: Optional[float] = Field(None, gt=0)  # crop each clip (None: calibration.clip_seconds)
    streaming: bool = True  # stream: only the examples read until ``clips`` are chosen are fetched
    shuffle_buffer: int = Field(1000, ge=1)  # streaming selection: seeded shard order + a buffer this large
    revision: Optional[str] = None
    data_dir: Optional[str] = None
    data_files: Optional[List[str]] = None
    domain: Optional[str] = None  # a label for the report (speech, music ...)
    # undecodable examples are skipped and counted; more than this share of ``clips`` fails the build, naming them
    max_bad_share: float = Field(0.01, ge=0, le=1)
    workers: Optional[int] = Field(None, ge=1)  # decode/encode threads (None: the CPU count, at most 8)


class Calibration(StrictModel):
    """Where calibration audio comes from and how much of it is used."""

    dirs: List[str] = Field(default_factory=list)
    manifest: Optional[str] = None
    synthetic: Optional[SyntheticAudio] = None
    datasets: List[DatasetAudio] = Field(default_factory=list)
    max_clips: Optional[int] = Field(None, ge=1)
    max_seconds: Optional[float] = Field(None, gt=0)
    clip_seconds: float = Field(10.0, gt=0)
    batch_size: int = Field(16, ge=1)
    frames_per_second: Optional[float] = Field(10.0, gt=0)  # transformer sites (50 frames/s at 16 kHz)
    cnn_frames_per_second: Optional[float] = Field(100.0, gt=0)  # CNN sites: cheap per frame, up to 3,200 frames/s
    # padded audio per forward (bigger batches are split: activation memory stays flat); auto = 5 s on the CPU,
    # scaled to the GPU's memory on CUDA (placement.auto_batch_seconds); null = whole batches
    max_batch_seconds: Union[Literal["auto"], PositiveFloat, None] = "auto"
    shuffle: bool = True
    drift_clips: int = Field(1, ge=0)
    # where the calibration pass runs: auto = CUDA when available (results equal the CPU path; see the docs)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    # dtype of the cross-moment accumulators (the merge's largest allocation); float32 halves it
    statistics_dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _has_audio(self) -> "Calibration":
        if not self.dirs and not self.manifest and self.synthetic is None and not self.datasets:
            raise ValueError("calibration needs audio: set dirs, manifest, datasets or synthetic")
        return self


class ReportOptions(StrictModel):
    """What the merge report draws."""

    heatmap_groups: Optional[List[str]] = None
    heatmap_units: int = Field(48, ge=4)


class PermutationRecipe(RecipeBase):
    """sources.a = reference model (kept in place, weight ``alpha``), sources.b = the model permuted onto it."""

    method: Literal["permutation"]
    preset: Optional[PresetName] = None
    components: Optional[List[Component]] = None
    alpha: Optional[float] = Field(None, ge=0, le=1)
    calibration: Calibration = Field(default_factory=lambda: Calibration(synthetic=SyntheticAudio()))
    report: ReportOptions = Field(default_factory=ReportOptions)

    @field_validator("sources")
    @classmethod
    def _two_roles(cls, sources):
        if set(sources) != set(ROLES):
            raise ValueError(f"permutation recipes need exactly sources.a (reference) and sources.b (permuted), got {sorted(sources)}")
        return sources

    @model_validator(mode="after")
    def _attention_modes(self) -> "PermutationRecipe":
        components = self.components or []
        if "attn" in components and "qkv_independent" in components:
            raise ValueError("components: 'attn' (heads, a symmetry) and 'qkv_independent' (the ablation) exclude each other")
        return self

    def settings(self) -> Tuple[str, Tuple[str, ...], float]:
        """(preset that supplied the defaults, aligned components, alpha) after applying the preset's defaults.

        The first item only names where unset values came from; whether the build *is* that preset
        (same components and alpha) is :func:`upstream_merged.permutation.presets.match_preset`'s call.
        """
        preset = PRESETS[self.preset or DEFAULT_PRESET]
        components = tuple(self.components) if self.components is not None else preset.components
        alpha = self.alpha if self.alpha is not None else preset.alpha
        return preset.name, components, float(alpha)

    def effective(self) -> "PermutationRecipe":
        """Components and alpha written out; ``preset`` names the preset they equal (None: a custom setting)."""
        _, components, alpha = self.settings()
        matched = match_preset(components, alpha)
        return self.model_copy(update={"preset": matched.name if matched else None,
                                       "components": list(components), "alpha": alpha})


def _build(recipe, out_dir, recipe_text=None, progress=True):
    from upstream_merged.permutation.merge import build

    return build(recipe, out_dir, recipe_text=recipe_text, progress=progress)


def _plan(recipe) -> str:
    from upstream_merged.permutation.merge import plan

    return plan(recipe)


register_method("permutation", PermutationRecipe, _build, _plan)
