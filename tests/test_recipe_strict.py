"""Recipes are validated strictly: no string-to-number or string-to-bool coercion, errors name the key."""
from __future__ import annotations

import pytest
import yaml

from upstream_merged.recipe import RecipeError, load_recipe, parse_recipe, recipe_yaml

PERM = {"method": "permutation", "sources": {"a": "tiny:hubert", "b": "tiny:mert_v0"}}
MAM = {"method": "mam", "sources": {"target": "tiny:hubert", "source": "tiny:bert"}, "lambda": 0.05}
FUSION = {"method": "fusion", "sources": {"hubert": "tiny:hubert", "wavlm": "tiny:wavlm"}, "interface": "hconv"}


@pytest.mark.parametrize("data, key", [
    ({**PERM, "alpha": "0.9"}, "alpha"),
    ({**PERM, "seed": "3"}, "seed"),
    ({**PERM, "calibration": {"synthetic": {"clips": "12"}}}, "calibration.synthetic.clips"),
    ({**PERM, "calibration": {"synthetic": {}, "shuffle": "yes"}}, "calibration.shuffle"),
    ({**PERM, "calibration": {"synthetic": {}, "shuffle": 1}}, "calibration.shuffle"),
    ({**PERM, "alpha": True}, "alpha"),
    ({**MAM, "lambda": "0.05"}, "lambda"),
    ({**MAM, "include_out_proj": "yes"}, "include_out_proj"),
    ({**MAM, "layers": ["0", "1"]}, "layers.0"),
    ({**FUSION, "options": {"layer_norm": "true"}}, "options.layer_norm"),
    ({**FUSION, "options": {"frame_rate": "320"}}, "options.frame_rate"),
])
def test_quoted_numbers_and_word_booleans_are_refused_naming_the_key(data, key):
    with pytest.raises(RecipeError) as caught:
        parse_recipe(data, "r.yaml")
    message = str(caught.value)
    assert f"{key}:" in message and "r.yaml" in message, message


def test_a_quoted_value_gets_a_hint_to_drop_the_quotes():
    with pytest.raises(RecipeError, match=r"alpha: .*got '0\.9' \(str\); write the value without quotes"):
        parse_recipe({**PERM, "alpha": "0.9"})


def test_integers_are_accepted_where_floats_are_expected():
    assert parse_recipe({**PERM, "alpha": 1}).alpha == 1.0 and isinstance(parse_recipe({**PERM, "alpha": 1}).alpha, float)
    assert parse_recipe({**PERM, "alpha": 0}).settings()[2] == 0.0
    assert parse_recipe({**MAM, "lambda": [0, 1]}).lambda_ == [0.0, 1.0]
    recipe = parse_recipe({**PERM, "calibration": {"synthetic": {"clips": 2, "seconds": 1}, "clip_seconds": 3}})
    assert recipe.calibration.synthetic.seconds == 1.0 and recipe.calibration.clip_seconds == 3.0


def test_yaml_as_users_write_it_still_parses(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("method: mam\nsources: {target: tiny:hubert, source: tiny:bert}\nlambda: 0.05\n"
                    "layers: [0, 1]\nlayer_map: {0: 1, 1: 0}\ninclude_out_proj: true\n")
    recipe = load_recipe(path)
    assert recipe.layer_map == {0: 1, 1: 0} and recipe.include_out_proj is True


@pytest.mark.parametrize("data", [
    {**PERM, "preset": "cnn", "alpha": 0.7},
    {**MAM, "layers": [0, 1], "layer_map": {0: 1, 1: 0}},
    {**FUSION, "options": {"layer_norm": True}},
])
def test_recipe_yaml_reads_back_to_the_same_effective_recipe(tmp_path, data):
    recipe = parse_recipe(data).effective()
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe_yaml(recipe))
    again = load_recipe(path)
    assert again == recipe and again.effective() == recipe  # effective() is idempotent
    assert recipe_yaml(again) == path.read_text()
    assert yaml.safe_load(path.read_text())["method"] == data["method"]
