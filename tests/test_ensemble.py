"""The classifier ensemble: learns, is seeded, resumes from saved members, rejects bad names."""

import pytest
import torch

from lagaug.core.data.dataset import ImageSet
from lagaug.core.ensemble import EnsembleConfig, preset, train_ensemble
from lagaug.core.errors import ConfigError


def blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 32, 32, generator=g) * 0.3
    y = torch.arange(n) % 2
    x[y == 1, :, 8:24, 8:24] += 0.6
    return ImageSet(images=(x.clamp(0, 1) * 255).to(torch.uint8), labels=y, class_names=["a", "b"],
                    ids=[f"{seed}/{i}" for i in range(n)])


CFG = EnsembleConfig(members=2, epochs=6, batch_size=16, lr=3e-3)


def test_ensemble_learns_an_easy_task():
    ens = train_ensemble(blobs(64, 0), blobs(16, 1), CFG, torch.Generator().manual_seed(0))
    result = ens.evaluate(blobs(40, 2))
    assert len(result["per_member"]) == 2
    assert result["auc_mean"] > 0.95  # (accuracy needs more steps: BatchNorm statistics lag)
    train_losses = [r["train_loss"] for r in ens.history[0]["history"]]
    assert train_losses[-1] < 0.5 * train_losses[0]  # training loss falls
    assert result["auc_ci"] >= 0
    assert all(len(h["history"]) == 6 for h in ens.history)


def test_same_seed_same_members_different_seed_different():
    train, test = blobs(32, 0), blobs(16, 2)
    cfg = EnsembleConfig(members=2, epochs=2, batch_size=16)
    p = lambda s: train_ensemble(train, None, cfg, torch.Generator().manual_seed(s)).predict_proba(test.float_images())  # noqa: E731
    a, b, c = p(0), p(0), p(1)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a[0], a[1])  # members have their own seeds


def test_saved_members_are_loaded_not_retrained(tmp_path):
    train, test = blobs(32, 0), blobs(16, 2)
    cfg = EnsembleConfig(members=2, epochs=2, batch_size=16)
    first = train_ensemble(train, None, cfg, torch.Generator().manual_seed(0), checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["member_00.safetensors", "member_01.safetensors"]
    (tmp_path / "member_01.safetensors").unlink()  # as if killed while training member 2
    second = train_ensemble(train, None, cfg, torch.Generator().manual_seed(0), checkpoint_dir=tmp_path)
    assert second.history[0] == {"seed": first.history[0]["seed"], "resumed": True}
    assert "resumed" not in second.history[1]
    assert torch.equal(first.predict_proba(test.float_images()), second.predict_proba(test.float_images()))


def test_soft_labels_train():
    data = blobs(32, 0)
    data.soft = torch.full((32, 2), 0.5)
    ens = train_ensemble(data, None, EnsembleConfig(members=1, epochs=3, batch_size=16),
                         torch.Generator().manual_seed(0))
    probs = ens.predict_proba(data.float_images())
    assert (probs - 0.5).abs().max() < 0.2  # a 50/50 target pulls predictions towards 0.5


def test_unknown_classifier_suggests_names():
    with pytest.raises(ConfigError, match=r"--classifier 'resnet_18' is not a timm model; did you mean: .*resnet18"):
        train_ensemble(blobs(8, 0), None, EnsembleConfig(classifier="resnet_18"), torch.Generator())


def test_images_too_small_for_the_classifier_are_a_clear_error():
    small = ImageSet(images=torch.zeros(4, 1, 8, 8, dtype=torch.uint8), labels=torch.tensor([0, 1, 0, 1]),
                     class_names=["a", "b"], ids=list("abcd"))
    with pytest.raises(ConfigError, match=r"--classifier 'test_convnext' cannot take 8x8 images .* raise --image-size"):
        train_ensemble(small, None, EnsembleConfig(classifier="test_convnext"), torch.Generator())


def test_paper_preset_is_the_papers_protocol():
    cfg = preset("paper")
    assert (cfg.classifier, cfg.members, cfg.epochs, cfg.optimizer, cfg.lr, cfg.momentum, cfg.batch_size) == (
        "convnext_tiny", 20, 150, "sgd", 1e-3, 0.9, 32)
    with pytest.raises(ConfigError, match="unknown ensemble preset 'fast'; choose one of: cpu, paper"):
        preset("fast")
