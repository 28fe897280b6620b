"""The command line: entries, install-hook, tiny, and merge's refusal paths."""
from upstream_merged.__main__ import main
from upstream_merged.install_hook import PTH_LINE


def test_entries_lists_baselines(capsys):
    assert main(["entries"]) == 0
    out = capsys.readouterr().out
    assert "hubert_base_hf" in out and "mert_v1_95m" in out


def test_install_hook_writes_the_pth(tmp_path, capsys):
    assert main(["install-hook", "--site-packages", str(tmp_path)]) == 0
    assert (tmp_path / "upstream_merged.pth").read_text() == PTH_LINE
    assert main(["install-hook", "--site-packages", str(tmp_path)]) == 0  # idempotent


def test_tiny_prints_a_model_dir(capsys):
    assert main(["tiny", "tiny:mert_v0:1"]) == 0
    path = capsys.readouterr().out.strip()
    assert path.endswith(tuple("0123456789abcdef")) and "mert_v0" in path


def test_merge_with_missing_recipe_is_a_clean_error(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "none.yaml"), str(tmp_path / "out")]) == 2
    assert "recipe not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_merge_with_unknown_method_is_a_clean_error(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: nosuch\nsources: {a: x}\n")
    assert main(["merge", str(recipe), str(tmp_path / "out")]) == 2
    assert "method must be one of" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_global_flags_are_accepted_on_either_side_of_the_subcommand():
    from upstream_merged.__main__ import parse_args

    for argv in (["--quiet", "merge", "r.yaml", "out"], ["merge", "r.yaml", "out", "--quiet"],
                 ["merge", "--quiet", "r.yaml", "out"]):
        args = parse_args(argv)
        assert args.quiet is True and args.verbose is False, argv
    for argv in (["-v", "entries"], ["entries", "-v"], ["entries", "--verbose"]):
        assert parse_args(argv).verbose is True, argv
    args = parse_args(["merge", "r.yaml", "out"])
    assert args.quiet is False and args.verbose is False


def test_verbose_and_quiet_together_are_refused_wherever_given(capsys):
    import pytest

    for argv in (["-v", "--quiet", "entries"], ["-v", "merge", "r.yaml", "out", "--quiet"], ["entries", "--quiet", "-v"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
        assert "exclude each other" in capsys.readouterr().err


def test_quiet_after_the_subcommand_takes_effect(tmp_path, capsys, monkeypatch):
    import logging

    levels = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: levels.append(kwargs["level"]))
    assert main(["merge", str(tmp_path / "none.yaml"), str(tmp_path / "out"), "--quiet"]) == 2
    assert main(["entries", "-v"]) == 0
    assert levels == [logging.WARNING, logging.DEBUG]
