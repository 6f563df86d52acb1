"""The change as the repository holds it: files changed since a base, and files read from the work tree.

Read with ``git`` (a subprocess; nothing is written): ``open_repo`` finds the top of
the work tree, ``changed_files`` lists paths that differ between a base commit and the
work tree (committed, staged, unstaged and untracked, so a check run before committing
sees the same change), ``read_text`` reads one file of the work tree and refuses paths
that leave the repository. A path that is not a git work tree, a base that does not
resolve, or a missing ``git`` is a :class:`RepoError` naming it.

The default base is where the branch left the default branch: the merge base of HEAD
and the first of ``origin/main``, ``main``, ``origin/master``, ``master`` that exists,
else HEAD's parent, else the empty tree (a repository with one commit: everything is new).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["RepoError", "changed_files", "default_base", "open_repo", "read_text"]

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
"""git's empty tree object: the base of a repository's first commit."""
_DEFAULT_BRANCHES = ("origin/main", "main", "origin/master", "master")
_TIMEOUT_S = 60


class RepoError(ValueError):
    """A repository that cannot be read (not a git work tree, unknown base, no git); the message names it."""


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise RepoError("git is not installed: the repository checks need it on PATH")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    proc = subprocess.run(  # a fixed argv, no shell
        [git, "-C", str(repo), *args], capture_output=True, env=env, timeout=_TIMEOUT_S, check=False
    )
    if check and proc.returncode != 0:
        raise RepoError(f"git {' '.join(args)} in {repo} failed: {proc.stderr.decode(errors='replace').strip()[:300]}")
    return proc


def open_repo(path: str | Path) -> Path:
    """The top of the git work tree at ``path``; RepoError when ``path`` is not one."""
    p = Path(path)
    if not p.is_dir():
        raise RepoError(f"--repo {path}: no such directory")
    proc = _git(p, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RepoError(f"--repo {path} is not a git repository ({why[-1] if why else 'git rev-parse failed'})")
    return Path(proc.stdout.decode().strip())


def _resolves(repo: Path, ref: str) -> bool:
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).returncode == 0


def default_base(repo: Path) -> str:
    """The commit the change is measured from (see the module docstring)."""
    if not _resolves(repo, "HEAD"):
        return EMPTY_TREE
    head = _git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    for branch in _DEFAULT_BRANCHES:
        if _resolves(repo, branch):
            base = _git(repo, "merge-base", "HEAD", branch, check=False).stdout.decode().strip()
            if base and base != head:
                return base
    return "HEAD~1" if _resolves(repo, "HEAD~1") else EMPTY_TREE


def changed_files(repo: Path, base: str | None = None) -> list[str]:
    """Paths (relative, sorted) that differ between ``base`` (default: ``default_base``) and the work tree."""
    ref = base or default_base(repo)
    if ref != EMPTY_TREE and not _resolves(repo, ref):
        raise RepoError(f"--base {ref}: no such commit in {repo}")
    diff = _git(repo, "diff", "--name-only", "-z", "--no-renames", ref, "--").stdout.decode()
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "-z").stdout.decode()
    return sorted({p for p in (*diff.split("\0"), *untracked.split("\0")) if p})


def read_text(repo: Path, relpath: str, field: str) -> str | None:
    """The work tree's ``relpath`` as text, None when absent; RepoError when it leaves the repository."""
    target = (repo / relpath).resolve()
    if not target.is_relative_to(repo.resolve()):
        raise RepoError(f"{field}: {relpath!r} is outside the repository {repo}")
    if not target.is_file():
        return None
    return target.read_text(encoding="utf-8", errors="replace")
