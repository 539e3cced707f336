"""A nanoGPT-style character-level GPT and its training loop.

The model is a decoder-only transformer: token and position embeddings, ``n_layer``
pre-LayerNorm blocks (causal multi-head self-attention and a GELU MLP, each with a residual
connection; PyTorch's :class:`torch.nn.TransformerEncoderLayer` with ``norm_first=True`` and
a causal mask), a final LayerNorm and a language-model head tied to the token embedding.
Training is AdamW with weight decay on the matrices only, gradient-norm clipping and an
evaluation every ``eval_interval`` iterations, as in nanoGPT's ``train.py``.

Two ready-made configurations:

* :meth:`GPTConfig.full` -- nanoGPT's ``shakespeare_char`` setup (6 layers, 6 heads, 384
  wide, block 256, batch 64, 5000 iterations, LR 1e-3 decaying to 1e-4, warmup 100); a GPU
  job.
* :meth:`GPTConfig.cpu` -- 2 layers, 4 heads, 128 wide, block 64, batch 16, 160 iterations
  (warmup 8), LR 2e-3 decaying to 2e-4, an evaluation every 8 iterations on 6 fixed
  batches per split: 20 decisions for a Q-controller; 25-45 s per run on one busy core.
  It is sized for a 2-core machine shared by several jobs; 2000 iterations at batch 32
  (``GPTConfig.cpu(batch_size=32, max_iters=2000, eval_interval=100, warmup_iters=100)``)
  is the longer variant.

Example:
    .. code-block:: python

        import torch
        from optuna_qlearn.objectives.chargpt import GPTConfig, train_chargpt
        from optuna_qlearn.objectives.text_data import load_shakespeare_char

        torch.set_num_threads(1)
        corpus = load_shakespeare_char("../shared/data/shakespeare_char/input.txt")
        result = train_chargpt(corpus, GPTConfig.cpu(), schedule="baseline", seed=0)
        print(result.best_val_loss, result.final_train_loss)
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from optuna_qlearn.lr import QLearningLRScheduler, WarmupCosine
from optuna_qlearn.objectives.text_data import CharCorpus

#: Builds the LR scheduler of one run from its optimizer and configuration.
SchedulerFactory = Callable[[torch.optim.Optimizer, "GPTConfig"], "LRScheduler | ReduceLROnPlateau"]


@dataclass
class GPTConfig:
    """Model and training hyperparameters (nanoGPT's names).

    Attributes:
        vocab_size: Number of symbols; ``None`` takes it from the corpus at training time.
        block_size: Context length.
        n_layer: Number of transformer blocks.
        n_head: Attention heads per block.
        n_embd: Embedding width (a multiple of ``n_head``).
        dropout: Dropout probability in attention, MLP and embeddings.
        batch_size: Sequences per optimizer step.
        max_iters: Optimizer steps per run.
        eval_interval: Evaluate every this many steps (and after the last one).
        eval_iters: Batches per split in one evaluation (a fixed set, the same in every run).
        learning_rate: Peak learning rate of the warmup+cosine baseline.
        min_lr: Learning rate at the end of the cosine decay.
        warmup_iters: Linear-warmup steps.
        lr_decay_iters: Step at which the cosine reaches ``min_lr`` (``None`` = ``max_iters``).
        weight_decay: AdamW weight decay on the weight matrices and embeddings.
        beta1: AdamW beta1.
        beta2: AdamW beta2.
        grad_clip: Gradient-norm clipping threshold (``0`` disables it).
    """

    vocab_size: int | None = None
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    batch_size: int = 16
    max_iters: int = 160
    eval_interval: int = 8
    eval_iters: int = 6
    learning_rate: float = 2e-3
    min_lr: float = 2e-4
    warmup_iters: int = 8
    lr_decay_iters: int | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "block_size",
            "n_layer",
            "n_head",
            "n_embd",
            "batch_size",
            "max_iters",
            "eval_interval",
            "eval_iters",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GPTConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.min_lr <= self.learning_rate:
            raise ValueError(
                f"need 0 < min_lr <= learning_rate, got {self.min_lr} and {self.learning_rate}"
            )
        if self.warmup_iters < 0:
            raise ValueError(f"warmup_iters must be >= 0, got {self.warmup_iters}")

    @classmethod
    def cpu(cls, **overrides: Any) -> GPTConfig:
        """The CPU-sized configuration (a minute or so per run on one core)."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def full(cls, **overrides: Any) -> GPTConfig:
        """nanoGPT's full ``shakespeare_char`` configuration (for a GPU)."""
        base = cls(
            block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2, batch_size=64,
            max_iters=5000, eval_interval=250, eval_iters=200, learning_rate=1e-3, min_lr=1e-4,
            warmup_iters=100, lr_decay_iters=5000,
        )  # fmt: skip
        return dataclasses.replace(base, **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> GPTConfig:
        """A seconds-long configuration for tests and smoke runs."""
        base = cls(
            block_size=16, n_layer=1, n_head=2, n_embd=32, batch_size=8, max_iters=40,
            eval_interval=10, eval_iters=2, warmup_iters=5,
        )  # fmt: skip
        return dataclasses.replace(base, **overrides)

    def base_lr_fn(self) -> Callable[[int], float]:
        """The baseline's LR factor ``step -> lr / learning_rate`` (warmup, then cosine)."""
        return WarmupCosine(
            warmup_iters=self.warmup_iters,
            decay_iters=self.lr_decay_iters or self.max_iters,
            min_factor=self.min_lr / self.learning_rate,
        )


class CharGPT(nn.Module):
    """A decoder-only character-level transformer (nanoGPT architecture).

    Args:
        config: The configuration; ``config.vocab_size`` must be set.

    Raises:
        ValueError: If ``config.vocab_size`` is not set.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.vocab_size is None or config.vocab_size < 1:
            raise ValueError("GPTConfig.vocab_size must be set to build a CharGPT")
        self.config = config
        d = config.n_embd
        self.tok_emb = nn.Embedding(config.vocab_size, d)
        self.pos_emb = nn.Embedding(config.block_size, d)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=d,
                nhead=config.n_head,
                dim_feedforward=4 * d,
                dropout=config.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.n_layer)
        )
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying, as in GPT-2/nanoGPT
        self.register_buffer(
            "causal_mask",
            nn.Transformer.generate_square_subsequent_mask(config.block_size),
            persistent=False,
        )
        # nanoGPT's initialization: N(0, 0.02) for matrices and embeddings, zero biases.
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02
                if name.endswith(("out_proj.weight", "linear2.weight")):
                    std = 0.02 / math.sqrt(2 * config.n_layer)  # residual projections
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def num_params(self) -> int:
        """Number of parameters (the tied head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return logits ``(B, T, vocab)`` and the mean cross-entropy when ``targets`` is given.

        Raises:
            ValueError: If the sequence is longer than ``block_size``.
        """
        _, t = idx.shape
        if t > self.config.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.config.block_size}")
        pos = torch.arange(t, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        causal: torch.Tensor = self.causal_mask  # type: ignore[assignment]
        mask = causal[:t, :t]
        for block in self.blocks:
            x = block(x, src_mask=mask, is_causal=True)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after the context ``idx`` of shape ``(B, T)``."""
        for _ in range(max_new_tokens):
            ctx = idx[:, -self.config.block_size :]
            logits, _ = self(ctx)
            probs = F.softmax(logits[:, -1, :] / temperature, dim=-1)
            nxt = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    def configure_optimizer(self, config: GPTConfig) -> torch.optim.AdamW:
        """AdamW with weight decay on parameters of dimension >= 2 only (nanoGPT's rule)."""
        params = {id(p): p for p in self.parameters()}.values()  # tied weights once
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        return torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=config.learning_rate,
            betas=(config.beta1, config.beta2),
        )


def get_batch(
    data: np.ndarray, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``batch_size`` random windows of ``block_size`` tokens and their next tokens.

    Raises:
        ValueError: If ``data`` is not longer than ``block_size``.
    """
    if len(data) <= block_size:
        raise ValueError(f"split has {len(data)} tokens, need more than block_size={block_size}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator).numpy()
    offsets = np.arange(block_size + 1)
    windows = torch.from_numpy(data[starts[:, None] + offsets].astype(np.int64))
    return windows[:, :-1], windows[:, 1:]


@dataclass
class TrainResult:
    """What one training run measured.

    Attributes:
        iters: Iterations at which an evaluation ran (0 = before training).
        train_losses: Train loss (fixed evaluation batches) at each evaluation.
        val_losses: Validation loss (fixed evaluation batches) at each evaluation.
        lrs: Learning rate of the first parameter group used at every optimizer step.
        best_val_loss: Lowest validation loss seen.
        final_train_loss: Train loss at the last evaluation.
        final_val_loss: Validation loss at the last evaluation.
        train_time: Wall-clock seconds spent in training steps (evaluations excluded).
        tokens_per_sec: Inference throughput of :meth:`CharGPT.generate` (batch 1).
        scheduler_state: The scheduler's ``state_dict()`` at the end (e.g. the Q-table).
        control_losses: Losses on the control batches that drove a Q-controller's decisions
            (empty unless ``control_interval`` was set).
    """

    iters: list[int] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    best_val_loss: float = math.inf
    final_train_loss: float = math.nan
    final_val_loss: float = math.nan
    train_time: float = 0.0
    tokens_per_sec: float = math.nan
    scheduler_state: dict[str, Any] | None = None
    control_losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-friendly values (the scheduler state left out)."""
        out = dataclasses.asdict(self)
        out.pop("scheduler_state")
        return out


def baseline_scheduler(optimizer: torch.optim.Optimizer, config: GPTConfig) -> LambdaLR:
    """The baseline: linear warmup then cosine decay to ``min_lr`` (a :class:`LambdaLR`)."""
    return LambdaLR(optimizer, config.base_lr_fn())


def _make_scheduler(
    schedule: str | SchedulerFactory, optimizer: torch.optim.Optimizer, config: GPTConfig
) -> LRScheduler | ReduceLROnPlateau:
    if callable(schedule):
        return schedule(optimizer, config)
    if schedule == "baseline":
        return baseline_scheduler(optimizer, config)
    if schedule == "constant":
        return LambdaLR(optimizer, lambda _: 1.0)
    if schedule == "qlearning":
        return QLearningLRScheduler(optimizer, base_lr_fn=config.base_lr_fn())
    raise ValueError(
        f"unknown schedule {schedule!r}; expected 'baseline', 'constant', 'qlearning' or a "
        "callable (optimizer, config) -> scheduler"
    )


@torch.no_grad()
def _evaluate(model: CharGPT, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    model.eval()
    losses = [model(x, y)[1] for x, y in batches]
    model.train()
    return float(torch.stack([loss for loss in losses if loss is not None]).mean())


def measure_tokens_per_sec(model: CharGPT, n_tokens: int = 100, seed: int = 0) -> float:
    """Inference throughput: tokens per second of :meth:`CharGPT.generate`, batch 1, no cache."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    start = torch.zeros((1, 1), dtype=torch.long)
    t0 = time.perf_counter()
    model.generate(start, n_tokens, generator=gen)
    elapsed = time.perf_counter() - t0
    model.train()
    return n_tokens / elapsed


def train_chargpt(
    corpus: CharCorpus,
    config: GPTConfig,
    *,
    schedule: str | SchedulerFactory = "baseline",
    seed: int = 0,
    eval_seed: int = 1234,
    on_eval: Callable[[int, float, float], None] | None = None,
    inference_tokens: int = 100,
    control_interval: int = 0,
    control_iters: int = 2,
    control_seed: int = 4321,
) -> TrainResult:
    """Train a :class:`CharGPT` on ``corpus`` and evaluate it every ``eval_interval`` steps.

    The loop follows PyTorch's rule "``scheduler.step()`` after ``optimizer.step()``". A
    :class:`~optuna_qlearn.lr.QLearningLRScheduler` gets ``step(val_loss)`` after the steps
    that end with an evaluation and ``step()`` after the others, so the learning rate it picks
    from an evaluation is the one the next optimizer step uses. A
    :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` gets ``step(val_loss)`` at evaluations
    only; any other scheduler ``step()`` after every optimizer step.

    Evaluations use a fixed set of batches (drawn with ``eval_seed``), the same for every run
    and seed, so that runs are compared on the same data and the loss trend carries no
    resampling noise.

    With ``control_interval > 0`` a :class:`~optuna_qlearn.lr.QLearningLRScheduler` decides
    more often than the evaluations report: every ``control_interval`` steps it gets the loss on
    ``control_iters`` separate fixed validation batches (drawn with ``control_seed``, disjoint in
    sampling from the reported evaluation batches) instead of the evaluation loss. The reported
    losses and ``best_val_loss`` are unchanged, so runs with and without it stay comparable.

    Args:
        corpus: Train/validation data.
        config: Model and training configuration (``vocab_size`` is taken from the corpus
            when it is ``None``).
        schedule: ``"baseline"`` (warmup+cosine), ``"constant"``, ``"qlearning"`` (a default
            :class:`~optuna_qlearn.lr.QLearningLRScheduler` over the baseline) or a callable
            ``(optimizer, config) -> scheduler``.
        seed: Seed of the initialization, the batches and dropout.
        eval_seed: Seed of the fixed evaluation batches.
        on_eval: Called as ``on_eval(iteration, train_loss, val_loss)`` after each evaluation
            (iteration 0 is before training); it may raise, e.g. ``optuna.TrialPruned``.
        inference_tokens: Tokens generated to measure inference speed (``0`` skips it).
        control_interval: Steps between a Q-controller's decisions on the control batches
            (``0``: it decides at the evaluations, on the evaluation loss).
        control_iters: Fixed validation batches of the control loss.
        control_seed: Seed of the control batches.

    Returns:
        The losses, learning rates and timings of the run.

    Raises:
        ValueError: If the configuration's vocabulary size disagrees with the corpus, or
            ``control_interval`` is negative, ``control_iters < 1``, or a control interval
            is given for a scheduler other than a Q-controller.
    """
    if control_interval < 0:
        raise ValueError(f"control_interval must be >= 0, got {control_interval}")
    if control_iters < 1:
        raise ValueError(f"control_iters must be >= 1, got {control_iters}")
    if config.vocab_size is None:
        config = dataclasses.replace(config, vocab_size=corpus.vocab_size)
    elif config.vocab_size < corpus.vocab_size:
        raise ValueError(
            f"config.vocab_size={config.vocab_size} is smaller than the corpus vocabulary "
            f"({corpus.vocab_size})"
        )
    torch.manual_seed(seed)
    model = CharGPT(config)
    optimizer = model.configure_optimizer(config)
    scheduler = _make_scheduler(schedule, optimizer, config)

    eval_gen = torch.Generator().manual_seed(eval_seed)
    eval_batches = {
        split: [
            get_batch(corpus.split(split), config.batch_size, config.block_size, eval_gen)
            for _ in range(config.eval_iters)
        ]
        for split in ("train", "val")
    }
    batch_gen = torch.Generator().manual_seed(seed)
    result = TrainResult()
    control = control_interval > 0
    if control and not isinstance(scheduler, QLearningLRScheduler):
        raise ValueError(
            f"control_interval needs a QLearningLRScheduler, got {type(scheduler).__name__}"
        )
    control_gen = torch.Generator().manual_seed(control_seed)
    control_batches = [
        get_batch(corpus.split("val"), config.batch_size, config.block_size, control_gen)
        for _ in range(control_iters if control else 0)
    ]

    def evaluate(it: int) -> float:
        train_loss = _evaluate(model, eval_batches["train"])
        val_loss = _evaluate(model, eval_batches["val"])
        if not math.isfinite(val_loss):
            val_loss = math.inf
        result.iters.append(it)
        result.train_losses.append(train_loss)
        result.val_losses.append(val_loss)
        result.best_val_loss = min(result.best_val_loss, val_loss)
        if on_eval is not None:
            on_eval(it, train_loss, val_loss)
        return val_loss

    evaluate(0)
    for it in range(1, config.max_iters + 1):
        t0 = time.perf_counter()
        x, y = get_batch(corpus.train, config.batch_size, config.block_size, batch_gen)
        result.lrs.append(float(optimizer.param_groups[0]["lr"]))
        _, loss = model(x, y)
        assert loss is not None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        result.train_time += time.perf_counter() - t0
        is_eval = it % config.eval_interval == 0 or it == config.max_iters
        val_loss = evaluate(it) if is_eval else None
        if control and isinstance(scheduler, QLearningLRScheduler):
            if it % control_interval == 0:
                control_loss = _evaluate(model, control_batches)
                result.control_losses.append(control_loss)
                scheduler.step(control_loss if math.isfinite(control_loss) else math.inf)
            else:
                scheduler.step()
        elif isinstance(scheduler, QLearningLRScheduler):
            scheduler.step(val_loss)
        elif isinstance(scheduler, ReduceLROnPlateau):
            if val_loss is not None:
                scheduler.step(val_loss)
        else:
            scheduler.step()
        if val_loss is not None and not math.isfinite(val_loss):
            break  # diverged; the remaining steps would only produce NaNs

    result.final_train_loss = result.train_losses[-1]
    result.final_val_loss = result.val_losses[-1]
    if inference_tokens > 0:
        result.tokens_per_sec = measure_tokens_per_sec(model, inference_tokens, seed)
    result.scheduler_state = scheduler.state_dict()
    return result
