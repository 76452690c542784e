"""The training step's check of a compiled network against the network itself (`check_compiled_training`)."""

import pytest
import torch
from tests.helpers import SMALL_MODEL

from mgrec.config import ModelConfig
from mgrec.errors import InputError
from mgrec.model.detector import DetectorOutput, build_detector
from mgrec.train.step import check_compiled_training


def small_network(drop_path: float):
    torch.manual_seed(0)
    network = build_detector(ModelConfig(**{**SMALL_MODEL, "drop_path": drop_path}, input_dim=16, num_classes=3))
    return network.train()


def first_crop(length: int = 64):
    features = torch.randn(2, 16, length, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 1, length, dtype=torch.bool)
    mask[1, :, length // 2:] = False  # a crop shorter than the training length is padded
    return features, mask


class Rescaled(torch.autograd.Function):
    """The identity forward; backward scales the gradient (a backward graph compiled wrong)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def test_the_network_checked_against_itself_passes_with_its_random_draws_repeated():
    # drop path draws which samples skip a block: the check gives both runs the same draws (else they
    # differ by whole residual branches), and leaves the training's own draws where they were
    network = small_network(drop_path=0.5)
    features, mask = first_crop()
    torch.manual_seed(5)
    check_compiled_training(network, network, features, mask, None)
    after_check = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after_check, torch.rand(3))
    assert all(p.grad is None for p in network.parameters())  # no gradient left for the optimiser to take


def test_logits_that_stray_are_refused():
    network = small_network(drop_path=0.0)

    def miscompiled(features, mask):
        out = network(features, mask)
        return DetectorOutput([c + (0.01 if level == 2 else 0.0) for level, c in enumerate(out.cls_logits)],
                              out.offsets, out.masks, out.strides)

    with pytest.raises(InputError, match=r"the compiled network disagrees with the network itself on the first "
                                         r"training crop: logits up to 0.01 apart \(at most 0.001 expected\), "
                                         r"gradients 0 apart .*set train.compile: false; no weight was changed"):
        check_compiled_training(network, miscompiled, *first_crop(), None)


def test_a_backward_pass_that_strays_is_refused_where_the_forward_pass_agrees():
    network = small_network(drop_path=0.0)

    def backward_miscompiled(features, mask):
        out = network(features, mask)
        return DetectorOutput(out.cls_logits, [Rescaled.apply(o, 1.5) if level == 0 else o
                                               for level, o in enumerate(out.offsets)], out.masks, out.strides)

    with pytest.raises(InputError, match=r"logits up to 0 apart \(at most 0.001 expected\), gradients 0.1\d+ apart "
                                         r"relative to their norm \(at most 0.01\)"):
        check_compiled_training(network, backward_miscompiled, *first_crop(), None)


def test_under_bf16_the_tolerances_are_bf16s():
    network = small_network(drop_path=0.0)

    def slightly_off(features, mask):  # within bf16's tolerance, not float32's
        out = network(features, mask)
        return DetectorOutput([c + 0.01 for c in out.cls_logits], out.offsets, out.masks, out.strides)

    features, mask = first_crop()
    check_compiled_training(network, slightly_off, features, mask, torch.bfloat16)
    with pytest.raises(InputError, match=r"logits up to 0.01 apart \(at most 0.001 expected\)"):
        check_compiled_training(network, slightly_off, features, mask, None)


def test_gradients_that_are_not_finite_are_refused_and_the_message_names_the_precision():
    # the demo's network compiled by torch 2.13's inductor under bf16 autocast: finite logits, NaN gradients in the
    # encoder; training stopped a step later at a NaN loss, with advice to lower the learning rate
    network = small_network(drop_path=0.0)

    def backward_not_finite(features, mask):
        out = network(features, mask)
        return DetectorOutput([Rescaled.apply(c, float("nan")) for c in out.cls_logits], out.offsets, out.masks,
                              out.strides)

    with pytest.raises(InputError, match=r"logits up to 0 apart \(at most 0.1 expected\), gradients not finite \(the "
                                         r"network's own are\); torch.compile mis-compiled it under bf16 autocast: set "
                                         r"train.compile: false \(or train.precision: fp32\); no weight was changed"):
        check_compiled_training(network, backward_not_finite, *first_crop(), torch.bfloat16)


@pytest.mark.parametrize("clip_grad", [1.0, 0.0])
def test_a_finite_loss_whose_gradient_is_not_stops_training_before_the_weights_change(tmp_path, monkeypatch,
                                                                                       clip_grad):
    # Only the loss was checked: a finite loss with a NaN gradient (a derivative undefined where it was taken, bf16
    # overflowing in the backward pass) wrote NaN into the weights and the EMA; the epoch was checkpointed so (not
    # validated: eval_every), and the next step stopped at a NaN loss saying "the weights were not updated", an epoch
    # of NaN weights that --resume went on from.
    from tests.helpers import small_config

    from mgrec.config import PostprocessConfig, TrainConfig
    from mgrec.data.synthetic import make_synthetic_dataset
    from mgrec.run import RunDir
    from mgrec.train.loop import train
    from mgrec.train.losses import DetectionLoss

    paths = make_synthetic_dataset(tmp_path / "data", num_videos=4, num_classes=3, feature_dim=16, length=160,
                                   subsets=("train", "train", "val", "test"))
    config = small_config(paths, seed=3, max_seq_len=128, postprocess=PostprocessConfig(pre_nms_topk=200),
                          train=TrainConfig(epochs=3, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3,
                                            eval_every=5, clip_grad=clip_grad))
    computed = DetectionLoss.__call__

    def nan_gradient(self, *args, **kwargs):  # the loss as computed; its gradient NaN
        parts = computed(self, *args, **kwargs)
        return parts._replace(total=Rescaled.apply(parts.total, float("nan")))

    monkeypatch.setattr(DetectionLoss, "__call__", nan_gradient)
    with pytest.raises(InputError, match=r"training stopped at step 0: the loss is finite \(\d\.\d+\) but its gradient "
                                         r"is not \(norm nan\); the weights were not updated, and the run keeps the "
                                         r"epochs it completed. Check the features \(`mgrec data check`\), or "
                                         r"lower train.lr \(changed otherwise than in train.compile or train.device, "
                                         r"the config trains a new run, into another --out: --resume takes the run's "
                                         r"own\)$"):
        train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    assert not RunDir(tmp_path / "run").has_training()  # no epoch of NaN weights checkpointed
