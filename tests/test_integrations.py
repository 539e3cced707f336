"""The LR controller inside PyTorch Lightning and the Hugging Face ``Trainer``.

Lightning: a tiny ``LightningModule`` (linear regression, SGD) returns
:func:`optuna_qlearn.integration.lightning.lr_scheduler_config` from
``configure_optimizers``. Checked: the controller gets the logged ``val_loss`` after every
validation run, the LR it picks is the LR the optimizer uses in every batch of the next
epoch, and a run stopped, checkpointed and resumed with ``fit(ckpt_path=...)`` ends in
exactly the state (Q-table, decisions, RNG, weights) of an uninterrupted run. Also
pinned: Lightning's plain entry ``{"scheduler", "monitor", "interval"}`` never hands the
loss to a non-``ReduceLROnPlateau`` scheduler (why the helper exists).

Hugging Face: :class:`optuna_qlearn.integration.huggingface.QLearningLRCallback` feeds
``eval_loss`` to the controller that the ``Trainer`` steps; the LR it picks is the LR of
every following optimizer step.

Needs the ``lightning`` and ``huggingface`` extras; missing, they skip locally and fail in CI.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import require

from optuna_qlearn.integration.lightning import lr_scheduler_config
from optuna_qlearn.lr import QLearningLRScheduler

LR0 = 0.05
N_FEATURES = 4


def _data(n: int, seed: int) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, N_FEATURES, generator=g)
    w = torch.arange(1.0, N_FEATURES + 1)
    return torch.utils.data.TensorDataset(x, x @ w + 0.1 * torch.randn(n, generator=g))


def _controller(optimizer: torch.optim.Optimizer) -> QLearningLRScheduler:
    # Always exploring, so the LR really moves (x0.5 / x1 / x2 at random).
    return QLearningLRScheduler(optimizer, epsilon=1.0, seed=3)


def _require(module: str, extra: str) -> None:
    require(
        importlib.util.find_spec(module) is not None,
        f"{module} is not installed (pip install 'optuna-qlearn[{extra}]')",
    )


# ---------------------------------------------------------------- validation
def test_lr_scheduler_config_validates_its_arguments() -> None:
    model = torch.nn.Linear(2, 1)
    scheduler = _controller(torch.optim.SGD(model.parameters(), lr=LR0))
    config = lr_scheduler_config(scheduler, monitor="val_mse", interval="step", frequency=5)
    assert config["reduce_on_plateau"] is True
    assert config["monitor"] == "val_mse"
    assert (config["interval"], config["frequency"]) == ("step", 5)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(scheduler.optimizer)
    with pytest.raises(TypeError, match="scheduler must be a QLearningLRScheduler"):
        lr_scheduler_config(plateau)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="monitor"):
        lr_scheduler_config(scheduler, monitor="")
    with pytest.raises(ValueError, match="interval"):
        lr_scheduler_config(scheduler, interval="batch")
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="frequency"):
            lr_scheduler_config(scheduler, frequency=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- Lightning
def _lightning() -> Any:
    _require("lightning", "lightning")
    import lightning.pytorch as pl

    return pl


def _module_class(pl: Any, plain_entry: bool = False) -> type:
    class Regression(pl.LightningModule):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(N_FEATURES, 1)
            self.batch_lrs: list[tuple[int, float]] = []  # (epoch, lr) of every batch
            self.val_losses: list[float] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x).squeeze(-1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            self.batch_lrs.append((self.current_epoch, lr))
            return torch.nn.functional.mse_loss(self(x), y)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y), on_epoch=True)

        def on_validation_epoch_end(self) -> None:
            self.val_losses.append(float(self.trainer.callback_metrics["val_loss"]))

        def configure_optimizers(self) -> dict[str, Any]:
            optimizer = torch.optim.SGD(self.parameters(), lr=LR0)
            scheduler = _controller(optimizer)
            if plain_entry:
                entry = {"scheduler": scheduler, "monitor": "val_loss", "interval": "epoch"}
            else:
                entry = lr_scheduler_config(scheduler, monitor="val_loss", interval="epoch")
            return {"optimizer": optimizer, "lr_scheduler": entry}

    return Regression


def _trainer(pl: Any, max_epochs: int, root: Path) -> Any:
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        default_root_dir=root,
    )


def _loaders() -> tuple[Any, Any]:
    train = torch.utils.data.DataLoader(_data(64, 0), batch_size=16, shuffle=False)
    val = torch.utils.data.DataLoader(_data(32, 1), batch_size=32)
    return train, val


def _fit(pl: Any, max_epochs: int, root: Path, ckpt_path: Path | None = None) -> Any:
    model = _module_class(pl)()
    trainer = _trainer(pl, max_epochs, root)
    trainer.fit(model, *_loaders(), ckpt_path=ckpt_path)
    return model, trainer


def test_lightning_optimizer_uses_the_lr_the_controller_picks(tmp_path: Path) -> None:
    pl = _lightning()
    n_epochs = 6
    model, trainer = _fit(pl, n_epochs, tmp_path)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, QLearningLRScheduler)
    # One decision per validation run, on the very loss Lightning logged.
    assert [h["val_loss"] for h in scheduler.history] == pytest.approx(model.val_losses)
    assert len(scheduler.history) == n_epochs
    # Epoch 0 at the initial LR; epoch e at the multiplier decided after epoch e - 1.
    expected = [LR0] + [LR0 * float(h["multiplier"]) for h in scheduler.history[:-1]]
    for epoch, lr in model.batch_lrs:
        assert lr == pytest.approx(expected[epoch], rel=1e-12), (epoch, lr)
    assert len(model.batch_lrs) == n_epochs * 4
    assert len(set(expected)) > 1, "the controller never changed the LR: nothing was tested"
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(
        LR0 * float(scheduler.history[-1]["multiplier"])
    )


def test_lightning_plain_entry_never_passes_the_loss(tmp_path: Path) -> None:
    """Lightning's default for a non-ReduceLROnPlateau scheduler: ``step()`` without it."""
    pl = _lightning()
    model = _module_class(pl, plain_entry=True)()
    trainer = _trainer(pl, 3, tmp_path)
    trainer.fit(model, *_loaders())
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert trainer.lr_scheduler_configs[0].reduce_on_plateau is False
    assert scheduler.history == []
    assert {lr for _, lr in model.batch_lrs} == {LR0}


