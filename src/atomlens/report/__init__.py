"""Figures and reports. Matplotlib is imported inside the functions, with the Agg backend."""

from atomlens.report.figures import plot_atoms, save_atoms_png

__all__ = ["plot_atoms", "save_atoms_png"]
