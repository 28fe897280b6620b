"""NSynth pitch: MIDI pitch (128 classes, MARBLE's task) or, with datarc.pitch_target=pitch_class, 12 pitch classes."""
from upstream_merged.downstream.readers import read_nsynth
from upstream_merged.downstream.utterance_task import expert_for

DownstreamExpert = expert_for(
    "nsynth_pitch", lambda datarc: read_nsynth(datarc, datarc.get("pitch_target", "pitch")))