def test_lightning_checkpoint_resumes_the_controller_exactly(tmp_path: Path) -> None:
    pl = _lightning()
    straight, straight_trainer = _fit(pl, 6, tmp_path / "straight")

    _, first_trainer = _fit(pl, 3, tmp_path / "first")
    ckpt = tmp_path / "epoch3.ckpt"
    first_trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)  # plain tensors and containers only
    assert len(saved["lr_schedulers"][0]["history"]) == 3

    resumed, resumed_trainer = _fit(pl, 6, tmp_path / "resumed", ckpt_path=ckpt)
    a = straight_trainer.lr_scheduler_configs[0].scheduler
    b = resumed_trainer.lr_scheduler_configs[0].scheduler
    assert b.history == a.history
    assert torch.equal(b.q_table, a.q_table)
    assert torch.equal(b.q_visits, a.q_visits)
    assert torch.equal(b._rng.get_state(), a._rng.get_state())
    assert b.multiplier == a.multiplier
    assert b.last_epoch == a.last_epoch == 6
    # The resumed run trained epochs 3-5 at the LRs of the straight run's epochs 3-5.
    assert resumed.batch_lrs == [(e, lr) for e, lr in straight.batch_lrs if e >= 3]
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


# ---------------------------------------------------------------- Hugging Face
class _HFRegression(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(N_FEATURES, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        pred = self.net(x).squeeze(-1)
        out: dict[str, Any] = {"logits": pred}
        if labels is not None:
            out["loss"] = torch.nn.functional.mse_loss(pred, labels)
        return out


class _DictData(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, n: int, seed: int) -> None:
        self.data = _data(n, seed)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = self.data[i]
        return {"x": x, "labels": y}


def _hf_trainer(
    tmp_path: Path, callbacks: list[Any], own_scheduler: bool = True
) -> tuple[Any, QLearningLRScheduler]:
    _require("transformers", "huggingface")
    from transformers import Trainer, TrainingArguments

    model = _HFRegression()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR0)
    scheduler = _controller(optimizer)
    args = TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        max_steps=24,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=32,
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_DictData(64, 0),
        eval_dataset=_DictData(32, 1),
        optimizers=(optimizer, scheduler if own_scheduler else None),
        callbacks=[c(scheduler) if isinstance(c, type) else c for c in callbacks],
    )
    return trainer, scheduler


