"""ELIT: ensemble learning and iterative training for new imaging conditions without labels
(Ghosh, Sumpter, Dyck, Kalinin, Ziatdinov, npj Comput. Mater. 7, 100 (2021)).

:func:`select` ranks the members of an ensemble on unlabeled frames. Iterative training on
the ensemble's own confident atoms (``adapt``) and the live loop (``stream``) follow.
"""

from atomlens.elit.select import Selection, select

__all__ = ["Selection", "select"]
