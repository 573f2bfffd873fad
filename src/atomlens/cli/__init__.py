"""The ``atomlens`` command line: thin wrappers over the public Python functions.

One module per command group (``simulate``, ``evaluate``, ``train``, ``find``, ``analyze``,
``elit``: adapt, select and stream, ``vae``: vae, im2spec and spec2im, ``explore``,
``hypotheses``, ``live``: live and replay, ``demo``: demo and models);
:mod:`atomlens.cli.app` holds the Typer app, the global options and the error handling. Each
command parses its options, calls one library function and prints. The command modules
import only Typer at the top: everything heavy (torch, pandas, the library) is imported
inside the command functions, after parsing, so that ``atomlens --help`` is instant.
"""

from atomlens.cli import (
    analyze,
    demo,
    elit,
    evaluate,
    explore,
    find,
    hypotheses,
    live,
    simulate,
    train,
    vae,
)
from atomlens.cli.app import app, main

__all__ = ["app", "main"]

# the commands, in the order `atomlens --help` lists them
app.command()(simulate.simulate)
app.command()(simulate.materials)
app.command()(evaluate.evaluate)
app.command()(train.train)
app.command()(find.find)
app.command()(analyze.analyze)
app.command()(elit.adapt)
app.command("select")(elit.select_members)
app.command("stream")(elit.stream_frames)
app.command()(vae.vae)
app.command()(vae.im2spec)
app.command()(vae.spec2im)
app.command()(explore.explore)
app.command()(hypotheses.hypotheses)
app.command()(live.live)
app.command()(live.replay)
app.command()(demo.demo)
app.command()(demo.models)
