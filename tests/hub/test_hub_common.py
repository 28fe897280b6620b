"""How entries pick their recipe: -g, a YAML -k, or the packaged default, of the entry's method only."""
import pytest

from upstream_merged.hub.common import choose_recipe, packaged_recipe
from upstream_merged.recipe import RecipeError


def test_model_config_wins_then_yaml_ckpt_then_default():
    perm, mam = str(packaged_recipe("tiny_hubert_mert_cnn")), str(packaged_recipe("tiny_mam_hubert_bert"))
    assert choose_recipe(None, perm, "tiny_hubert_mert", method="permutation").preset == "cnn"
    assert choose_recipe(perm, None, "tiny_hubert_mert", method="permutation").preset == "cnn"
    assert choose_recipe(None, None, "tiny_hubert_mert", method="permutation").sources["b"].startswith("tiny:mert")
    assert choose_recipe("/some/merged_dir", None, "tiny_mam_hubert_bert", method="mam").method == "mam"
    with pytest.raises(RecipeError, match="needs a `method: permutation` recipe.*'mam'"):
        choose_recipe(None, mam, "tiny_hubert_mert", method="permutation", entry="merged_hubert_mert")


def test_entry_without_default_needs_a_recipe():
    with pytest.raises(RecipeError, match="fusion_custom needs a fusion recipe"):
        choose_recipe(None, None, None, method="fusion", entry="fusion_custom")


def test_wrong_method_through_a_stock_entry_is_named():
    import s3prl.hub as hub

    with pytest.raises(RecipeError, match="method: mam"):
        hub.mam_hubert_bert_tiny(model_config=str(packaged_recipe("tiny_hubert_mert")))
