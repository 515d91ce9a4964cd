"""The pieces of the classifier recipe each do what they say: balancing, augmentation, BatchNorm
recalibration, the schedule, the kept epoch, the config resolver, the chance check and threads."""

import math

import numpy as np
import pytest
import torch

from lagaug.core.classifier import (
    PRESETS,
    EnsembleConfig,
    build_classifier,
    preset_values,
    resolve_classifier_aug,
    resolve_ensemble_config,
)
from lagaug.core.classifier.augment import ClassifierAugment, max_shift, random_dihedral
from lagaug.core.classifier.chance import chance_warning, majority_scores, null_auc_margin
from lagaug.core.classifier.training import (
    class_weights,
    epoch_order,
    kept_epoch,
    lr_factor,
    recalibrate_batchnorm,
    resolve_balance,
    train_member,
)
from lagaug.core.errors import ConfigError
from lagaug.core.threads import apply_threads, default_threads
from lagaug.testing import learnable_set, test_ensemble_config

# -- class balance ----------------------------------------------------------------------------------


def test_balanced_epoch_draws_every_class_equally_and_cycles_its_images():
    labels = torch.tensor([0] * 40 + [1] * 4)
    order = epoch_order(labels, 64, balanced=True, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(labels[order]).tolist() == [32, 32]
    rare = torch.bincount(order[labels[order] == 1], minlength=44)[40:]
    assert rare.tolist() == [8, 8, 8, 8]  # each of the 4 rare images 8 times, none left out
    plain = epoch_order(labels, 64, balanced=False, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(labels[plain]).tolist()[1] <= 8  # without balancing the rare class stays rare
    sqrt = epoch_order(labels, 66, balanced="sqrt", generator=torch.Generator().manual_seed(0))
    assert torch.bincount(labels[sqrt]).tolist() == [50, 16]  # 66 * sqrt(40) / (sqrt(40) + sqrt(4)) = 50.1


def test_auto_balance_turns_on_for_imbalanced_counts_only():
    assert resolve_balance("auto", [40, 8, 8]) == "sqrt"
    assert resolve_balance("auto", [20, 18]) == "none"
    assert resolve_balance("auto", [30, 0, 30]) == "none"  # an absent class is not a rare one
    assert resolve_balance("loss", [20, 18]) == "loss"
    w = class_weights([30, 10])
    assert torch.allclose(w * torch.tensor([30.0, 10.0]), torch.tensor([20.0, 20.0]))  # equal total weight


def test_balancing_makes_a_member_find_the_rare_class():
    """On a 48:4 set with plain shuffled epochs, one member barely meets the rare class; balanced
    draws show it to the member as often as the common one and its recall on the rare class rises."""
    train, test = learnable_set((48, 4), 5), learnable_set((30, 30), 5, "test")
    recall = {}
    for balance in ("none", "sampler"):
        cfg = test_ensemble_config(members=1, epochs=4, balance=balance, lr=2e-3)
        model, info = train_member(train, None, cfg, 0, torch.device("cpu"))
        assert info["balance"] == balance
        with torch.no_grad():
            pred = model(test.float_images()).argmax(1)
        recall[balance] = (pred[test.labels == 1] == 1).float().mean().item()
    assert recall["sampler"] > recall["none"] + 0.2


# -- augmentation -----------------------------------------------------------------------------------


def test_auto_augmentation_is_safe_unless_the_data_is_orientation_invariant():
    assert resolve_classifier_aug("auto", True) == "dihedral"
    assert resolve_classifier_aug("auto", False) == "light"
    assert resolve_classifier_aug("auto", None) == "light"  # unknown data: shifts only
    assert resolve_classifier_aug("none", True) == "none"
    with pytest.raises(ConfigError, match="--classifier-aug must be one of auto, none, light, dihedral, got 'flip'"):
        resolve_classifier_aug("flip", True)


def test_light_shift_moves_content_a_little_and_is_seeded():
    x = torch.zeros(64, 1, 32, 32)
    x[:, :, 16, 16] = 1.0  # one bright pixel in the middle of every image
    out = ClassifierAugment("light")(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    where = torch.stack([torch.nonzero(o[0] == 1.0)[0] for o in out])
    offsets = where - 16
    assert offsets.abs().max() <= max_shift(32) == 2 and len({tuple(o) for o in offsets.tolist()}) > 5
    assert torch.equal(out, ClassifierAugment("light")(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, ClassifierAugment("light")(x, torch.Generator().manual_seed(1)))


def test_dihedral_gives_only_turns_and_mirrors_of_the_image():
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(32, 1, 1, 1)
    out = random_dihedral(x, torch.Generator().manual_seed(0))
    symmetries = [torch.rot90(x[0], k, (-2, -1)) for k in range(4)]
    symmetries += [s.flip(-1) for s in symmetries]
    seen = {next(i for i, s in enumerate(symmetries) if torch.equal(o, s)) for o in out}  # raises if none matches
    assert len(seen) >= 6  # and they vary


def test_auto_augmentation_follows_what_the_data_declares():
    train = learnable_set((8, 8), 6)
    for invariant, level in ((True, "dihedral"), (None, "light")):
        cfg = test_ensemble_config(members=1, epochs=2, aug="auto")
        _, info = train_member(train, None, cfg, 0, torch.device("cpu"), orientation_invariant=invariant)
        assert info["aug"] == level


def test_augmentation_changes_training():
    train = learnable_set((12, 12), 6)
    records = {}
    for aug in ("none", "light"):
        cfg = test_ensemble_config(members=1, epochs=2, aug=aug)
        model, info = train_member(train, None, cfg, 0, torch.device("cpu"))
        records[aug] = (info["aug"], next(model.parameters()).detach().clone())
    assert records["none"][0] == "none" and records["light"][0] == "light"
    assert not torch.equal(records["none"][1], records["light"][1])


# -- BatchNorm --------------------------------------------------------------------------------------


def test_batchnorm_recalibration_makes_eval_match_the_training_images_statistics():
    model = build_classifier("test_resnet", 2, 1)
    images = learnable_set((20, 20), 7).float_images()
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 1, 16, 16) * 0.1)  # running statistics now describe other images
        batch_mode = model(images)  # BatchNorm with the statistics of these very images
    model.eval()
    with torch.no_grad():
        stale = model(images)
    assert recalibrate_batchnorm(model, images, torch.device("cpu"))
    assert not model.training
    with torch.no_grad():
        fresh = model(images)
    assert (fresh - batch_mode).abs().max() < 0.05 * (stale - batch_mode).abs().max()


# -- schedule and kept epoch ------------------------------------------------------------------------


def test_learning_rate_warms_up_then_follows_a_half_cosine():
    factors = [lr_factor(s, 10, 100, "cosine") for s in range(100)]
    assert factors[0] == pytest.approx(0.19) and factors[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(factors[:10], factors[1:10]))
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[-1] == pytest.approx(0.01)
    assert lr_factor(50, 10, 100, "constant") == 1.0


def _epoch(epoch, loss, auc, f1):
    return {"epoch": epoch, "val_loss": loss, "val_auc": auc, "val_f1": f1,
            "val_score": (auc + f1) / 2}


def test_kept_epoch_is_not_the_majority_class_epoch_with_the_lowest_loss():
    history = [_epoch(1, 0.40, 0.70, 0.45),  # calls everything the majority class: lowest loss
               _epoch(2, 0.55, 0.86, 0.80), _epoch(3, 0.60, 0.84, 0.80)]
    assert kept_epoch(history, EnsembleConfig())[0] == 2
    assert kept_epoch(history, EnsembleConfig(select="loss"))[0] == 1  # what the old criterion kept
    history.append(_epoch(4, 0.58, 0.86, 0.80))
    epoch, why = kept_epoch(history, EnsembleConfig())
    assert epoch == 4 and "tied at epochs 2, 4: the latest is kept" in why
    assert kept_epoch(history, EnsembleConfig(select_best=False))[0] == 4


# -- configuration ----------------------------------------------------------------------------------


def test_resolver_coerces_cli_strings_and_rejects_bad_values_in_one_line():
    cfg = resolve_ensemble_config("cpu", {"members": "4", "lr": "1e-3", "bn_recal": "off", "aug": "none"})
    assert (cfg.members, cfg.lr, cfg.bn_recal, cfg.aug) == (4, 1e-3, False, "none")
    bad = [({"member": 3}, r"--classifier-set: unknown key 'member'; valid keys: classifier, members, epochs"),
           ({"members": 0}, r"--classifier-set members must be at least 1, got 0"),
           ({"epochs": "ten"}, r"--classifier-set epochs: expected int, got 'ten'"),
           ({"balance": "oversample"}, r"--classifier-set balance must be one of auto, sampler, sqrt, loss, none"),
           ({"lr": 0}, r"--classifier-set lr must be positive"),
           ({"select": "accuracy"}, r"--classifier-set select must be one of auc\+f1, auc, f1, loss, got 'accuracy'")]
    for overrides, message in bad:
        with pytest.raises(ConfigError, match=message):
            resolve_ensemble_config("cpu", overrides, source="--classifier-set")
    with pytest.raises(ConfigError, match="unknown ensemble preset 'fast'; choose one of: cpu, paper"):
        resolve_ensemble_config("fast", {})


def test_every_preset_resolves_and_is_introspectable():
    fields = set(EnsembleConfig.__dataclass_fields__)
    for name, values in PRESETS.items():
        assert set(values) <= fields
        full = preset_values(name)
        assert set(full) == fields and all(full[k] == v for k, v in values.items())
        resolve_ensemble_config(name, {})


def test_presets_and_thread_defaults_are_readable_without_torch():
    import subprocess
    import sys

    code = ("import sys; from lagaug.core.classifier import PRESETS, preset_values; "
            "from lagaug.core.threads import default_threads; "
            "preset_values('paper'); default_threads(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the CLI's help text may show them


# -- chance -----------------------------------------------------------------------------------------


def test_chance_warning_reads_the_test_sets_noise_and_blind_members():
    labels = np.array([0] * 300 + [1] * 60)
    margin = null_auc_margin(labels)
    assert margin == pytest.approx(1.96 * math.sqrt(361 / (12 * 300 * 60)))
    good = {"accuracy": 0.9, "f1": 0.8, "auc": 0.80}
    learnt = {"auc_mean": 0.80, "auc_ci": 0.05, "per_member": [good] * 3}
    assert chance_warning(learnt, labels) is None
    two_varied = {"auc_mean": 0.80, "auc_ci": 0.9, "per_member": [{**good, "auc": 0.72}, {**good, "auc": 0.88}]}
    assert chance_warning(two_varied, labels) is None  # a wide member interval is not chance
    noisy = {**learnt, "auc_mean": 0.5 + margin * 0.9}
    assert "is not above 0.5 by more than 0.080" in chance_warning(noisy, labels)
    acc, f1 = majority_scores(labels)
    assert (acc, f1) == pytest.approx((300 / 360, (2 * acc / (1 + acc)) / 2))
    majority = {"accuracy": acc, "f1": f1, "auc": 0.9}
    mostly_majority = {**learnt, "auc_mean": 0.85, "per_member": [majority, majority, good]}
    warning = chance_warning(mostly_majority, labels)
    assert "2 of 3 members learnt nothing usable" in warning and "2 call every image the majority class" in warning
    assert chance_warning({**mostly_majority, "per_member": [majority, good, good]}, labels) is None


# -- threads ----------------------------------------------------------------------------------------


def test_threads_default_to_the_usable_cores_and_are_applied(monkeypatch):
    import os

    import lagaug.core.threads as threads

    assert 1 <= default_threads() <= len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    ticks = iter([(100, 1000), (150, 1200)])  # 50 of 200 jiffies busy over the window: 0.25 of 4 cores = 1
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(ticks))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert default_threads() == 1  # one core held by another process: one thread
    ticks = iter([(100, 1000), (100, 1200)])
    assert default_threads() == 2  # an idle machine: every usable core
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    before = torch.get_num_threads()
    try:
        apply_threads(2)
        assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
        assert apply_threads(1) == 2 and torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="--threads must be a whole number of at least 1, got 0"):
        apply_threads(0)


def test_adamw_runs_on_the_fused_kernel_with_the_plain_loops_update():
    from lagaug.core.classifier.training import make_optimizer
    from lagaug.core.runtime import adam

    torch.manual_seed(0)
    fused_model, plain_model = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
    plain_model.load_state_dict(fused_model.state_dict())
    cfg = test_ensemble_config(members=1, epochs=1)
    fused = make_optimizer(fused_model, cfg)
    plain = torch.optim.AdamW(plain_model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    assert fused.defaults["fused"] is True and isinstance(fused, torch.optim.AdamW)
    assert adam(torch.nn.Linear(2, 2).parameters(), lr=1e-3).defaults["fused"] is True
    x = torch.randn(16, 6)
    for model, opt in ((fused_model, fused), (plain_model, plain)):
        for _ in range(3):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    assert torch.allclose(fused_model.weight, plain_model.weight, atol=1e-6)
    assert not torch.equal(fused_model.weight, torch.nn.Linear(6, 3).weight)
