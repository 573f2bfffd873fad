"""The live automated-experiment loop: find atoms in frames as they arrive, watch for drift
of the imaging conditions, and act on it without stopping (ELIT's "stream" step).

For every frame the active ensemble finds the atoms and the frame gets an
**out-of-distribution score** (:func:`ood_score`): the ensemble's mean epistemic
uncertainty (mutual information between the members [nats]) over the pixels the ensemble
takes for atoms or their neighbourhood (mean foreground probability ≥ ``foreground``).
It needs no labels and costs nothing beyond the prediction :func:`atomlens.pipeline.finder.find`
already makes. Members trained apart agree on data like their training data and disagree
off it; how far the score rises under a film or a lower dose is measured by
``benchmarks/stream_latency.py`` (``docs/elit.md``, "stream: a live experiment").
Background pixels are left out so that the score does not depend on how densely the frame
is covered with atoms. An ensemble of one has no epistemic part; it is scored by its
predictive entropy instead.

**Baseline.** The score is read as a ratio to the level the same ensemble shows on
training-like data, measured once before the first frame and again whenever the active
ensemble changes:

- ``"simulated"`` (default): a few noise-realistic frames (``baseline_dose`` e⁻/Å², the
  default probe) of the material the ensemble was trained on (its provenance
  ``"materials"``), simulated **at the stream's pixel size** and field of view (≤
  ``baseline_side`` px). It needs nothing from the user and is never itself drifted. The
  stream's sampling, not the model's, is used because resampling alone changes the level
  (by how much: ``docs/elit.md``), and the ratio must reflect the imaging conditions only.
- ``"reference"``: frames the user passes (``reference=``), known to be good, at the
  stream's pixel size: best when the specimen is not the training material.
- ``"first"``: the first ``baseline_frames`` frames of the stream itself, for when neither
  applies; it assumes the run starts under good conditions, and no drift is looked for
  until they are in.

**Decisions.** A frame is *over* when its score exceeds ``drift_ratio`` × baseline. After
``patience`` consecutive frames over, drift is declared (once per episode; the episode
ends after ``patience`` frames under) and, by ``on_drift``:

- ``"select"``: :func:`atomlens.elit.select.select` ranks the members on the drifted
  frames of the recent window and the stream switches, before the next frame, to the
  ``n_best`` best (the choice is among all members, not only the active ones);
- ``"adapt"``: :func:`atomlens.elit.adapt.adapt` of (a copy of) the active ensemble on
  those frames is submitted to an executor (a ``ThreadPoolExecutor`` by default, or a
  ``dask.distributed.Client``) and the stream goes on; when it finishes, the adapted
  ensemble is swapped in at the next frame. One adaptation at a time;
- ``"both"``: select now, then adapt the selected members in the background;
- ``"none"``: only report.

Each change of the active ensemble re-measures the baseline and starts the drift count
afresh; an adapted ensemble's baseline frames are scored in the adaptation's own job (the
baseline decision says ``measured_in="background"``), so the frame that swaps it in does
not wait for them (unless those frames changed meanwhile: then the loop scores them).
Every decision (baseline, drift, recovery, switch, adaptation launched, finished
or failed, skipped frame, rejection by ``p_real`` stopped or resumed) is logged and kept,
with its evidence, in :attr:`Stream.decisions`.

Modules, one job each: ``config`` (:class:`StreamConfig`), ``scoring`` (the OOD score, the
baseline level and the drift count), ``source`` and ``watcher`` (frames from arrays, a file
or a growing directory), ``members`` (choosing members, the ``p_real`` they can apply),
``background`` (the adaptation running beside the loop), ``record`` and ``writer``
(:class:`FrameRecord` and the files written into ``out``), and ``runner``
(:class:`Stream`, which ties them together, and :func:`stream`).
"""

from atomlens.elit.stream.config import StreamConfig
from atomlens.elit.stream.record import FrameRecord
from atomlens.elit.stream.runner import Stream, stream
from atomlens.elit.stream.scoring import ood_score

__all__ = ["FrameRecord", "Stream", "StreamConfig", "ood_score", "stream"]
