"""Bar plots drawn on the server as SVG: the geometry here, the markup in
templates/admin/consult/_plot.html (escaped like any template), the numbers
beside each plot in a table and as a text alternative."""

from dataclasses import dataclass, field

WIDTH, HEIGHT = 480, 220
LEFT, BOTTOM, TOP = 44, 46, 12
COLOURS = ("#2b6cb0", "#dd6b20")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    tip: str


@dataclass(frozen=True)
class Label:
    x: float
    text: str


@dataclass(frozen=True)
class Plot:
    """One plot: `metric` names it for pages and tests (`data-metric`)."""

    metric: str
    title: str
    unit: str
    series: list[str]
    rows: list[tuple[str, list[float | None]]]
    bars: list[Bar]
    labels: list[Label]
    top: float
    description: str
    legend: list[tuple[str, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    baseline: int = HEIGHT - BOTTOM
    left: int = LEFT


def number(value: float | None) -> str:
    """A figure as the page writes it: "—" when unknown, else at most 1 decimal."""
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def bar_plot(
    *,
    metric: str,
    title: str,
    unit: str,
    rows: list[tuple[str, list[float | None]]],
    series: list[str],
) -> Plot:
    """Grouped bars: one group per row, one bar per series; unknown values
    (None) draw no bar. The scale runs from 0 to the largest value."""
    top = max([v for _, values in rows for v in values if v is not None] or [0]) or 1
    span = WIDTH - LEFT - 8
    group = span / max(len(rows), 1)
    bar_width = group * 0.8 / max(len(series), 1)
    usable = HEIGHT - BOTTOM - TOP
    bars, labels = [], []
    for i, (label, values) in enumerate(rows):
        x0 = LEFT + i * group + group * 0.1
        labels.append(Label(x0 + group * 0.4, label))
        for j, value in enumerate(values):
            if value is None:
                continue
            height = usable * value / top
            bars.append(
                Bar(
                    x=round(x0 + j * bar_width, 1),
                    y=round(HEIGHT - BOTTOM - height, 1),
                    width=round(bar_width * 0.9, 1),
                    height=round(height, 1),
                    colour=COLOURS[j % len(COLOURS)],
                    tip=f"{label}, {series[j]}: {number(value)} {unit}".strip(),
                )
            )
    parts = [
        f"{label}: "
        + ", ".join(
            f"{name} {number(v)}" for name, v in zip(series, values, strict=True)
        )
        for label, values in rows
    ]
    description = f"{title} ({unit}). " + ("; ".join(parts) if parts else "No data.")
    legend = [(name, COLOURS[j % len(COLOURS)]) for j, name in enumerate(series)]
    return Plot(
        metric,
        title,
        unit,
        series,
        rows,
        bars,
        labels,
        top,
        description,
        legend=legend if len(series) > 1 else [],
    )
