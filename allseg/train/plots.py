"""Training curves as PNG line graphs."""
import matplotlib

matplotlib.use("Agg")  # files only: no display needed on servers or CI
import matplotlib.pyplot as plt  # noqa: E402

from allseg.core.files import replace_atomically  # noqa: E402


def plot_history(history: dict, names, title, path):
    """One line per metric in ``names`` and its ``val_`` twin, against the epoch."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name in names:
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in history and history[key]:
                epochs = range(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], style, marker=".", label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with replace_atomically(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
