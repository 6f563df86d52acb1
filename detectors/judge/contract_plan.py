"""The planning sections of a feature contract: tests per layer, infrastructure, rollback.

These complete the Feature Contract Checklist (Behaviour, Physics, Deployment) that
``driftscope plan check`` enforces; the gate ignores them. Every field is optional, so a
contract written for the gate alone stays valid::

    tests:
      required: [unit, integration, e2e]     # layers that must have passing tests of this change
      match: [receipt]                       # keywords naming the change's tests (empty: every test)
      layers:                                # how a JUnit test case is assigned to a layer
        e2e: {markers: [e2e], paths: ["tests/e2e/*"], names: ["^test_e2e_"]}
    infrastructure:
      touched: true                          # the change needs infrastructure: its files must change
      paths: ["infra/*"]                     # where infrastructure lives (globs, * crosses /)
      terraform: [infra/terraform]           # directories to format-check and validate (default: changed)
      changes: ["bucket receipts"]
    rollback:
      to_version: "3.4.0"                    # what to roll back to
      procedure: docs/rollback.md            # the documented procedure, a file of the repository
      steps: ["redeploy domain-gate 3.4.0"]  # or inline steps

Globs are ``fnmatch`` patterns matched against repository paths (``*`` also crosses
``/``); ``names`` are regular expressions searched in the test's name.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LAYERS", "Infrastructure", "Layer", "Rollback", "TestSelector", "Tests"]

Layer = Literal["unit", "integration", "e2e"]
LAYERS: tuple[Layer, ...] = ("unit", "integration", "e2e")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TestSelector(_Model):
    """Which test cases belong to a layer: any marker, path glob or name pattern matches."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    markers: list[str] = []
    """pytest markers, as JUnit ``<property name="marker" value="e2e"/>`` (or a comma-separated ``markers``)."""
    paths: list[str] = []
    """Globs on the test's file (``file`` attribute, else its classname with dots as slashes)."""
    names: list[str] = []
    """Regular expressions searched in the test case's name."""

    @field_validator("names")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"{p!r} is not a regular expression: {exc}") from None
        return patterns


DEFAULT_SELECTORS: dict[Layer, TestSelector] = {
    "unit": TestSelector(markers=["unit"], paths=["tests/unit/*", "*/tests/unit/*", "*_unit_test*"]),
    "integration": TestSelector(
        markers=["integration"], paths=["tests/integration/*", "*/tests/integration/*", "*_integration_test*"]
    ),
    "e2e": TestSelector(markers=["e2e"], paths=["tests/e2e/*", "*/tests/e2e/*", "*_e2e_test*"]),
}
"""By marker (``@pytest.mark.e2e``) or by directory (``tests/e2e/``)."""


class Tests(_Model):
    """The Behaviour part of the checklist: tests per layer, present and passing, for this change."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    required: list[Layer] = list(LAYERS)
    match: list[str] = []
    """Keywords (case-insensitive) a test id must contain to count as this change's test; empty: all tests."""
    layers: dict[Layer, TestSelector] = {}
    """Per-layer selectors replacing the defaults (``DEFAULT_SELECTORS``)."""

    def selector(self, layer: Layer) -> TestSelector:
        """The selector of ``layer``: the contract's, else the default."""
        return self.layers.get(layer, DEFAULT_SELECTORS[layer])


class Infrastructure(_Model):
    """The infrastructure part of the Deployment checklist."""

    touched: bool = False
    """The change needs infrastructure (a bucket, a queue, a secret): infrastructure files must change."""
    paths: list[str] = ["infra/*", "terraform/*", "*.tf", "deploy/*", "k8s/*", "helm/*"]
    """Where infrastructure lives in the repository (globs, ``*`` crosses ``/``)."""
    terraform: list[str] = []
    """Terraform directories to check (fmt, validate); default: those holding changed ``*.tf`` files."""
    changes: list[str] = []
    """What changes, in words (for reviewers)."""


class Rollback(_Model):
    """The rollback plan: a version to return to and a documented procedure."""

    to_version: str | None = Field(None, min_length=1)
    procedure: str | None = Field(None, min_length=1)
    """A document in the repository (relative path) describing the rollback."""
    steps: list[str] = []
    """Inline steps, when the procedure is short."""
