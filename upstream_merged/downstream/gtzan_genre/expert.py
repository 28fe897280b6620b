"""GTZAN genre classification (10 genres; fault-filtered split lists if present, else a seeded split)."""
from upstream_merged.downstream.readers import read_gtzan
from upstream_merged.downstream.utterance_task import expert_for

DownstreamExpert = expert_for("gtzan_genre", read_gtzan)
