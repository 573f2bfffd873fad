"""Models of a property against where (or what) is measured, and the loops that decide
what to measure next.

Import the modules directly; this package root stays empty so that ``import atomlens``
never loads torch, Pyro or GPyTorch:

- :mod:`atomlens.active.structured`: structured Gaussian processes (a physical model with
  priors on its parameters as the mean, a GP kernel on the residual), MAP or NUTS;
- :mod:`atomlens.active.hypotheses`: hypothesis learning, a bandit over candidate models;
- :mod:`atomlens.active.physics_models`: physical models to start from.
"""
