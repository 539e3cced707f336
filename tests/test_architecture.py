"""The RL core imports no Optuna: it runs with ``optuna`` made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_rl_core_runs_without_optuna() -> None:
    code = textwrap.dedent(
        """
        import sys

        class NoOptuna:
            def find_spec(self, name, path=None, target=None):
                if name == "optuna" or name.startswith("optuna."):
                    raise ImportError(f"optuna is blocked: {name}")
                return None

        sys.meta_path.insert(0, NoOptuna())
        import numpy as np
        from optuna_qlearn._core import agent, checks, prior, qlearning, rewards
        from optuna_qlearn._core.agent import AgentConfig, QLearningAgent, Step
        from optuna_qlearn._core.qlearning import MoveSet

        agent_ = QLearningAgent(MoveSet((5, 5), step_sizes=(1, 2)), AgentConfig(n_startup=2))
        rng = np.random.RandomState(0)
        head = None
        for number in range(12):
            p = agent_.propose(rng, head)
            value = float(sum((i - 3) ** 2 for i in p.state))
            agent_.learn(Step(number, p.state, value, p.path, p.step))
            head = (number, p.state, p.step)
        assert agent_.table.q, "learned nothing"
        # The learned policy: its agent, a short pre-training and a policy file.
        from optuna_qlearn._core.learned import PolicyAgent, PolicyConfig
        from optuna_qlearn._core.policy import PolicyNetwork
        from optuna_qlearn._core.training import TrainingConfig, train

        net, _ = train(seed=0, config=TrainingConfig(episodes=3, budgets=(20,)))
        policy = PolicyAgent(net, PolicyConfig(alpha=0.2), (5, 5), (False, True), ("a", "b"))
        for number in range(12):
            p = policy.propose(rng)
            policy.learn(number, p.state, float(sum(p.state)), p.decision)
        assert sum(policy.updates.values()) == 11, policy.updates
        assert not [m for m in sys.modules if m == "optuna" or m.startswith("optuna.")]
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        else:
            from optuna_qlearn._core import dqn  # noqa: F401
        assert "optuna" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
