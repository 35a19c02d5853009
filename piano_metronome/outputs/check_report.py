"""The report every check writes: problems that say where and what, checks, and the verdict.

Shared by ``validate`` (a built folder), ``validate --raw`` (recordings against their manifest)
and any later check, so all of them print, serialise and exit the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL = "pass", "warn", "fail"
#: Problems kept per check (the count is always exact); enough to find the pattern.
MAX_LISTED = 50


@dataclass
class Problem:
    """One thing wrong: where it is (shard, window id, file, manifest line) and what it is."""

    where: str
    what: str
    status: str = FAIL


@dataclass
class Check:
    """A named check with its outcome; problems beyond :data:`MAX_LISTED` are only counted."""

    name: str
    description: str
    problems: list[Problem] = field(default_factory=list)
    count: int = 0
    summary: str = ""
    worst: str = PASS

    @property
    def status(self) -> str:
        """``fail`` if any problem failed, else ``warn`` if any warned, else ``pass``."""
        return self.worst

    def add(self, where: str, what: str, status: str = FAIL) -> None:
        """Record a problem (failing by default)."""
        self.count += 1
        if status == FAIL or self.worst == PASS:
            self.worst = status
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(where, what, status))

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {"name": self.name, "description": self.description, "status": self.status, "count": self.count,
                "summary": self.summary, "problems": [vars(p) for p in self.problems]}


@dataclass
class Report:
    """Every check of one target; ``unreadable`` says why the target could not be checked at all."""

    target: str
    kind: str
    checks: list[Check] = field(default_factory=list)
    unreadable: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the target was readable and no check failed (warnings allowed)."""
        return not self.unreadable and all(c.status != FAIL for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 all checks pass, 1 a check failed, 2 the target could not be read at all."""
        return 2 if self.unreadable else (0 if self.ok else 1)

    def check(self, name: str, description: str) -> Check:
        """Start a new check and add it to the report."""
        made = Check(name, description)
        self.checks.append(made)
        return made

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: stable keys a script can rely on."""
        return {"target": self.target, "kind": self.kind, "ok": self.ok, "exit_code": self.exit_code,
                "unreadable": self.unreadable, "seconds": round(self.seconds, 3),
                "checks": [c.as_dict() for c in self.checks]}
