"""xiref: a NumPy-from-scratch reference implementation of XiNet (online training and pruning of deep-RL
networks with Bernoulli unit gates). See docs/METHOD.md for the equations the code cites."""
__version__ = "0.1.0"
