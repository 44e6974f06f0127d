"""A custom-painted arc gauge: big numbers inside a 270-degree arc, a coloured badge and details.

Everything is drawn with vectors in logical pixels, so it stays crisp at any device pixel ratio,
and text sizes follow the widget's size, so a gauge stays readable from across a desk.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.gauges.readings import EMPTY_POOL, GaugeReading

ARC_START_DEGREES = 225  # the arc opens downwards: from 7:30 clockwise round to 4:30
ARC_SPAN_DEGREES = 270
MIN_TEXT_PIXELS = 9


class Gauge(QWidget):
    """Shows one :class:`GaugeReading`; repaints only when the reading changes."""

    def __init__(self, reading: GaugeReading = EMPTY_POOL, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._reading = reading
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self._describe()

    @property
    def reading(self) -> GaugeReading:
        return self._reading

    def set_reading(self, reading: GaugeReading) -> None:
        if reading != self._reading:
            self._reading = reading
            self._describe()
            self.update()

    def _describe(self) -> None:
        reading = self._reading
        summary = f"{reading.title}: {reading.headline}, {reading.badge}"
        self.setAccessibleName(summary)
        self.setToolTip("\n".join((summary, *reading.details)))

    def sizeHint(self) -> QSize:
        return QSize(220, 260)

    def minimumSizeHint(self) -> QSize:
        return QSize(150, 180)

    def paintEvent(self, event: QPaintEvent) -> None:
        reading = self._reading
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text_colour = palette.color(QPalette.ColorRole.WindowText)
        muted = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
        accent = QColor(reading.colour)
        secondary = QColor(text_colour)
        secondary.setAlphaF(0.65)

        bounds = QRectF(self.rect()).adjusted(6, 6, -6, -6)
        unit = min(bounds.width(), bounds.height() / 1.25)
        line = max(unit * 0.075, 11.0)

        title_rect = QRectF(bounds.left(), bounds.top(), bounds.width(), line * 1.4)
        self._text(painter, title_rect, reading.title, line, text_colour, bold=True)

        # Under the arc: the badge and the details, three lines of them at least.
        below = line * (0.7 + 1.3 * max(len(reading.details), 3))
        side = min(bounds.width(), bounds.height() - title_rect.height() - below)
        side = max(side, unit * 0.4)
        arc_rect = QRectF(0, 0, side, side)
        arc_rect.moveCenter(bounds.center())
        arc_rect.moveTop(title_rect.bottom() + line * 0.2)
        thickness = side * 0.09
        ring = arc_rect.adjusted(thickness / 2, thickness / 2, -thickness / 2, -thickness / 2)
        track = QColor(muted)
        track.setAlpha(70)
        self._arc(painter, ring, track, thickness, 1.0)
        self._arc(painter, ring, accent, thickness, reading.fraction)

        # The numbers sit inside the ring, narrower than it where the ring curves in.
        inner = QRectF(0, 0, ring.width() * 0.72, ring.height() * 0.52)
        inner.moveCenter(ring.center())
        inner.moveTop(ring.top() + side * 0.16)
        value_rect = QRectF(inner.left(), inner.top(), inner.width(), inner.height() * 0.62)
        self._text(painter, value_rect, reading.value, side * 0.24, text_colour, bold=True)
        capacity_rect = QRectF(
            inner.left(), value_rect.bottom(), inner.width(), inner.height() * 0.38
        )
        self._text(painter, capacity_rect, f"/ {reading.capacity}", side * 0.11, secondary)

        badge_rect = QRectF(
            bounds.left(), arc_rect.bottom() - side * 0.12, bounds.width(), line * 1.6
        )
        self._text(painter, badge_rect, reading.badge, line * 1.15, accent, bold=True)
        top = badge_rect.bottom()
        for detail in reading.details:
            rect = QRectF(bounds.left(), top, bounds.width(), line * 1.3)
            self._text(painter, rect, detail, line, text_colour)
            top = rect.bottom()
        painter.end()

    @staticmethod
    def _arc(
        painter: QPainter, rect: QRectF, colour: QColor, width: float, fraction: float
    ) -> None:
        if fraction <= 0:
            return
        pen = QPen(colour, width)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        span = -ARC_SPAN_DEGREES * min(fraction, 1.0)
        painter.drawArc(rect, ARC_START_DEGREES * 16, round(span * 16))

    @staticmethod
    def _text(
        painter: QPainter,
        rect: QRectF,
        text: str,
        size: float,
        colour: QColor,
        *,
        bold: bool = False,
    ) -> None:
        """Draw ``text`` centred in ``rect`` at ``size`` pixels, shrunk until it fits the width,
        and elided where it does not fit at the smallest size (the tooltip has all of it)."""
        font = QFont(painter.font())
        font.setBold(bold)
        font.setPixelSize(max(round(size), MIN_TEXT_PIXELS))
        width = QFontMetricsF(font).horizontalAdvance(text)
        if width > rect.width() > 0:
            font.setPixelSize(max(int(font.pixelSize() * rect.width() / width), MIN_TEXT_PIXELS))
            metrics = QFontMetricsF(font)
            text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, rect.width())
        painter.setFont(font)
        painter.setPen(colour)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
