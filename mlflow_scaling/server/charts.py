"""The exponent-history figure of the family page, drawn server-side as a PNG.

Matplotlib's object API on the Agg canvas (no pyplot, no global state), so concurrent requests
in the server's threads do not share a figure. The figure carries no user text (no family or run
names), only the exponent symbols and numbers.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from .data import History

LABELS = {
    "alpha": "α (parameters)",
    "beta": "β (data)",
    "a": "a  (N_opt ∝ C^a)",
    "b": "b  (D_opt ∝ C^b)",
}
STYLES = {"alpha": "-o", "beta": "-s", "a": "--^", "b": "--v"}


def history_png(history: Sequence[History], *, width: float = 7.5, height: float = 3.2) -> bytes:
    """Fitted exponents against the refit number, as PNG bytes (empty when nothing to plot)."""
    series = [h for h in history if h.points]
    if not series:
        return b""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for h in series:
        steps = [p[0] for p in h.points]
        values = [p[2] for p in h.points]
        ax.plot(steps, values, STYLES.get(h.name, "-o"), label=LABELS.get(h.name, h.name), ms=4)
    ax.set_xlabel("refit number (metric step)")
    ax.set_ylabel("fitted exponent")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
