"""Run the stock s3prl ``run_downstream.py`` in a subprocess (tests, demo) and read what it printed."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "downstream_configs"


def stock_script() -> Path:
    """Path of s3prl's own run_downstream.py in the installed package (never a copy)."""
    import importlib.util

    spec = importlib.util.find_spec("s3prl")
    if spec is None or spec.origin is None:
        raise RuntimeError("s3prl is not installed; run tools/setup_env.sh")
    return Path(spec.origin).parent / "run_downstream.py"


@dataclass
class RunResult:
    """What a stock run printed and where it wrote."""

    returncode: int
    output: str
    expdir: Path

    def metric(self, name: str) -> List[float]:
        """Every value printed as ``<name>: <float>`` (e.g. 'dev acc', 'test acc'), in order."""
        return [float(v) for v in re.findall(rf"{re.escape(name)}: ([-0-9.eE]+)", self.output)]

    def check(self) -> "RunResult":
        """Raise with the tail of the output when the run failed."""
        if self.returncode != 0:
            raise RuntimeError(f"run_downstream.py failed ({self.returncode}):\n{self.output[-4000:]}")
        return self


def speech_commands_overrides(root: Path) -> str:
    """The -o string pointing s3prl's speech_commands recipe at a synthetic set made by tools/make_speech_commands.py."""
    return (
        f"config.downstream_expert.datarc.speech_commands_root={root / 'speech_commands_v0.01'},,"
        f"config.downstream_expert.datarc.speech_commands_test_root={root / 'speech_commands_test_set_v0.01'}"
    )


def run_downstream(args: Sequence[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None,
                   timeout: float = 900) -> RunResult:
    """Run ``python <site-packages>/s3prl/run_downstream.py ARGS --device cpu`` and capture its output.

    ``-p`` should be in ``args``; the expdir it names is returned.
    """
    argv = list(args)
    if "--device" not in argv:
        argv += ["--device", "cpu"]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run(
        [sys.executable, str(stock_script()), *argv],
        cwd=str(cwd or Path.cwd()), env=full_env, capture_output=True, text=True, timeout=timeout,
    )
    expdir = Path(argv[argv.index("-p") + 1]) if "-p" in argv else Path()
    return RunResult(proc.returncode, proc.stdout + proc.stderr, expdir)
