"""Take the screenshots of docs/gui.md: the real window in each kernel-view
mode, inspecting a kernel, training, and after Compare.

Run (a display is needed; Xvfb gives one):

    xvfb-run -s "-screen 0 1600x1000x24" \
        .venv/bin/python benchmarks/gui_screenshots.py --size 1600x1000
    xvfb-run -s "-screen 0 1280x720x24" \
        .venv/bin/python benchmarks/gui_screenshots.py --size 1280x720

Writes ``docs/screenshots/<name>-<W>x<H>.png`` (``--out`` to change the folder;
``--only NAME ...`` for some), optimised to 256-colour PNGs, and prints each
path.  The names: ``kernels-centres``, ``kernels-ellipses``,
``kernels-territories``, ``kernels-territories-filled``, ``focus``,
``presentation``, ``lecture-training``, ``inspect``, ``training``, ``trained``, ``compare``,
``compare-side-by-side``.  Uses the bundled ``parrots.png`` sample and short
trainings (``--train-seconds``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from smoe_gui.core.io.fileio import write_png  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.views.view_items import widget_rgb  # noqa: E402

#: What the screenshots show: the default parameters, except a short training.
PARAMS = Params(tile_steps=20)


def spin(app: QApplication, until: Callable[[], bool], timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if until():
            return True
        time.sleep(0.01)
    app.processEvents()
    return False


def settle(app: QApplication, seconds: float = 0.4) -> None:
    spin(app, lambda: False, seconds)


def optimise_png(path: Path) -> None:
    """Rewrite ``path`` as a 256-colour palette PNG, optimised (a screenshot
    of the window has few colours: a fifth of the size, no visible banding)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    small.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1600x1000", help="window size WxH")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--train-seconds", type=float, default=10.0)
    parser.add_argument("--only", nargs="*", help="names to take (default: all)")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    want = set(args.only or [])

    app = QApplication.instance() or QApplication(sys.argv[:1])
    ini = Path(tempfile.mkdtemp()) / "settings.ini"
    window = create_main_window(
        ROOT / "resources" / "samples" / "parrots.png",
        settings=QSettings(str(ini), QSettings.Format.IniFormat),
    )
    window.resize(w, h)
    window.show()
    window.move(0, 0)
    window.panel.set_params(PARAMS.replace(time_budget=args.train_seconds), emit=False)
    window.recompute()
    spin(app, lambda: window.stages.views["edges"].shown_id == window.latest_request, 120)
    settle(app, 1.0)

    def shot(name: str, widget: QWidget | None = None) -> None:
        if want and name not in want:
            return
        settle(app)
        path = out / f"{name}-{w}x{h}.png"
        write_png(path, widget_rgb(widget if widget is not None else window))
        optimise_png(path)
        print(path)

    stages = window.stages
    session = window.session

    def mode(m: str) -> None:
        stages.kernel_mode_box.setCurrentIndex(["centres", "ellipses", "territories"].index(m))
        rid = session._latest_snapshot
        spin(
            app,
            lambda: (
                session._latest_snapshot != rid
                and stages.views["kernels"].shown_id == session._latest_snapshot
            ),
            60,
        )

    mode("centres")
    shot("kernels-centres")
    mode("ellipses")
    shot("kernels-ellipses")
    mode("territories")
    shot("kernels-territories")
    stages.set_territory_fill(True)
    shot("kernels-territories-filled")
    stages.set_territory_fill(False)

    # focus: view 4 over the stage area (key 4), the panel folded to its strip (Ctrl+\)
    mode("ellipses")
    window.stage_focus.toggle_key("4")
    window.panel_strip.toggle()
    settle(app, 0.6)
    window.fit_views()
    shot("focus")
    window.panel_strip.toggle()
    window.stage_focus.back()
    settle(app, 0.4)

    # the presentation layout of the lecture, step 4 of the edge lecture
    def lecture_shot(name: str, steps: int) -> None:
        for _ in range(steps):
            window.lecture.next()
        spin(app, lambda: not session.render_pending(), 60)
        settle(app, 0.8)
        window.fit_views()
        shot(name)

    window.lecture.set_active(True)
    lecture_shot("presentation", 3)
    lecture_shot("lecture-training", 2)  # the last step, the training, with its caption
    window.lecture.set_active(False)
    settle(app, 0.6)
    window.fit_views()

    # inspect a kernel: the edge pair nearest the image centre
    model = session.shown_model
    assert model is not None
    centre = np.array([model.width / 2, model.height / 2])
    k = int(np.argmin(np.hypot(*(model.mu[:40] - centre).T))) if model.n_kernels else 0
    x, y = (float(v) for v in model.mu[k])
    mode("ellipses")
    # zoomed in on it (the linked views follow), so that its weight map reads
    stages.views["edges"].getViewBox().setRange(
        xRange=(x - 60, x + 60), yRange=(y - 40, y + 40), padding=0
    )
    shown: list[int] = []
    window.gate_map_shown.connect(shown.append)
    window.select_kernel_at("kernels", x, y)
    spin(app, lambda: bool(shown), 30)
    window._on_mouse_moved("kernels", x + 1, y + 1)
    shot("inspect")
    window.session.select_kernel(None)
    window.fit_views()

    # training: the tile phase (whole-image PSNR curve) and the end
    if not want or {"training", "trained"} & want:
        window.start_training()
        spin(app, lambda: len(window.plots.data["train"].whole_image()) > 6, 60)
        settle(app, 1.5)
        shot("training")
        spin(app, lambda: not window.is_training(), args.train_seconds + 60)
        settle(app, 1.0)
        shot("trained")

    # Compare: both curves, the run switch, and the reconstructions side by side
    if not want or {"compare", "compare-side-by-side"} & want:
        window.panel.set_params(PARAMS.replace(time_budget=args.train_seconds / 2), emit=False)
        window.start_compare()
        spin(app, lambda: not window.is_training(), args.train_seconds + 120)
        settle(app, 1.5)
        shot("compare")
        side = window.show_side_by_side()
        if side is not None:
            side.resize(min(w, 1400), min(h, 560))
            settle(app, 1.0)
            shot("compare-side-by-side", side)
            side.close()
    window.close()
    os.remove(ini)


if __name__ == "__main__":
    main()
