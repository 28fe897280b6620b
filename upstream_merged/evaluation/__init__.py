"""Cached-feature probes for frozen upstreams: extract hidden states once, train s3prl's probe on them many times.

- :mod:`~upstream_merged.evaluation.tasks`: a task as the stock runner builds it (config, stock head, clips, batch order).
- :mod:`~upstream_merged.evaluation.features`: hidden states per (upstream, split), keyed by fingerprints, memory-mapped.
- :mod:`~upstream_merged.evaluation.probe`: s3prl's Featurizer + the task's head trained on the cache (stock budget or to convergence).
- :mod:`~upstream_merged.evaluation.stats`: accuracy with Wilson intervals, McNemar and the paired bootstrap.
- :mod:`~upstream_merged.evaluation.run`: one call from (entry, task) to a :class:`ProbeResult`.

The cache serves the reproduction's frozen rows only; users keep the stock ``run_downstream.py`` recipes,
and rows that train the upstream (``-f``) stay stock runs. tools/validate_cached_probe.py checks that the
cached probe scores what the stock run scores.
"""