def _recorder() -> Any:
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):  # type: ignore[misc]
        """The LR each optimizer step uses, and each evaluation's loss."""

        def __init__(self) -> None:
            self.step_lrs: list[tuple[int, float]] = []
            self.eval_losses: list[float] = []

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            lr = kwargs["optimizer"].param_groups[0]["lr"]
            self.step_lrs.append((state.global_step, lr))

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.eval_losses.append(float(kwargs["metrics"]["eval_loss"]))

    return Recorder()


def test_hf_callback_feeds_eval_loss_and_the_optimizer_uses_the_lr(tmp_path: Path) -> None:
    _require("transformers", "huggingface")
    from optuna_qlearn.integration.huggingface import QLearningLRCallback

    recorder = _recorder()
    trainer, scheduler = _hf_trainer(tmp_path, [QLearningLRCallback, recorder])
    trainer.train()
    # One decision per evaluation (every 4 of 24 steps), on the loss the Trainer reported.
    assert len(scheduler.history) == 6
    assert [h["val_loss"] for h in scheduler.history] == pytest.approx(recorder.eval_losses)
    assert scheduler.last_epoch == 24, "the Trainer stepped the controller once per step"
    # Steps 0-3 at the initial LR, then each block of 4 at the multiplier decided before it.
    assert [s for s, _ in recorder.step_lrs] == list(range(24))
    for step, lr in recorder.step_lrs:
        block = step // 4
        expected = LR0 if block == 0 else LR0 * float(scheduler.history[block - 1]["multiplier"])
        assert lr == pytest.approx(expected, rel=1e-12), (step, lr)
    assert len({lr for _, lr in recorder.step_lrs}) > 1, "the LR never moved: nothing tested"
    assert scheduler.prev_state is None, "end_episode ran at the end of training"


def test_hf_callback_validates(tmp_path: Path) -> None:
    _require("transformers", "huggingface")
    from optuna_qlearn.integration.huggingface import QLearningLRCallback

    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=LR0)
    with pytest.raises(TypeError, match="scheduler must be a QLearningLRScheduler"):
        QLearningLRCallback(torch.optim.lr_scheduler.StepLR(optimizer, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metric"):
        QLearningLRCallback(_controller(optimizer), metric="")
    # A metric the evaluation does not produce.
    trainer, _ = _hf_trainer(tmp_path, [])
    scheduler = trainer.lr_scheduler
    trainer.add_callback(QLearningLRCallback(scheduler, metric="eval_accuracy"))
    with pytest.raises(KeyError, match="eval_accuracy"):
        trainer.train()
    # The Trainer with a scheduler of its own (it would overwrite the controller's LR).
    trainer, scheduler = _hf_trainer(tmp_path, [], own_scheduler=False)
    trainer.add_callback(QLearningLRCallback(scheduler))
    with pytest.raises(ValueError, match="another LR scheduler"):
        trainer.train()
