"""The classifier ensemble learns a small imbalanced set, keeps a real epoch, is seeded and resumes.

Every ensemble here is test-sized (:mod:`lagaug.testing`): two members that learn a
16 px three-class set in about a second each, so figures can differ and the checks mean something.
"""

import math

import numpy as np
import pytest
import torch

from lagaug.core.classifier import chance_warning, resolve_ensemble_config, steps_per_epoch, train_ensemble
from lagaug.core.classifier.chance import majority_scores
from lagaug.core.data.dataset import ImageSet
from lagaug.core.errors import ConfigError
from lagaug.testing import learnable_set, learnable_splits, test_ensemble_config


def balanced_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    pred = probs.argmax(1)
    return float(np.mean([(pred[labels == c] == c).float().mean().item() for c in labels.unique()]))


@pytest.fixture(scope="module")
def learnt():
    """One test-sized ensemble trained on the easy imbalanced set (40 ok, 8 spot, 8 line)."""
    data = learnable_splits(0)
    train, val, test = data.train, data.val, data.test
    ens = train_ensemble(train, val, test_ensemble_config(), torch.Generator().manual_seed(0))
    return ens, val, test


def test_ensemble_separates_an_easy_imbalanced_set(learnt):
    ens, _, test = learnt
    result = ens.evaluate(test)
    _, majority_f1 = majority_scores(test.labels.numpy())
    assert result["f1_mean"] > majority_f1 + 0.5  # majority-class macro-F1 is 0.22 here
    scores = [balanced_accuracy(member, test.labels) for member in ens.predict_proba(test.float_images())]
    assert np.mean(scores) > 0.85 and min(scores) > 0.75  # chance is 1/3
    assert chance_warning(result, test.labels) is None


def test_each_member_records_what_it_did_and_which_epoch_it_kept(learnt):
    ens, val, _ = learnt
    _, val_majority_f1 = majority_scores(val.labels.numpy())
    for h in ens.history:
        epochs = h["history"]
        assert [r["epoch"] for r in epochs] == list(range(1, 11))
        assert {"val_loss", "val_auc", "val_f1", "val_accuracy", "val_score", "lr"} <= set(epochs[0])
        assert epochs[-1]["val_loss"] < 0.6 * epochs[0]["val_loss"]  # validation loss falls
        assert h["balance"] == "sqrt" and h["class_counts"] == [40, 8, 8]  # 5:1 is imbalanced: auto balances
        assert h["aug"] == "light" and h["bn_recal"] is True
        assert h["steps_per_epoch"] == steps_per_epoch(56, ens.config) == 4  # 56 images, epochs of 64 draws
        kept = epochs[h["kept_epoch"] - 1]
        assert h["kept_epoch"] > 1
        assert kept["val_f1"] > val_majority_f1 + 0.3  # not an epoch that calls everything "ok"
        assert kept["val_score"] == max(r["val_score"] for r in epochs)
        assert "best validation auc+f1" in h["kept_because"]


def test_same_seed_same_members_different_seed_different():
    data = learnable_splits(1)
    train, val, test = data.train, data.val, data.test
    cfg = test_ensemble_config(epochs=4)

    def probs(seed):
        return train_ensemble(train, val, cfg, torch.Generator().manual_seed(seed)).predict_proba(test.float_images())

    a, b, c = probs(0), probs(0), probs(1)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)
    assert not torch.allclose(a[0], a[1], atol=1e-3)  # members have their own seeds


def test_saved_members_are_loaded_not_retrained_with_their_record(tmp_path):
    data = learnable_splits(2)
    train, val, test = data.train, data.val, data.test
    cfg = test_ensemble_config(epochs=4)
    first = train_ensemble(train, val, cfg, torch.Generator().manual_seed(0), checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["member_00.safetensors", "member_01.safetensors"]
    (tmp_path / "member_01.safetensors").unlink()  # as if killed while training member 2
    second = train_ensemble(train, val, cfg, torch.Generator().manual_seed(0), checkpoint_dir=tmp_path)
    assert second.history[0] == {**first.history[0], "resumed": True}
    assert "resumed" not in second.history[1]
    assert torch.equal(first.predict_proba(test.float_images()), second.predict_proba(test.float_images()))


def test_soft_labels_are_the_training_targets():
    data = learnable_set((16, 16), seed=3)  # class 1 images carry a bright spot: easy to tell apart
    data.soft = torch.tensor([[0.7, 0.3]]).repeat(32, 1)  # ... but every target says 70% class 0
    ens = train_ensemble(data, None, test_ensemble_config(members=1, epochs=6), torch.Generator().manual_seed(0))
    probs = ens.predict_proba(data.float_images())[0]
    assert (probs[:, 0] - 0.7).abs().mean() < 0.1  # the soft target is learnt, not the hard label
    assert ens.history[0]["kept_because"] == "no validation set: the last epoch is kept"


def test_chance_warning_fires_when_labels_are_random():
    data = learnable_splits(4)
    train, val, test = data.train, data.val, data.test
    g = torch.Generator().manual_seed(0)
    for part in (train, val):
        part.labels = part.labels[torch.randperm(len(part), generator=g)]  # images no longer tell the class
    ens = train_ensemble(train, val, test_ensemble_config(), torch.Generator().manual_seed(0))
    warning = chance_warning(ens.evaluate(test), test.labels)
    assert warning is not None and warning.endswith("iteration changes are not meaningful")


def test_the_learnable_npz_is_learnt_through_load_data_but_not_perfectly(tmp_path):
    from lagaug.core.data import load_data
    from lagaug.testing import learnable_npz

    learnable_npz(tmp_path / "learn.npz")
    splits = load_data(tmp_path / "learn.npz", image_size=16)
    ens = train_ensemble(splits.train, splits.val, test_ensemble_config(), torch.Generator().manual_seed(0))
    result = ens.evaluate(splits.test)
    assert result["f1_mean"] > majority_scores(splits.test.labels.numpy())[1] + 0.5
    assert min(m["auc"] for m in result["per_member"]) < 0.995  # room for figures to differ


def test_unknown_classifier_suggests_names():
    with pytest.raises(ConfigError, match=r"--classifier 'resnet_18' is not a timm model; did you mean: .*resnet18"):
        train_ensemble(learnable_set((4, 4), 0), None, test_ensemble_config(classifier="resnet_18"), torch.Generator())


def test_images_too_small_for_the_classifier_are_a_clear_error():
    small = ImageSet(images=torch.zeros(4, 1, 8, 8, dtype=torch.uint8), labels=torch.tensor([0, 1, 0, 1]),
                     class_names=["a", "b"], ids=list("abcd"))
    with pytest.raises(ConfigError, match=r"--classifier 'test_convnext' cannot take 8x8 images .* raise --image-size"):
        train_ensemble(small, None, test_ensemble_config(classifier="test_convnext"), torch.Generator())


def test_test_config_is_the_cpu_preset_with_the_test_overrides():
    cfg = test_ensemble_config()
    cpu = resolve_ensemble_config("cpu")
    assert cfg.classifier == cpu.classifier and cfg.balance == cpu.balance and cfg.select == cpu.select
    assert math.isclose(cfg.weight_decay, cpu.weight_decay)
