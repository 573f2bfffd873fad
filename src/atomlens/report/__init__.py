"""Figures and reports. Matplotlib is imported inside the functions, with the Agg backend."""

from atomlens.report.active_figures import (
    explore_figures,
    plot_best_so_far,
    plot_explore_maps,
    plot_explore_path,
)
from atomlens.report.analysis_figures import (
    plot_clusters,
    plot_strain_map,
    save_clusters_png,
    save_strain_map_png,
)
from atomlens.report.calibration_figures import (
    evaluation_pngs,
    plot_reliability,
    plot_z_histogram,
    save_evaluation_figures,
)
from atomlens.report.calibration_html import add_evaluation_to_report, evaluation_html
from atomlens.report.figures import figure_to_png, plot_atoms, save_atoms_png

__all__ = [
    "add_evaluation_to_report",
    "evaluation_html",
    "evaluation_pngs",
    "explore_figures",
    "figure_to_png",
    "plot_atoms",
    "plot_best_so_far",
    "plot_clusters",
    "plot_explore_maps",
    "plot_explore_path",
    "plot_reliability",
    "plot_strain_map",
    "plot_z_histogram",
    "save_atoms_png",
    "save_clusters_png",
    "save_evaluation_figures",
    "save_strain_map_png",
]
