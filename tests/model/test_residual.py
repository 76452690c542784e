"""The residual-branch helpers (mgrec.model.residual)."""

import torch

from mgrec.model.residual import LAYER_SCALE_INIT, DropPath, LayerScale, residual_branch


def test_drop_path_is_identity_in_eval_and_drops_whole_samples_in_training():
    torch.manual_seed(0)
    drop = DropPath(0.5)
    x = torch.ones(64, 3, 4)
    assert torch.equal(drop.eval()(x), x)
    out = drop.train()(x)
    per_sample = out.flatten(1)
    dropped = (per_sample == 0).all(dim=1)
    kept = (per_sample == 2.0).all(dim=1)  # rescaled by 1 / keep = 2
    assert torch.all(dropped | kept)
    assert 0 < int(dropped.sum()) < 64


def test_residual_branch_is_layer_scale_then_drop_path_or_the_identity():
    branch = residual_branch(3, drop_path=0.2, layer_scale=True)
    assert [type(part) for part in branch] == [LayerScale, DropPath]
    x = torch.randn(2, 3, 4)
    assert torch.allclose(branch.eval()(x), x * LAYER_SCALE_INIT)
    assert torch.equal(residual_branch(3, drop_path=0.0, layer_scale=False)(x), x)
