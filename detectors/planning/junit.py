"""Test results from JUnit XML, sorted into layers (unit, integration, E2E) for the Behaviour checklist.

``parse_junit`` reads the XML that pytest (``--junitxml``), Maven Surefire, Gradle, Jest
(jest-junit) and go-junit-report write: a ``<testsuites>`` or ``<testsuite>`` root with
``<testcase classname= name= file=>`` children, each passed or holding ``<failure>``,
``<error>`` or ``<skipped>``. Markers come from the case's properties
(``<property name="marker" value="e2e"/>``, one per marker, or ``markers`` with a
comma-separated list): with pytest, a five-line autouse fixture calling
``record_property("marker", m.name)`` for each of ``request.node.iter_markers()`` writes them
(with ``junit_family = xunit1``, which also writes each case's ``file``).

``layer_of`` assigns a case to a layer by its markers, its path (``file``, else the
classname with dots as slashes) and its name, as the contract's ``tests`` section says.
A file that is not XML, or XML whose root is not a JUnit report, is a :class:`JUnitError`
naming the file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from detectors.judge.contract_plan import LAYERS, Layer, Tests

__all__ = ["JUnitError", "TestCase", "layer_of", "matches", "parse_junit"]

TestOutcome = Literal["passed", "failed", "error", "skipped"]


class JUnitError(ValueError):
    """A test-result file that is not JUnit XML; the message names the file."""


@dataclass(frozen=True)
class TestCase:
    """One test case of a JUnit report."""

    __test__ = False  # not a pytest test class

    source: str
    """The report file it came from."""
    classname: str
    name: str
    file: str | None
    outcome: TestOutcome
    markers: tuple[str, ...] = ()
    time_s: float = 0.0
    message: str = ""

    @property
    def path(self) -> str:
        """The test's file path (the ``file`` attribute, else the classname with dots as slashes)."""
        return self.file or self.classname.replace(".", "/")

    @property
    def id(self) -> str:
        """``path::name``, what keyword matching looks at."""
        return f"{self.path}::{self.name}"


def _markers(case: ET.Element) -> tuple[str, ...]:
    out: list[str] = []
    for prop in case.iter("property"):
        name, value = prop.get("name", ""), prop.get("value", "")
        if name == "marker":
            out.append(value.strip())
        elif name == "markers":
            out += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(m for m in out if m)


def _outcome(case: ET.Element) -> tuple[TestOutcome, str]:
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        node = case.find(tag)
        if node is not None:
            return outcome, (node.get("message") or node.text or "").strip()[:300]  # type: ignore[return-value]
    return "passed", ""


def parse_junit(data: bytes, source: str) -> list[TestCase]:
    """Every test case of one JUnit XML document (``source`` names the file in errors and results)."""
    try:
        root = ET.fromstring(data)  # a CI report; expat refuses entity-expansion bombs
    except ET.ParseError as exc:
        raise JUnitError(f"{source} is not JUnit XML: not well-formed XML ({exc})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(
            f"{source} is not JUnit XML: the root element is <{root.tag}>, not <testsuites> or <testsuite>"
        )
    out: list[TestCase] = []
    for i, case in enumerate(root.iter("testcase")):
        name = case.get("name")
        if not name:
            raise JUnitError(f"{source} is not JUnit XML: testcase {i} has no name")
        outcome, message = _outcome(case)
        try:
            time_s = float(case.get("time") or 0.0)
        except ValueError:
            raise JUnitError(f"{source}: testcase {name!r} has time={case.get('time')!r}, not a number") from None
        out.append(
            TestCase(
                source=source, classname=case.get("classname", ""), name=name, file=case.get("file"),
                outcome=outcome, markers=_markers(case), time_s=time_s, message=message,
            )
        )  # fmt: skip
    return out


def matches(case: TestCase, keywords: list[str]) -> bool:
    """Whether the case's id contains any keyword (case-insensitive); no keywords match everything."""
    text = case.id.lower()
    return not keywords or any(k.lower() in text for k in keywords)


def layer_of(case: TestCase, tests: Tests) -> Layer | None:
    """The case's layer: by marker first, then by path, then by name (at each step E2E, then integration, unit)."""
    order = tuple(reversed(LAYERS))
    for layer in order:
        if set(tests.selector(layer).markers) & set(case.markers):
            return layer
    paths = [case.path, *([case.file] if case.file else [])]
    for layer in order:
        if any(fnmatchcase(path, p) for p in tests.selector(layer).paths for path in paths):
            return layer
    for layer in order:
        if any(re.search(p, case.name) for p in tests.selector(layer).names):
            return layer
    return None
