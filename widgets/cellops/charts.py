"""Vega-Lite v5 specs of logged metrics, drawn by JupyterLab's own renderer.

The same specs are built in TypeScript (extension/src/sidebar/metricChart.ts): a line of
``value`` over ``step`` coloured by ``version`` (one series per version or execution),
or, when nothing was logged with steps, a line of the last values across the versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .formatting import format_number

VEGA_LITE = "application/vnd.vegalite.v5+json"
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
WIDTH = 420
HEIGHT = 160
# SVG rather than canvas: crisp at any zoom, and its marks can be found in the page.
EMBED_OPTIONS = {"renderer": "svg"}

Series = Sequence[tuple[float, float]]  # (step, value), in logging order


def series_points(points: Iterable[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """Logged points (``{"value", "step"}``) as (step, value); a point logged without a
    step takes its position in the series."""
    return [
        (p["step"] if p.get("step") is not None else i, p["value"]) for i, p in enumerate(points)
    ]


def steps_spec(
    metric: str, series: Mapping[str, Series], width: int = WIDTH, height: int = HEIGHT
) -> dict[str, Any]:
    """``metric`` over its steps, one coloured line per label (a version or execution)."""
    values = [
        {"version": label, "step": step, "value": value}
        for label, points in series.items()
        for step, value in points
    ]
    return {
        "$schema": SCHEMA,
        "description": f"{metric} by step",
        "width": width,
        "height": height,
        "background": "transparent",  # the notebook's or sidebar's own, in any theme
        "data": {"values": values},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {
                "field": "step",
                "type": "quantitative",
                "title": "step",
                "axis": step_axis([step for _, points in series.items() for step, _ in points]),
            },
            "y": value_encoding(metric),
            "color": {
                "field": "version",
                "type": "nominal",
                "title": None,
                "sort": None,  # the order of the series as given
                "legend": None if len(series) < 2 else {"orient": "bottom"},
            },
        },
    }


def across_spec(
    metric: str, values: Sequence[tuple[str, float]], width: int = WIDTH, height: int = HEIGHT
) -> dict[str, Any]:
    """The value of ``metric`` across labelled versions or executions, in their order."""
    return {
        "$schema": SCHEMA,
        "description": f"{metric} across versions",
        "width": width,
        "height": height,
        "background": "transparent",  # the notebook's or sidebar's own, in any theme
        "data": {"values": [{"version": label, "value": value} for label, value in values]},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {
                "field": "version",
                "type": "ordinal",
                "title": None,
                "sort": None,  # the order of the versions as given
                "axis": {"labelAngle": 0, "labelOverlap": True},
            },
            "y": value_encoding(metric),
        },
    }


MAX_STEP_TICKS = 8


def step_axis(steps: Iterable[float]) -> dict[str, Any]:
    """Ticks at the logged steps when they are few (the renderer would put ticks at
    half steps otherwise), else whole-number ticks."""
    distinct = sorted(set(steps))
    ticks = {"values": distinct} if len(distinct) <= MAX_STEP_TICKS else {"tickMinStep": 1}
    return {**ticks, "format": "d"}  # steps are whole numbers: "1", not "1.0"


def value_encoding(metric: str) -> dict[str, Any]:
    """The y axis: the metric's values, not from zero; ticks to 6 significant digits, so
    equal values (a flat line) read as themselves rather than rounded."""
    return {
        "field": "value",
        "type": "quantitative",
        "title": metric,
        "scale": {"zero": False},
        "axis": {"format": "~g"},
    }


def mimebundle(spec: Mapping[str, Any], text: str) -> dict[str, Any]:
    """A display_data output: the chart, with ``text`` where no renderer draws it."""
    return {
        "output_type": "display_data",
        "data": {VEGA_LITE: dict(spec), "text/plain": text},
        "metadata": {VEGA_LITE: {"embed_options": dict(EMBED_OPTIONS)}},
    }


def describe_steps(metric: str, series: Mapping[str, Series]) -> str:
    """The chart in words: each label's last step and value."""
    parts = [
        f"{label}: {len(points)} steps, last {format_number(float(points[-1][1]))} at step "
        f"{format_number(float(points[-1][0]))}"
        for label, points in series.items()
        if points
    ]
    return f"{metric} by step — " + "; ".join(parts)


def describe_across(metric: str, values: Sequence[tuple[str, float]]) -> str:
    return f"{metric} — " + "; ".join(f"{label}: {format_number(float(v))}" for label, v in values)
