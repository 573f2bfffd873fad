"""Helpers every package uses and no domain logic: argument validation, atomic writes,
device policy, JSON (de)serialisation of configs.

Kept apart (as scikit-image's ``_shared``) so that no package reaches into another's
private names.
"""
