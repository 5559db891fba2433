"""The window's kernel inspection: the hover label, the clicked kernel's
weight map and numbers, the views' captions and view 4's mode."""

from __future__ import annotations

from PySide6.QtCore import Signal

from ..core.model import SmoeModel
from .control.jobs import InspectResult
from .control.lecture_steps import stage_titles
from .control.session import view_captions
from .views.kernel_panel import kernel_kind_text
from .window_training import TrainingHandlers

__all__ = ["HOVER_RADIUS_PX", "InspectHandlers"]

#: How near the pointer (screen px) a kernel centre is found.
HOVER_RADIUS_PX = 12


class InspectHandlers(TrainingHandlers):
    """Hover, click-to-inspect and captions, as the window shows them.

    Signals
    -------
    gate_map_shown(int)
        Kernel index whose weight map is now highlighted.
    """

    gate_map_shown = Signal(int)

    _pointer: tuple[str, float, float] | None

    def current_model(self) -> SmoeModel | None:
        """The model shown in the kernel and reconstruction views."""
        return self.session.shown_model

    def _hover_radius(self, view: str) -> float:
        px, _py = self.stages.views[view].getViewBox().viewPixelSize()
        return max(1.5, HOVER_RADIUS_PX * float(px))

    def inspect_at(self, view: str, x: float, y: float) -> int | None:
        """Show the numbers of the kernel near ``(x, y)`` (px) in ``view``, in a
        label next to the pointer."""
        target = self.stages.views.get(view)
        if target is None or view not in ("kernels", "reconstruction"):
            return None
        found = self.session.kernel_near(x, y, self._hover_radius(view))
        if found is None:
            target.hide_hover()
            return None
        k, info = found
        first, _, rest = info.short_text().partition("\n")
        head, _, tail = first.partition(":")
        kind = kernel_kind_text(self.session.kernel_kind(k), short=True)
        target.show_hover(
            x, y, f"{head} · {kind}\n{tail.strip()}\n{rest}"
        )  # narrow: what it is on a line
        self.inspect_label.setText(info.text().replace("\n", " · "))
        return k

    def _on_mouse_moved(self, view: str, x: float, y: float) -> None:
        for name in ("kernels", "reconstruction"):
            if name != view:
                self.stages.views[name].hide_hover()
        self._pointer = (view, x, y)
        self.inspect_at(view, x, y)

    def _on_pointer_left(self, view: str) -> None:
        if self._pointer is not None and self._pointer[0] == view:
            self._pointer = None

    def refresh_hover(self) -> None:
        """SessionView: the model shown changed; the label follows it."""
        if self._pointer is None:
            for name in ("kernels", "reconstruction"):
                self.stages.views[name].hide_hover()
            return
        self.inspect_at(*self._pointer)

    def select_kernel_at(self, view: str, x: float, y: float) -> int | None:
        """Inspect the kernel near ``(x, y)``, or clear the inspection."""
        if self.session.shown_model is None or view not in ("kernels", "reconstruction"):
            return None
        found = self.session.kernel_near(x, y, self._hover_radius(view))
        k = None if found is None else found[0]
        self.session.select_kernel(k)
        if k is not None:
            self.show_status(f"inspecting kernel {k}…", 3000)
        return k

    def show_inspection(self, result: InspectResult | None) -> None:
        """SessionView: the inspected kernel (None: clear it and the hover labels)."""
        if result is None:
            self.stages.clear_inspection()
            self.kernel_panel.show_result(None)
            return
        self.stages.show_inspection(result)
        model = self.session.shown_model
        image = self.session.image
        self.kernel_panel.show_result(
            result,
            self.session.partner_of(result.index),
            model.n_kernels if model is not None else 1,
            float(image.shape[0] * image.shape[1]) if image is not None else 1.0,
            self.session.kernel_kind(result.index),
        )
        self.gate_map_shown.emit(result.index)

    def show_captions(self, stages: str, model: str) -> None:
        """SessionView: say in the titles which result each view shows (views
        1-3 say when their stage has no meaning for the method)."""
        result = self.session.stage_result
        if result is not None and stages:
            init = result.init
            n_sp = 0 if init.segment_map is None else int(init.segment_map.max()) + 1
            captions = view_captions(init.method, stages, n_sp)
            self.stages.set_titles(stage_titles(init.method))
        else:
            captions = {name: stages for name in ("edges", "segments", "reduced")}
        self.stages.set_captions({**captions, "kernels": model, "reconstruction": model})

    def set_kernel_mode(self, mode: str) -> None:
        """Draw view 4 as centres, ellipses or gate territories."""
        self.stages.set_kernel_mode(mode)
        self.session.set_kernel_mode(mode)
