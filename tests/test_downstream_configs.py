"""downstream_configs/: one config per SUPERB task, placeholders that name their -o key, keys the 0.4.18 experts read."""
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from upstream_merged.testing.s3prl_run import CONFIG_DIR, run_downstream

# config -> the stock s3prl task (-d) it is for
SUPERB = {
    "ctc_libriphone": "ctc", "speech_commands": "speech_commands", "fluent_commands": "fluent_commands",
    "voxceleb1": "voxceleb1", "emotion": "emotion", "asr": "asr", "quesst14_dtw": "quesst14_dtw",
    "ctc_snips": "ctc", "sv_voxceleb1": "sv_voxceleb1", "diarization": "diarization",
}
PLACEHOLDER = re.compile(r"^UNSET: -o config\.([\w.-]+)=\S+$")
# `<section>["key"]` reads in an expert, section spelled as the config's block under downstream_expert
READ = re.compile(r"(?:self\.)?(datarc|modelrc|loaderrc|scorerc|dtwrc|downstream_expert)\[[\"']([\w-]+)[\"']\]")


def _load(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())


def _leaves(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, prefix + (str(key),))
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value, prefix)
    else:
        yield prefix, node


def _keys(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _keys(value, prefix + (key,))


def test_every_superb_task_has_a_config():
    names = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    assert set(SUPERB) <= names
    assert set(SUPERB) - {"sv_voxceleb1"} <= {  # ASV's stock expert needs CUDA: no CPU-small variant
        n[: -len("_cpu_small")] for n in names if n.endswith("_cpu_small")}


OURS = sorted(n for n in (p.stem for p in CONFIG_DIR.glob("*.yaml")) if n.replace("_cpu_small", "") in SUPERB)


@pytest.mark.parametrize("name", OURS)
def test_placeholders_name_their_own_override_key(name):
    text = (CONFIG_DIR / f"{name}.yaml").read_text()
    placeholders = 0
    for path, value in _leaves(_load(name)):
        if isinstance(value, str) and value.startswith("UNSET"):
            match = PLACEHOLDER.match(value)
            assert match and match.group(1) == ".".join(path), f"{name}: {'.'.join(path)} = {value!r}"
            placeholders += 1
    assert placeholders > 0
    assert "/path/to" not in re.sub(r'"UNSET: [^"]*"', "", "\n".join(line.split("#")[0] for line in text.splitlines()))


@pytest.mark.parametrize("name", sorted(n[: -len("_cpu_small")] for n in OURS if n.endswith("_cpu_small")))
def test_cpu_small_variant_uses_the_full_schema(name):
    full, small = _load(name), _load(f"{name}_cpu_small")
    extra = set(_keys(small)) - set(_keys(full))
    assert not extra, f"{name}_cpu_small.yaml has keys {sorted(extra)} that {name}.yaml lacks"
    assert small["runner"].get("total_steps", 0) <= 100  # quesst14_dtw does not train


@pytest.mark.parametrize("name", sorted(SUPERB))
def test_config_has_every_key_the_stock_expert_reads(name):
    expert = Path(importlib.util.find_spec("s3prl").origin).parent / "downstream" / SUPERB[name] / "expert.py"
    config = _load(name)["downstream_expert"]
    sections = {"downstream_expert": config, "modelrc": config.get("modelrc", config.get("model"))}
    for section, key in set(READ.findall(expert.read_text())):
        block = sections.get(section, config.get(section))
        assert block is not None and key in block, f"{name}.yaml lacks downstream_expert.{section}.{key} ({expert})"


def test_stock_run_without_data_names_the_override(tmp_path, plugin_cache_env):
    run = run_downstream(["-m", "train", "-u", "hubert_tiny", "-d", "fluent_commands",
                          "-c", str(CONFIG_DIR / "fluent_commands_cpu_small.yaml"), "-p", str(tmp_path / "exp")],
                         env=plugin_cache_env)
    assert run.returncode != 0
    assert "-o config.downstream_expert.datarc.file_path=" in run.output
