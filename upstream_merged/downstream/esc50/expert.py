"""ESC-50 environmental sound classification (50 classes, one fold as test, another as dev)."""
from upstream_merged.downstream.readers import read_esc50
from upstream_merged.downstream.utterance_task import expert_for

DownstreamExpert = expert_for("esc50", read_esc50)
