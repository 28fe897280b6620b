"""The merge's memory savers compute exactly what they replace: in-place permutation, scratch LAP, heap trim."""
import numpy as np
import pytest
import torch

from upstream_merged.core.assignment import solve
from upstream_merged.core.memory import release_free_memory
from upstream_merged.permutation.apply import apply_permutations, permute_model_, random_permutations
from upstream_merged.permutation.spec import SpecError, spec_for_model
from upstream_merged.tiny.hubert import build_tiny_hubert

from perm_helpers import SCRAMBLED


def test_permute_model_in_place_equals_loading_the_permuted_state_dict():
    model = build_tiny_hubert(3)
    spec = spec_for_model(model)
    perms = random_permutations(spec, spec.select(SCRAMBLED), torch.Generator().manual_seed(4))
    expected = apply_permutations(model.state_dict(), spec, perms)
    storage = {name: tensor.data_ptr() for name, tensor in model.state_dict().items()}
    permute_model_(model, spec, perms)
    state = model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in expected.items())
    assert {name: tensor.data_ptr() for name, tensor in state.items()} == storage  # no tensor was replaced


def test_permute_model_checks_before_touching_anything():
    model = build_tiny_hubert(3)
    spec = spec_for_model(model)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    name = spec.select(("ffn",))[0]
    with pytest.raises(SpecError, match="bijection"):
        permute_model_(model, spec, {name: torch.zeros(spec.groups[name].size, dtype=torch.long)})
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize("size", [1, 7, 64])
def test_scratch_solve_equals_the_copying_solve_and_restores_its_input(size):
    matrix = torch.rand(size, size, generator=torch.Generator().manual_seed(size), dtype=torch.float64) * 2 - 1
    matrix[0, 0] = 0.0
    original = matrix.clone()
    assert torch.equal(solve(matrix, scratch=True), solve(original))
    assert torch.equal(matrix, original) and not torch.signbit(matrix[0, 0])


def test_scratch_solve_copies_what_it_cannot_overwrite():
    matrix = np.random.default_rng(0).random((6, 6))
    read_only = matrix.copy()
    read_only.setflags(write=False)
    assert torch.equal(solve(read_only, scratch=True), solve(matrix))
    transposed = matrix.T  # not C-contiguous: solved from scipy's own copy
    assert torch.equal(solve(transposed, scratch=True), solve(np.ascontiguousarray(transposed)))


def test_release_free_memory_trims_wherever_the_c_library_is_glibc():
    import platform

    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")


def test_keep_freed_memory_in_the_heap_applies_every_setting_on_glibc():
    import platform
    import subprocess
    import sys

    # in a child: mallopt changes the allocator of the whole process for good
    code = "from upstream_merged.core.memory import keep_freed_memory_in_the_heap as keep; print(keep())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(platform.libc_ver()[0] == "glibc")
