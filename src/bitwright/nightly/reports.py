"""A night for CI systems and for people: JUnit XML and a Markdown summary.

JUnit: one ``testsuite`` per variation (the control first), one ``testcase`` per stage; a
stage that differs is a ``failure``, one that could not be rebuilt an ``error``, and a
variation this machine cannot apply is one ``skipped`` test case saying why. Markdown: the
stage-by-variation table, what each variation changed, the tensors that moved, and since when
each failing stage has been failing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from bitwright.nightly.history import Since
from bitwright.nightly.night import Night, Result

__all__ = ["junit_xml", "night_markdown"]


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def junit_xml(night: Night) -> bytes:
    """The night as a JUnit XML document (UTF-8)."""
    suites = ET.Element("testsuites", {"name": "bitwright nightly"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for variation in night.variations:
        suite = ET.SubElement(
            suites, "testsuite", name=f"nightly.{variation.name}", timestamp=night.night
        )
        properties = ET.SubElement(suite, "properties")
        for prop, text in (
            ("commit", night.commit),
            ("release", night.release),
            ("kind", variation.kind),
            ("changes", "; ".join(variation.changes) or "none"),
        ):
            ET.SubElement(properties, "property", name=prop, value=text)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        share = variation.seconds / max(len(variation.stages), 1)
        for stage in variation.stages:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"nightly.{variation.name}",
                name=stage.stage,
                time=_seconds(share),
            )
            counts["tests"] += 1
            if stage.result is Result.DIFFERENT:
                counts["failures"] += 1
                failure = ET.SubElement(case, "failure", message=stage.detail, type="DIFFERENT")
                failure.text = "\n".join(m.describe() for m in stage.moved) or stage.detail
            elif stage.result is Result.FAILED:
                counts["errors"] += 1
                ET.SubElement(case, "error", message=stage.detail, type="FAILED")
            elif stage.result is Result.WITHIN_TOLERANCE:
                out = ET.SubElement(case, "system-out")
                out.text = f"WITHIN_TOLERANCE: {stage.detail}"
        suite.set("time", _seconds(variation.seconds))
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    if night.skipped:
        suite = ET.SubElement(suites, "testsuite", name="nightly.not-applied", time="0.000")
        for skipped in night.skipped:
            case = ET.SubElement(
                suite, "testcase", classname="nightly.not-applied", name=skipped.name, time="0"
            )
            ET.SubElement(case, "skipped", message=skipped.reason)
        for key, value in (("tests", len(night.skipped)), ("skipped", len(night.skipped))):
            suite.set(key, str(value))
            totals[key] += value
        suite.set("failures", "0")
        suite.set("errors", "0")
    for key, value in totals.items():
        suites.set(key, str(value))
    ET.indent(suites)
    body: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def night_markdown(night: Night, since: Sequence[Since], history_nights: int) -> str:
    """The night's summary in Markdown (for a CI run's summary page)."""
    lines = [f"# Nightly reproducibility: {night.result.value}", ""]
    lines += [
        f"- release: `{night.release}`",
        f"- commit: `{night.commit}`",
        f"- night: {night.night} to {night.finished}",
        f"- machine: {_cell(', '.join(f'{k} {v}' for k, v in sorted(night.environment.items())))}",
        f"- history: {history_nights} night(s)",
        "",
    ]
    if since:
        lines += ["## Since when", ""]
        lines += [f"- {_cell(s.describe())}" for s in since]
        lines.append("")
    header = "| stage | " + " | ".join(f"`{v.name}`" for v in night.variations) + " |"
    lines += ["## Stages under each variation", "", header]
    lines.append("|---" * (len(night.variations) + 1) + "|")
    for stage in night.stages:
        cells = []
        for variation in night.variations:
            found = variation.stage(stage)
            cells.append(found.result.value if found else "not run")
        lines.append(f"| `{stage}` | " + " | ".join(cells) + " |")
    lines += ["", "## Variations", "", "| variation | kind | changes | result | note |"]
    lines.append("|---|---|---|---|---|")
    for v in night.variations:
        note = "; ".join(x for x in (v.note, v.reason) if x)
        lines.append(
            f"| `{v.name}` | {v.kind} | {_cell('; '.join(v.changes) or 'none')} | "
            f"{v.result.value} | {_cell(note)} |"
        )
    lines.append("")
    if night.skipped:
        lines += ["## Not applied on this machine", ""]
        lines += [f"- `{s.name}`: {_cell(s.reason)}" for s in night.skipped]
        lines.append("")
    moved = [
        (v.name, s.stage, m)
        for v in night.variations
        for s in v.stages
        if not s.result.reproduced
        for m in s.moved
    ]
    if moved:
        lines += ["## Tensors that moved", "", "| variation | stage | tensor |", "|---|---|---|"]
        lines += [f"| `{v}` | `{s}` | {_cell(m.describe())} |" for v, s, m in moved]
        lines.append("")
    return "\n".join(lines)
