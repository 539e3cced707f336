"""The reinforcement-learning core: no Optuna in here.

Tables, moves and epsilon schedules (:mod:`._core.qlearning`), rewards
(:mod:`._core.rewards`), the global density model (:mod:`._core.prior`), the
agent that learns from transitions and proposes moves (:mod:`._core.agent`) and
the deep Q-network update with its replay memory (:mod:`._core.dqn`, needs
PyTorch). States are tuples of grid indices; the Optuna glue
(:mod:`optuna_qlearn._grid`, :mod:`optuna_qlearn._replay`) translates trials into
them. ``tests/test_architecture.py`` imports this package with ``optuna`` made
unimportable.
"""
