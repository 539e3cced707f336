"""Tests of the char-level GPT, its corpora and the LR-schedule objective (tiny configs)."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from experiments.lr_schedule.controller import ExperimentLRObjective, ExperimentLRScheduler
from optuna_qlearn.lr import QLearningLRScheduler
from optuna_qlearn.objectives.chargpt import (
    CharGPT,
    GPTConfig,
    get_batch,
    measure_tokens_per_sec,
    train_chargpt,
)
from optuna_qlearn.objectives.lr_schedule import LRScheduleObjective, qlearning_factory
from optuna_qlearn.objectives.text_data import (
    SHAKESPEARE_SHA256,
    CharCorpus,
    corpus_from_text,
    download,
    load_corpus,
    load_enwik8,
    load_shakespeare_char,
    load_text8,
    sha256_of,
)

TEXT = "the quick brown fox jumps over the lazy dog. " * 200


@pytest.fixture
def small_corpus() -> CharCorpus:
    return corpus_from_text("fox", TEXT)


# ----------------------------------------------------------------------------- corpora
def test_shakespeare_char(shakespeare_path: Path) -> None:
    corpus = load_shakespeare_char(shakespeare_path)
    assert corpus.vocab_size == 65
    assert len(corpus.train) == 1_003_854 and len(corpus.val) == 111_540
    assert len(corpus.test) == 0
    assert corpus.decode(corpus.train[:14]) == "First Citizen:"
    text = "To be, or not to be"
    assert corpus.decode(corpus.encode(text)) == text
    with pytest.raises(ValueError, match="not in the shakespeare_char vocabulary"):
        corpus.encode("€")


def test_shakespeare_checksum_and_download(shakespeare_path: Path, tmp_path: Path) -> None:
    assert sha256_of(shakespeare_path) == SHAKESPEARE_SHA256
    got = download(shakespeare_path.as_uri(), tmp_path / "a" / "input.txt", SHAKESPEARE_SHA256)
    assert load_shakespeare_char(got).vocab_size == 65
    with pytest.raises(ValueError, match="checksum mismatch"):
        download(shakespeare_path.as_uri(), tmp_path / "b.txt", "0" * 64)
    assert not (tmp_path / "b.txt").exists()
    bad = tmp_path / "bad.txt"
    bad.write_text("not shakespeare")
    with pytest.raises(ValueError, match="is not tiny Shakespeare"):
        load_shakespeare_char(bad)
    assert load_shakespeare_char(bad, verify=False).name == "shakespeare_char"
    with pytest.raises(FileNotFoundError, match="download_if_missing"):
        load_shakespeare_char(tmp_path / "missing.txt")


def _zip(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return path


def test_enwik8_loader_on_a_generated_zip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw = b"<page><title>Anarchism</title>\n" + bytes(rng.integers(0, 256, 3000, dtype=np.uint8))
    path = _zip(tmp_path / "enwik8.zip", "enwik8", raw)
    corpus = load_corpus("enwik8", path, split=(2700, 150, 150))
    assert isinstance(corpus.vocab, bytes)
    assert corpus.vocab == bytes(sorted(set(raw)))
    assert (len(corpus.train), len(corpus.val), len(corpus.test)) == (2700, 150, 150)
    ids = np.concatenate([corpus.train, corpus.val, corpus.test])
    assert bytes(corpus.vocab[i] for i in ids) == raw[:3000]
    assert corpus.decode(corpus.train[:6]) == "<page>"
    with pytest.raises(ValueError, match="100,000,000"):
        load_enwik8(path)  # the standard split needs the real 10^8-byte file
    with pytest.raises(ValueError, match="does not fit"):
        load_enwik8(path, split=(3000, 100, 100))
    with pytest.raises(ValueError, match="no member 'enwik8'"):
        load_enwik8(_zip(tmp_path / "other.zip", "text8", raw), split=(10, 1, 1))
    (tmp_path / "plain").write_bytes(raw)
    with pytest.raises(ValueError, match="not a zip"):
        load_enwik8(tmp_path / "plain", split=(10, 1, 1))


def test_text8_loader_on_a_generated_zip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    letters = np.frombuffer(b" abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    raw = bytes(letters[rng.integers(0, 27, 2000)])
    path = _zip(tmp_path / "text8.zip", "text8", raw)
    corpus = load_text8(path, split=(1800, 100, 100))
    assert corpus.vocab_size == 27
    assert corpus.decode(corpus.val) == raw[1800:1900].decode()
    assert corpus.decode(corpus.test) == raw[1900:].decode()
    with pytest.raises(ValueError, match="lowercase"):
        load_text8(_zip(tmp_path / "upper.zip", "text8", b"Hello World"), split=(5, 3, 3))
    with pytest.raises(ValueError, match="unknown corpus"):
        load_corpus("wikitext", path)


# ----------------------------------------------------------------------------- model
def test_config_presets_and_validation() -> None:
    full = GPTConfig.full()
    assert (full.n_layer, full.n_head, full.n_embd, full.block_size) == (6, 6, 384, 256)
    assert (full.batch_size, full.max_iters, full.learning_rate, full.min_lr) == (
        64,
        5000,
        1e-3,
        1e-4,
    )
    assert full.warmup_iters == 100
    cpu = GPTConfig.cpu(max_iters=123)
    assert (cpu.n_layer, cpu.n_head, cpu.n_embd, cpu.block_size, cpu.batch_size) == (
        2,
        4,
        128,
        64,
        16,
    )
    assert cpu.max_iters == 123
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="min_lr"):
        GPTConfig(min_lr=1.0, learning_rate=0.1)
    with pytest.raises(ValueError, match="vocab_size"):
        CharGPT(GPTConfig.tiny())


def test_model_is_causal_and_ties_weights() -> None:
    torch.manual_seed(0)
    model = CharGPT(GPTConfig.tiny(vocab_size=11)).eval()
    assert model.lm_head.weight is model.tok_emb.weight
    idx = torch.randint(0, 11, (2, 16))
    logits, loss = model(idx, idx)
    assert logits.shape == (2, 16, 11) and loss is not None
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 11
    logits2, _ = model(changed)
    torch.testing.assert_close(logits[:, :10], logits2[:, :10])
    assert not torch.allclose(logits[:, 10:], logits2[:, 10:])
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
    opt = model.configure_optimizer(GPTConfig.tiny(vocab_size=11))
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert id(model.tok_emb.weight) in decayed
    assert id(model.ln_f.weight) not in decayed
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    assert measure_tokens_per_sec(model, n_tokens=5) > 0


def test_get_batch_targets_are_shifted() -> None:
    data = np.arange(100, dtype=np.uint8)
    x, y = get_batch(data, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(y[:, -1], x[:, -1] + 1)
    with pytest.raises(ValueError, match="block_size"):
        get_batch(data[:5], 2, 8, torch.Generator())


def test_training_learns_and_is_reproducible(small_corpus: CharCorpus) -> None:
    cfg = GPTConfig.tiny(max_iters=60, learning_rate=1e-2, min_lr=1e-3)
    evals: list[tuple[int, float, float]] = []
    res = train_chargpt(
        small_corpus, cfg, seed=1, on_eval=lambda *a: evals.append(a), inference_tokens=5
    )
    assert res.iters == [0, 10, 20, 30, 40, 50, 60]
    assert [e[0] for e in evals] == res.iters
    assert res.val_losses[-1] < 0.6 * res.val_losses[0]  # a periodic text is easy
    assert res.best_val_loss == min(res.val_losses)
    assert res.final_train_loss == res.train_losses[-1]
    assert len(res.lrs) == 60 and res.train_time > 0 and res.tokens_per_sec > 0
    # The baseline's LR: warmup, then cosine down to min_lr.
    fn = cfg.base_lr_fn()
    assert res.lrs == pytest.approx([1e-2 * fn(t) for t in range(60)])
    again = train_chargpt(small_corpus, cfg, seed=1, inference_tokens=0)
    assert again.val_losses == res.val_losses


def test_q_controller_drives_the_optimizer_in_training(small_corpus: CharCorpus) -> None:
    cfg = GPTConfig.tiny(max_iters=50, eval_interval=5)
    factory = qlearning_factory({"q_epsilon": 1.0, "q_actions": "0.5,2"}, seed=4)
    res = train_chargpt(small_corpus, cfg, schedule=factory, seed=0, inference_tokens=0)
    state = res.scheduler_state
    assert state is not None
    history = state["history"]
    assert len(history) == 10
    fn = cfg.base_lr_fn()
    multiplier = 1.0
    decisions = {int(h["step"]): float(h["multiplier"]) for h in history}
    for t, lr in enumerate(res.lrs):
        # lrs[t] is the LR of optimizer step t (0-based); a decision after step t (1-based
        # iteration t+1, scheduler epoch t) sets the LR of step t+1.
        assert lr == pytest.approx(cfg.learning_rate * fn(t) * multiplier), t
        multiplier = decisions.get(t, multiplier)
    assert len({round(m, 6) for m in decisions.values()}) > 1
    # The resulting table warm-starts a new scheduler.
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    warm = QLearningLRScheduler(opt, actions=(0.5, 2.0), q_table=state["q_table"])
    assert torch.equal(warm.q_table, state["q_table"])


def test_control_interval_decides_more_often_at_equal_iterations(
    small_corpus: CharCorpus,
) -> None:
    cfg = GPTConfig.tiny(max_iters=40, eval_interval=10)
    factory = qlearning_factory({"q_epsilon": 1.0, "q_actions": "0.5,2"}, seed=3)
    res = train_chargpt(
        small_corpus, cfg, schedule=factory, seed=0, inference_tokens=0, control_interval=4
    )
    state = res.scheduler_state
    assert state is not None
    history = state["history"]
    # 10 decisions on the control loss, while the reported evaluations stay every 10 steps.
    assert [int(h["step"]) for h in history] == [3 + 4 * k for k in range(10)]
    assert [h["val_loss"] for h in history] == pytest.approx(res.control_losses)
    assert res.iters == [0, 10, 20, 30, 40]
    assert res.control_losses[-1] < res.control_losses[0]
    # Each decision's multiplier reaches the optimizer at the next step.
    fn = cfg.base_lr_fn()
    multiplier = 1.0
    decisions = {int(h["step"]): float(h["multiplier"]) for h in history}
    for t, lr in enumerate(res.lrs):
        assert lr == pytest.approx(cfg.learning_rate * fn(t) * multiplier), t
        multiplier = decisions.get(t, multiplier)
    assert len({round(m, 6) for m in decisions.values()}) > 1
    # The baseline is unaffected by the option's existence and rejects it.
    with pytest.raises(ValueError, match="control_interval needs a QLearningLRScheduler"):
        train_chargpt(small_corpus, cfg, seed=0, inference_tokens=0, control_interval=4)
    with pytest.raises(ValueError, match="control_interval must be >= 0"):
        train_chargpt(small_corpus, cfg, schedule=factory, control_interval=-1)
    with pytest.raises(ValueError, match="control_iters must be >= 1"):
        train_chargpt(small_corpus, cfg, schedule=factory, control_interval=2, control_iters=0)


# ----------------------------------------------------------------------------- objective
def test_objective_reports_and_returns_best_val_loss(small_corpus: CharCorpus) -> None:
    cfg = GPTConfig.tiny(max_iters=20, eval_interval=10)
    objective = LRScheduleObjective(small_corpus, config=cfg, search_space="both")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"schedule": "baseline"})
    study.enqueue_trial({"schedule": "qlearning"})
    study.optimize(objective, n_trials=3)
    schedules = set()
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert set(trial.intermediate_values) == {10, 20}
        assert trial.value == pytest.approx(min(trial.intermediate_values.values()))
        assert math.isfinite(trial.user_attrs["final_train_loss"])
        schedules.add(trial.params["schedule"])
        if trial.params["schedule"] == "qlearning":
            assert {"q_alpha", "q_gamma", "q_epsilon", "q_actions"} <= set(trial.params)
            assert "q_reward" not in trial.params  # one reward without a reference run
    assert schedules == {"baseline", "qlearning"}
    with pytest.raises(ValueError, match="search_space"):
        LRScheduleObjective(small_corpus, search_space="cosine")


def test_objective_searches_the_training_phases_when_asked(small_corpus: CharCorpus) -> None:
    cfg = GPTConfig.tiny(max_iters=20, eval_interval=10)
    objective = LRScheduleObjective(small_corpus, config=cfg, phases=(1, 4))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"q_phases": 4})
    study.optimize(objective, n_trials=1)
    assert study.trials[0].params["q_phases"] == 4
    # The default keeps the phase out of the search space.
    plain = LRScheduleObjective(small_corpus, config=cfg)
    assert "q_phases" not in plain.suggest(optuna.create_study().ask())

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = qlearning_factory({"q_phases": 4})(optimizer, cfg)
    assert isinstance(sched, QLearningLRScheduler)
    assert (sched.n_phases, sched.total_steps) == (4, cfg.max_iters)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = qlearning_factory({})(optimizer, cfg)
    assert isinstance(sched, QLearningLRScheduler) and sched.n_phases == 1
    for bad in ((), (0,), (1, 2.5)):
        with pytest.raises(ValueError, match="phases must be"):
            LRScheduleObjective(small_corpus, config=cfg, phases=bad)  # type: ignore[arg-type]


def test_objective_is_prunable(small_corpus: CharCorpus) -> None:
    cfg = GPTConfig.tiny(max_iters=30, eval_interval=10)
    objective = LRScheduleObjective(small_corpus, config=cfg, search_space="baseline")
    # Every trial after the first is worse than an impossible threshold -> pruned at once.
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.01))
    study.optimize(objective, n_trials=2)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert all(list(t.intermediate_values) == [10] for t in study.trials)


def test_lr_cli_runs_a_study(shakespeare_path: Path, tmp_path: Path) -> None:
    import argparse

    from optuna_qlearn.objectives import lr_cli

    parser = argparse.ArgumentParser()
    lr_cli.add_arguments(parser)
    storage = f"sqlite:///{tmp_path / 'lr.db'}"
    args = parser.parse_args(
        ["--data", str(shakespeare_path), "--config", "tiny", "--max-iters", "20",
         "--n-trials", "2", "--sampler", "random", "--storage", storage]
    )  # fmt: skip
    assert lr_cli.run(args) == 0
    study = optuna.load_study(study_name="lr-shakespeare_char-random", storage=storage)
    assert len(study.trials) == 2 and study.best_value < 4.2
    from optuna_qlearn._cli_checks import CommandError

    def status(args: argparse.Namespace) -> int:
        """The exit status the CLI gives (it reports a CommandError in one line)."""
        try:
            return lr_cli.run(args)
        except CommandError as exc:
            return exc.status

    bad = parser.parse_args(["--data", str(tmp_path / "missing.txt"), "--config", "tiny"])
    assert status(bad) == 2
    for phases in ("four", "0"):
        bad = parser.parse_args(["--data", str(shakespeare_path), "--phases", phases])
        assert status(bad) == 2


def test_experiment_objective_searches_its_rewards_with_its_scheduler(
    small_corpus: CharCorpus,
) -> None:
    params = {"q_alpha": 0.1, "q_gamma": 0.5, "q_epsilon": 0.1, "q_actions": "0.5,1,2"}
    cfg = GPTConfig.tiny(max_iters=20, eval_interval=10)
    plain = LRScheduleObjective(small_corpus, config=cfg).suggest(optuna.trial.FixedTrial(params))
    assert "q_reward" not in plain
    objective = ExperimentLRObjective(small_corpus, config=cfg)
    drawn = objective.suggest(optuna.trial.FixedTrial({**params, "q_reward": "improvement_delta"}))
    assert drawn["q_reward"] == "improvement_delta"
    config, factory = objective.build(drawn)
    assert not isinstance(factory, str)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    sched = factory(opt, config)
    assert isinstance(sched, ExperimentLRScheduler) and sched.reward_mode == "improvement_delta"
    with pytest.raises(TypeError, match="scheduler_cls must be a subclass"):
        qlearning_factory(params, scheduler_cls=dict)  # type: ignore[arg-type]
