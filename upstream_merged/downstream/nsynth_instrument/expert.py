"""NSynth instrument family (11 classes: bass, brass, flute, ... vocal)."""
from upstream_merged.downstream.readers import read_nsynth
from upstream_merged.downstream.utterance_task import expert_for

DownstreamExpert = expert_for("nsynth_instrument", lambda datarc: read_nsynth(datarc, "instrument_family"))
