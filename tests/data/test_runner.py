"""The dataset runner: options from a declaration, refusals before writing, the summary file, `data` on the CLI, the shims."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_helpers import tree_digest
from upstream_merged.__main__ import main, parse_args
from upstream_merged.data import LAYOUT_NAMES, layouts, ljspeech
from upstream_merged.data.runner import Layout, option, recipe_report, run

REPO = Path(__file__).resolve().parents[2]


def _toy(calls: list, **overrides) -> Layout:
    """A layout that writes one file per --count and records each call."""

    def write(args):
        calls.append(args)
        if args.count < 0:
            raise ValueError("--count must be >= 0")
        if args.count == 99:
            raise RuntimeError("sox failed")
        args.out.mkdir(parents=True, exist_ok=True)
        for i in range(args.count):
            (args.out / f"{i}.txt").write_text(str(args.seed))
        return {"files": args.count}

    settings = dict(name="toy", description="A toy layout.\n\nMore words.", write=write,
                    options=(option("--count", type=int, default=2), option("--seed", type=int, default=0),
                             option("--profile", choices=("small", "big"), default="small"),
                             option("--summary", type=Path, default=None)),
                    check=lambda a: "--seed must be < 10" if a.seed >= 10 else None, summary_profiles=("big",))
    settings.update(overrides)
    return Layout(**settings)


def test_options_come_from_the_declaration_and_the_report_is_printed(tmp_path, capsys):
    calls = []
    assert run(_toy(calls), [str(tmp_path / "out"), "--count", "3", "--seed", "4"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.txt", "1.txt", "2.txt"]
    assert calls[0].seed == 4 and calls[0].out == tmp_path / "out"
    assert capsys.readouterr().out == '{"files": 3}\n'
    assert _toy([]).help == "A toy layout."


def test_refusals_come_before_anything_is_written(tmp_path, capsys):
    calls = []
    with pytest.raises(SystemExit) as caught:  # the layout's own check: a usage error
        run(_toy(calls), [str(tmp_path / "out"), "--seed", "10"])
    assert caught.value.code == 2 and "--seed must be < 10" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    assert run(_toy(calls), [str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert calls == [] and not (tmp_path / "out").exists()


def test_writer_errors_become_exit_codes(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        run(_toy([]), [str(tmp_path / "a"), "--count", "-1"])
    assert caught.value.code == 2 and "--count must be >= 0" in capsys.readouterr().err
    assert run(_toy([]), [str(tmp_path / "b"), "--count", "99"]) == 2
    assert capsys.readouterr().err == "error: sox failed\n"


def test_summary_is_written_for_the_declared_profiles_only(tmp_path, capsys):
    argv = [str(tmp_path / "a"), "--profile", "big", "--seed", "3", "--summary", str(tmp_path / "s.json")]
    assert run(_toy([]), argv) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == {"files": 2, "task": "toy", "profile": "big", "seed": 3,
                                                              "args": argv}
    assert run(_toy([]), [str(tmp_path / "b"), "--summary", str(tmp_path / "t.json")]) == 0
    assert not (tmp_path / "t.json").exists()


def test_force_replaces_only_where_declared(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    forced = _toy([], force=True, options=_toy([]).options + (option("--force", action="store_true"),))
    assert run(forced, [str(tmp_path / "out")]) == 2
    assert run(forced, [str(tmp_path / "out"), "--force"]) == 0
    assert (tmp_path / "out" / "0.txt").exists()


def test_recipe_report_points_the_recipe_at_out(tmp_path, capsys):
    layout = _toy([], report=recipe_report("-d toy", lambda out: f"root={out}"))
    assert run(layout, [str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out == f'run_downstream.py -d toy -o "root={tmp_path / "out"}"\n'


def test_every_layout_is_declared_and_parses_its_defaults(tmp_path):
    found = layouts()
    assert tuple(found) == LAYOUT_NAMES and len(found) == 15
    for name, layout in found.items():
        assert layout.name == name and layout.help
        args = layout.parser().parse_args([str(tmp_path / name)])
        assert args.out == tmp_path / name


def test_data_command_lists_the_layouts(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["data", "--help"])
    out = capsys.readouterr().out
    assert caught.value.code == 0
    assert all(f"  {name} " in out for name in LAYOUT_NAMES) and "ESC-50-layout" in out


def test_data_command_hands_the_rest_to_the_layout():
    args = parse_args(["--quiet", "data", "nsynth", "--profile", "sampled", "out", "--seed", "2"])
    assert args.layout == "nsynth" and args.layout_args == ["--profile", "sampled", "out", "--seed", "2"]
    assert args.quiet is True


def test_data_command_writes_what_the_layout_builds(tmp_path, capsys):
    assert main(["data", "ljspeech", str(tmp_path / "cli"), "--utterances", "2", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"utterances": 2, "sample_rate": 22050}
    ljspeech.build(tmp_path / "api", utterances=2, seed=1)
    assert tree_digest(tmp_path / "cli") == tree_digest(tmp_path / "api")
    with pytest.raises(SystemExit) as caught:
        main(["data", "esc50", str(tmp_path / "few"), "--clips-per-class", "2"])
    assert caught.value.code == 2 and "one per fold" in capsys.readouterr().err


def test_tools_shims_run_the_layout_and_stand_for_its_module():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import make_vctk
        import synth
    finally:
        sys.path.remove(str(REPO / "tools"))
    from upstream_merged.data import shared, vctk

    assert make_vctk is vctk and synth is shared
    result = subprocess.run([sys.executable, str(REPO / "tools" / "make_ljspeech.py"), "out", "--utterances", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--utterances must be >= 1" in result.stderr
    assert result.stderr.startswith("usage: make_ljspeech.py")
