"""Mutation testing of viscover's core modules with mutmut (`make mutate`; not part of `make test` or CI).

What: for each core module, mutmut makes many small changes to its functions (a `<` becomes `<=`, a constant
changes, an argument is dropped, ...), one "mutant" at a time, and runs that module's own tests against each. A
mutant that no test notices has *survived*: the tests run that code but would not catch that mistake in it.
Line coverage only says a line ran; the mutation score (killed / all mutants) says how much of its behaviour the
tests pin down. Surviving mutants are listed (file, line, before -> after) for someone to write the missing test,
or, if the change cannot alter behaviour (an equivalent mutant), to record it once in
benchmarks/mutation_harmless.toml with the reason; the report then gives both the raw score and the score with
those counted as killed.

Why per module, with only its own tests: a mutant costs one run of the tests that exercise it, so running the
whole suite per mutant would take days. The module -> tests mapping below is the one place that says which tests
are meant to guard which module; mutmut narrows it further to the tests that actually call the mutated function.

How, and why mutmut (cosmic-ray 8.7 was tried too: it rewrites the source file in place, so an interrupted run
leaves a mutant in src/ for everyone sharing the tree, and it starts a fresh pytest, with torch, FAISS and numba
imports, for every mutant: 8.6 s per mutant on metrics.py against mutmut's 0.84 s with the same tests):
  * each module gets a work folder .mutmut/<module>/ (gitignored) holding a generated pyproject.toml (this repo's
    pytest settings and [tool.mutmut] plus the module's file and tests) and links to src/, tests/ and the shared
    data; mutmut copies src/ and tests/ into .mutmut/<module>/mutants/ and mutates only that copy, never src/.
    The editable install's path to src/ is taken off sys.path by mutmut, so the tests import the copy;
  * process_isolation = "forkserver": one process imports pytest and collects the tests (torch, FAISS, numba
    loaded once), then forks a child per mutant that runs `pytest -x -q -p no:cacheprovider` on the selected tests;
  * mutate_only_covered_lines: a coverage run first, and no mutant is made on a line no test runs (each would
    cost a full run of its function's tests, only to survive). They are not dropped from the score: this script
    enumerates every mutant of the file (mutmut's own generator, without coverage) and counts the ones missing
    from the run as "no coverage", like mutants of functions that no selected test calls (mutmut's "no tests").
    mutmut is started through this script (mutmut_cli) to widen the covered lines to whole statements: coverage.py
    does not see the continuation lines of a statement split over lines (e.g. the second half of a long message),
    and mutmut would otherwise skip their mutants as uncovered. mutmut_cli also hands each mutant's tests to pytest
    file by file in the mapping's order, fastest first within a file (mutmut's order is arbitrary and interleaves
    files, so pytest would set up a file's fixtures again and again), so list unit-test files before slow ones;
  * a mutant's tests are stopped after timeout-factor x (their time on the unmutated code) + timeout-seconds;
  * mutmut never mutates decorated functions (except @staticmethod/@classmethod), nor module-level code or class
    bodies. So numba's @njit kernels (candidates/walk.py), @torch.no_grad() functions (train/loop.py), @lru_cache
    functions, properties and FastAPI route handlers (serve/api_write.py) are left alone; the report lists them
    per module under "not_mutated" so the gap stays visible. Nothing else needed excluding.

Run (from the repository root; with one worker the whole set was estimated at 5-8 hours, from 1-5 s per mutant
measured on metrics, netguard and losses, more where each test run re-creates an indexed or trained fixture):

    .venv/bin/python benchmarks/mutate.py --json benchmarks/results/mutation.json
    .venv/bin/python benchmarks/mutate.py --module metrics --module imaging.netguard --json ...
    .venv/bin/python benchmarks/mutate.py --list

A run of some modules replaces those modules in an existing report and keeps the others (each module entry has its
own date and commit). The Markdown summary is written beside the JSON (mutation.md). After editing the harmless
list, `--rescore --json benchmarks/results/mutation.json` re-marks the report without running anything.
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import difflib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".mutmut"
HARMLESS = REPO / "benchmarks" / "mutation_harmless.toml"
AS_MUTMUT = "--as-mutmut"  # internal: run mutmut's command line (see mutmut_cli)
ORIGINAL = "original.py"  # in a module's work folder: its source file as the run started

# ---- the one module -> tests mapping ---------------------------------------------------------------------------
# Tests listed here that do not exist (yet) are left out and named in the report; so is a module whose file is
# missing. Keep slow tests (test_train.py, test_rank.py) only where the module is really exercised by them: mutmut
# runs, for each mutant, every listed test that calls the mutated function.
INDEX_TESTS = ("tests/test_index.py", "tests/test_search.py", "tests/test_index_kinds.py",
               "tests/contracts/test_vector_index.py")
EVAL_TESTS = ("tests/test_metrics.py", "tests/test_eval.py", "tests/test_cli.py")
TRAIN_TESTS = ("tests/test_train_parts.py", "tests/test_train.py")
RELATED_TESTS = ("tests/test_related_service.py", "tests/test_related.py", "tests/test_graph.py",
                 "tests/contracts/test_candidate_generators.py")
API_TESTS = ("tests/test_api.py", "tests/test_auth.py")

MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "index.faiss_index": ("src/viscover/index/faiss_index.py", INDEX_TESTS),
    "index.codec": ("src/viscover/index/codec.py", INDEX_TESTS + ("tests/test_eval.py",)),
    # related_metrics is also used by `viscover eval-related` (tests/test_related.py)
    "metrics": ("src/viscover/metrics.py", EVAL_TESTS + ("tests/test_related.py",)),
    "eval.retrieval": ("src/viscover/eval/retrieval.py", EVAL_TESTS),
    "train.losses": ("src/viscover/train/losses.py", TRAIN_TESTS),
    "train.loop": ("src/viscover/train/loop.py", TRAIN_TESTS),
    # the related-items service and candidate scoring also back the learned ranker (tests/test_rank.py)
    "related.items": ("src/viscover/related/items.py", RELATED_TESTS + ("tests/test_rank.py",)),
    "candidates.features": ("src/viscover/candidates/features.py", RELATED_TESTS + ("tests/test_rank.py",)),
    "candidates.candidate_set": ("src/viscover/candidates/candidate_set.py", RELATED_TESTS + ("tests/test_rank.py",)),
    "candidates.walk": ("src/viscover/candidates/walk.py", RELATED_TESTS),
    # how a query is prepared for the generators: cold queries, visual seeds and their weights
    "candidates.query": ("src/viscover/candidates/query.py", RELATED_TESTS + ("tests/test_rank.py",)),
    "rank.debias": ("src/viscover/rank/debias.py", ("tests/test_debias.py", "tests/test_rank.py")),
    # URL rows in manifests (test_bad_manifests, test_catalog) go through the SSRF guard too
    "imaging.netguard": ("src/viscover/imaging/netguard.py",
                         ("tests/test_netguard.py", "tests/test_bad_manifests.py", "tests/test_catalog.py")),
    "serve.deps": ("src/viscover/serve/deps.py", API_TESTS),
    "serve.api_write": ("src/viscover/serve/api_write.py", API_TESTS + ("tests/test_limits.py",)),
}

# mutmut's result names, grouped into the report's categories ("segfault" is mutmut's name for any child killed
# by a signal, e.g. by the memory limit: the tests did notice)
CATEGORY = {"killed": "killed", "segfault": "killed", "survived": "survived", "timeout": "timeout",
            "no tests": "no_coverage"}


@dataclass(frozen=True)
class Mutation:
    """One mutant as a reviewer sees it: where, and the changed lines before and after."""

    file: str
    function: str
    line: int
    before: str
    after: str
    diff: str

    def key(self) -> tuple[str, str, str, str]:
        return self.file, self.function, _norm(self.before), _norm(self.after)


@dataclass
class ModuleResult:
    name: str
    file: str
    tests: list[str]
    tests_missing: list[str]
    counts: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    survivors: list[dict[str, Any]] = field(default_factory=list)
    timeouts: list[dict[str, Any]] = field(default_factory=list)
    run_seconds: float = 0.0
    mutants_per_second: float | None = None
    not_mutated: list[str] = field(default_factory=list)
    error: str | None = None


# ---- mutation identity -------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    """The changed lines without indentation and runs of spaces, so re-indenting or reflowing elsewhere does not
    change a mutant's id."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def mutation_ids(mutations: list[Mutation]) -> list[str]:
    """A stable id per mutation: a hash of file, function, changed text before and after (no line number, so
    edits elsewhere in the file keep it); a repeat of the same change in the same function gets a -2, -3 suffix."""
    seen: Counter = Counter()
    out = []
    for m in mutations:
        digest = hashlib.sha1("\0".join(m.key()).encode()).hexdigest()[:12]
        seen[digest] += 1
        out.append(digest if seen[digest] == 1 else f"{digest}-{seen[digest]}")
    return out


def parse_diff(diff: str, file: str, function: str, def_line: int, def_offset: int) -> Mutation:
    """Turn mutmut's diff of one function into the file line and the changed lines. `def_line` is the `def` line in
    the file, `def_offset` its (0-based) line in the function text that mutmut diffs (comments above it come first)."""
    before, after, first = [], [], None
    orig_line = 0
    for text in diff.splitlines():
        if text.startswith(("---", "+++")):
            continue
        if text.startswith("@@"):
            orig_line = int(re.match(r"@@ -(\d+)", text).group(1))
            continue
        if text.startswith("-"):
            before.append(text[1:])
            first = first if first is not None else orig_line
            orig_line += 1
        elif text.startswith("+"):
            after.append(text[1:])
            first = first if first is not None else orig_line
        else:
            orig_line += 1
    line = def_line + (first or 1) - 1 - def_offset
    return Mutation(file, function, line, "\n".join(before).strip(), "\n".join(after).strip(), diff)


@lru_cache(maxsize=8)
def function_positions(source: str) -> dict[str, tuple[int, int]]:
    """For each top-level function and method ("Class.method", as mutmut names them): its `def` line in the file,
    and that line's 0-based position in the text mutmut diffs (the function with the comments and decorators above
    it, stripped)."""
    import libcst as cst

    out = {}

    def add(node: cst.FunctionDef, name: str, def_line: int) -> None:
        text = cst.Module([node]).code.strip().splitlines()
        offset = next(i for i, line in enumerate(text) if re.match(r"(async\s+)?def\s", line))
        out[name] = (def_line, offset)

    tree = ast.parse(source)
    module = cst.parse_module(source)
    cst_defs = {n.name.value: n for n in module.body if isinstance(n, cst.FunctionDef)}
    cst_classes = {n.name.value: n for n in module.body if isinstance(n, cst.ClassDef)}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            add(cst_defs[node.name], node.name, node.lineno)
        elif isinstance(node, ast.ClassDef):
            methods = {n.name.value: n for n in cst_classes[node.name].body.body if isinstance(n, cst.FunctionDef)}
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    add(methods[item.name], f"{node.name}.{item.name}", item.lineno)
    return out


def decorated_functions(source: str) -> list[str]:
    """Functions mutmut leaves alone because of their decorators, as "name (@decorator)"."""
    out = []
    nodes = [(n, "") for n in ast.parse(source).body]
    while nodes:
        node, prefix = nodes.pop(0)
        if isinstance(node, ast.ClassDef):
            nodes.extend((item, f"{node.name}.") for item in node.body)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list:
            names = [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list]
            if names not in (["staticmethod"], ["classmethod"]):
                out.append(f"{prefix}{node.name} (@{', @'.join(names)})")
    return out


# ---- the work folder and the mutmut run --------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML here")


def _toml_table(name: str, table: dict[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in table.items())


def mutmut_settings(factor: float | None, seconds: float | None) -> dict[str, Any]:
    """This repository's [tool.mutmut], with the timeout options applied (mutmut stops a mutant's tests after
    timeout_multiplier x (their clean time + timeout_constant) seconds)."""
    settings = dict(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"])
    settings["timeout_multiplier"] = float(factor or settings.get("timeout_multiplier", 3.0))
    if seconds is not None:
        settings["timeout_constant"] = seconds / settings["timeout_multiplier"]
    return settings


def pytest_settings() -> dict[str, Any]:
    """This repository's pytest settings, less coverage options (mutmut measures coverage itself)."""
    ini = dict(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"])
    addopts = ini.get("addopts", "")
    args = shlex.split(addopts) if isinstance(addopts, str) else list(addopts)
    ini["addopts"] = " ".join(shlex.quote(a) for a in args if not a.startswith("--cov"))
    return ini


def prepare_workdir(name: str, file: str, tests: list[str], settings: dict[str, Any]) -> Path:
    """A fresh .mutmut/<name>/ with its pyproject.toml and links to src/, tests/ and the shared data folder (some
    tests find ../shared/data from their own path, which mutmut's copy moves to .mutmut/<name>/mutants/tests)."""
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "src").symlink_to(REPO / "src", target_is_directory=True)
    (work / "tests").symlink_to(REPO / "tests", target_is_directory=True)
    (work / "shared").symlink_to(Path(os.environ.get("VISCOVER_SHARED_DATA", DATA)).resolve().parent,
                                 target_is_directory=True)
    mutmut = {**settings, "source_paths": ["src"], "only_mutate": [file],
              "pytest_add_cli_args_test_selection": tests}
    (work / "pyproject.toml").write_text(_toml_table("tool.pytest.ini_options", pytest_settings()) + "\n"
                                         + _toml_table("tool.mutmut", mutmut))
    return work


def run_mutmut(work: Path, workers: int) -> tuple[int, float, str]:
    """`mutmut run` in the work folder; its (progress-spinner) output goes to mutmut.log there."""
    env = {**os.environ, "VISCOVER_SHARED_DATA": str(Path(os.environ.get("VISCOVER_SHARED_DATA", DATA)).resolve()),
           "VISCOVER_CACHE": os.environ.get("VISCOVER_CACHE", str(REPO / ".cache"))}  # exported models, shared
    start = time.monotonic()
    with open(work / "mutmut.log", "w") as log:
        rc = subprocess.run([sys.executable, str(Path(__file__).resolve()), AS_MUTMUT, "run", "--max-children",
                             str(workers)], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                            check=False).returncode
    return rc, time.monotonic() - start, (work / "mutmut.log").read_text(errors="replace")


def statement_lines(source: str, covered: set[int]) -> set[int]:
    """`covered` plus the other lines of each covered statement that is split over several lines (for a compound
    statement: of its header, not its body). coverage.py records only the lines Python reports, and Python puts
    some code on a statement's first line (implicitly joined strings, for one), so without this mutmut would skip
    mutants on such continuation lines as "not covered" although they run."""
    out = set(covered)
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.stmt) or node.lineno not in covered:
            continue
        inner = getattr(node, "body", None) or [c.pattern for c in getattr(node, "cases", [])]
        end = inner[0].lineno - 1 if isinstance(inner, list) and inner else node.end_lineno
        out.update(range(node.lineno, (end or node.lineno) + 1))
    return out


def mutmut_cli() -> None:
    """mutmut's command line with two changes: its covered lines are widened to whole statements (see
    statement_lines), and each mutant's tests are handed to pytest file by file in the order of the module's test
    list, then fastest first (mutmut passes them in set order, which interleaves files: pytest then sets up a
    file's fixtures, e.g. a trained model, again each time it comes back to the file; and with -x, a mutant that a
    quick unit test kills should not wait for a training run first)."""
    import mutmut.__main__ as cli
    from mutmut.configuration import config
    from mutmut.state import state
    from mutmut.workers.isolation import MutantRunner

    gather = cli.gather_coverage

    def gather_statements(runner: Any, source_files: Any) -> Any:
        info = gather(runner, source_files)
        for path, lines in info.covered_lines.items():
            if lines and Path(path).is_file():
                info.covered_lines[path] = statement_lines(Path(path).read_text(), lines)
        return info

    def fastest_first(submit: Any) -> Any:
        def submit_sorted(self: Any, mutant_name: str, tests: list[str], *args: Any) -> Any:
            files = config().pytest_add_cli_args_test_selection
            durations = state().duration_by_test

            def key(test: str) -> tuple[int, float, str]:
                file = test.split("::", 1)[0]
                return files.index(file) if file in files else len(files), durations.get(test, 0.0), test

            return submit(self, mutant_name, sorted(tests, key=key), *args)

        return submit_sorted

    cli.gather_coverage = gather_statements
    for runner_class in MutantRunner.__subclasses__():
        runner_class.submit = fastest_first(runner_class.submit)
    cli.cli()


@contextmanager
def inside(work: Path) -> Iterator[None]:
    """mutmut's library functions read the config and the mutants/ folder from the current directory."""
    from mutmut.configuration import reset_config

    old = Path.cwd()
    os.chdir(work)
    reset_config()
    try:
        yield
    finally:
        os.chdir(old)
        reset_config()


def describe(name: str, file: str, source: str, functions: tuple[Any, Any] | None = None) -> Mutation:
    """The Mutation of mutmut's mutant `name`: from the work folder's mutants/ (read through mutmut's line index),
    or from `functions`, the original and the mutated function (libcst nodes)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    func, cls = orig_function_and_class_names_from_key(name)
    function = f"{cls}.{func}" if cls else func
    if functions is None:
        diff = get_diff_for_mutant(name, path=file)
    else:  # as get_diff_for_mutant does it
        import libcst as cst

        orig, mutant = (cst.Module([f]).code.strip().split("\n") for f in functions)
        diff = "\n".join(difflib.unified_diff(orig, mutant, fromfile=file, tofile=file, lineterm=""))
    def_line, def_offset = function_positions(source)[function]
    return parse_diff(diff, file, function, def_line, def_offset)


def all_mutations(file: str, source: str, path: Path) -> list[Mutation]:
    """Every mutant mutmut makes of the file when it does not look at coverage (lines that coverage.py excludes,
    `# pragma: no cover`, stay excluded as in the run), in mutmut's order."""
    import coverage
    import libcst as cst
    from mutmut.mutation.diff_apply import read_mutant_function, read_original_function
    from mutmut.mutation.file_mutation import mutate_file_contents

    try:
        excluded = set(coverage.Coverage(data_file=None, config_file=False).analysis2(str(path))[2])
    except coverage.exceptions.CoverageException:
        excluded = set()
    mutated = mutate_file_contents(file, source, None, excluded)
    module = cst.parse_module(mutated.code)  # once: the mutated file holds every mutant, it is big
    return [describe(n, file, source, (read_original_function(module, n), read_mutant_function(module, n)))
            for n in mutated.mutant_names]


def collect(result: ModuleResult, work: Path, harmless: dict[str, dict[str, Any]]) -> None:
    """Read mutmut's results from the work folder into `result`: counts, and every mutant that was not killed."""
    from mutmut.stats import status_by_exit_code

    source = (work / ORIGINAL).read_text()  # the file as mutmut copied it, whatever happened to it since
    meta = json.loads((work / "mutants" / (result.file + ".meta")).read_text())
    with inside(work):
        ran = [(describe(n, result.file, source), status_by_exit_code[code])
               for n, code in meta["exit_code_by_key"].items()]
        everything = all_mutations(result.file, source, work / ORIGINAL)
    # ids follow the full enumeration's order, so they do not depend on which lines the tests covered this time
    ids_by_key: dict[tuple, list[str]] = {}
    for m, mid in zip(everything, mutation_ids(everything)):
        ids_by_key.setdefault(m.key(), []).append(mid)
    rows = []
    for m, status in ran:
        ids = ids_by_key.get(m.key())
        rows.append((m, status, ids.pop(0) if ids else mutation_ids([m])[0]))
    # what is left was not made in the run: the coverage filter skipped it, no test runs its line
    for m in everything:
        ids = ids_by_key[m.key()]
        if ids:
            rows.append((m, "not covered", ids.pop(0)))
    for m, status, mid in rows:
        category = "no_coverage" if status == "not covered" else CATEGORY.get(status, "other")
        result.statuses[status] += 1
        result.counts[category] += 1
        if category in ("survived", "no_coverage"):
            entry = harmless.get(mid)
            result.counts["harmless"] += bool(entry)
            result.survivors.append({
                "id": mid, "file": m.file, "line": m.line, "function": m.function,
                "status": "survived" if category == "survived" else "no coverage",
                "before": m.before, "after": m.after, "diff": m.diff,
                "harmless": entry["reason"] if entry else None})
        elif category == "timeout":  # detected, but each costs a full timeout: worth knowing when runs are slow
            result.timeouts.append({"id": mid, "line": m.line, "function": m.function, "before": m.before,
                                    "after": m.after})
    result.counts["total"] = len(rows)
    result.survivors.sort(key=lambda s: (s["line"], s["id"]))


def run_module(name: str, workers: int, settings: dict[str, Any], harmless: dict[str, dict[str, Any]]
               ) -> ModuleResult:
    file, tests = MODULES[name]
    present = [t for t in tests if (REPO / t).is_file()]
    result = ModuleResult(name, file, present, [t for t in tests if t not in present])
    if not (REPO / file).is_file():
        result.error = f"{file} does not exist"
        return result
    if not present:
        result.error = "none of its tests exist"
        return result
    work = prepare_workdir(name, file, present, settings)
    shutil.copy2(REPO / file, work / ORIGINAL)  # mutmut copies src/ right after this
    result.not_mutated = decorated_functions((work / ORIGINAL).read_text())
    print(f"{name}: mutmut on {file} with {' '.join(present)} (log: {work / 'mutmut.log'})", file=sys.stderr)
    rc, result.run_seconds, log = run_mutmut(work, workers)
    rate = re.findall(r"([\d.]+) mutations/second", log)
    result.mutants_per_second = float(rate[-1]) if rate else None
    if rc != 0 or not (work / "mutants" / (file + ".meta")).is_file():
        tail = re.sub(r"[^\n]*\r", "", log)[-3000:]  # drop spinner lines
        result.error = f"mutmut exited with {rc}: {tail}"
        return result
    collect(result, work, harmless)
    return result


# ---- the harmless list and the report ----------------------------------------------------------------------------
def load_harmless(path: Path = HARMLESS) -> dict[str, dict[str, Any]]:
    """Reviewed equivalent mutants by id; each entry needs id, file and reason (line/before/after are for people)."""
    if not path.is_file():
        return {}
    entries = tomllib.loads(path.read_text()).get("mutant", [])
    for e in entries:
        missing = {"id", "file", "reason"} - set(e)
        if missing:
            raise SystemExit(f"{path}: entry {e} lacks {', '.join(sorted(missing))}")
    return {e["id"]: e for e in entries}


def module_entry(r: ModuleResult, commit: str | None) -> dict[str, Any]:
    total, killed, harmless = r.counts["total"], r.counts["killed"], r.counts["harmless"]
    return {
        "file": r.file, "tests": r.tests, "tests_missing": r.tests_missing,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "git_commit": commit,
        "error": r.error,
        "mutants": total, "killed": killed, "survived": r.counts["survived"], "timeout": r.counts["timeout"],
        "no_coverage": r.counts["no_coverage"], "other": r.counts["other"], "harmless": harmless,
        "score": round(killed / total, 4) if total else None,
        "score_harmless_as_killed": round((killed + harmless) / total, 4) if total else None,
        "statuses": dict(r.statuses),
        "run_seconds": round(r.run_seconds, 1),
        "seconds_per_tested_mutant": (round(r.run_seconds / (total - r.counts["no_coverage"]), 2)
                                      if total > r.counts["no_coverage"] else None),
        "mutants_per_second_mutmut": r.mutants_per_second,
        "not_mutated": r.not_mutated,
        "timeouts": r.timeouts,
        "survivors": r.survivors,
    }


def totals(modules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    keys = ("mutants", "killed", "survived", "timeout", "no_coverage", "other", "harmless", "run_seconds")
    out = {k: round(sum(m.get(k) or 0 for m in modules.values()), 1) for k in keys}
    out["mutants"] = int(out["mutants"])
    out["score"] = round(out["killed"] / out["mutants"], 4) if out["mutants"] else None
    out["score_harmless_as_killed"] = (round((out["killed"] + out["harmless"]) / out["mutants"], 4)
                                       if out["mutants"] else None)
    return out


def stale_harmless(modules: dict[str, dict[str, Any]], harmless: dict[str, dict[str, Any]]) -> list[dict]:
    """Harmless entries for a module in the report that match no surviving mutant any more: remove them."""
    seen = {s["id"] for m in modules.values() for s in m["survivors"]}
    files = {m["file"] for m in modules.values() if not m["error"]}
    return [e for i, e in harmless.items() if e["file"] in files and i not in seen]


def apply_harmless(modules: dict[str, dict[str, Any]], harmless: dict[str, dict[str, Any]]) -> None:
    """Mark the survivors listed in the harmless file (by id) and recount each module's harmless survivors."""
    for m in modules.values():
        for s in m["survivors"]:
            s["harmless"] = harmless[s["id"]]["reason"] if s["id"] in harmless else None
        m["harmless"] = sum(s["harmless"] is not None for s in m["survivors"])
        total = m["mutants"]
        m["score_harmless_as_killed"] = round((m["killed"] + m["harmless"]) / total, 4) if total else None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _code(text: str) -> str:
    """Changed lines as one Markdown table cell."""
    return "`" + text.replace("\n", " ⏎ ").replace("|", "\\|").replace("`", "'") + "`"


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table per module plus the surviving mutants."""
    lines = [f"# Mutation testing ({report['tool']['name']} {report['tool']['version']})", "",
             (f"Updated {report['date']}; per-module dates and commits are in mutation.json. Score = killed / all "
              "mutants (survived, timeouts and mutants on lines no test runs count against it); the last score "
              "column also counts the reviewed harmless survivors (benchmarks/mutation_harmless.toml) as killed. "
              f"Per-mutant timeout: {report['tool']['per_mutant_timeout_seconds']} s."), "",
             ("| module | mutants | killed | survived | timeout | no coverage | harmless | score | score (harmless "
              "as killed) | run time | s / mutant |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in sorted(report["modules"].items()):
        if m["error"]:
            lines.append(f"| {name} | error: {m['error'].splitlines()[0][:80]} |||||||||")
            continue
        lines.append(f"| {name} | {m['mutants']} | {m['killed']} | {m['survived']} | {m['timeout']} | "
                     f"{m['no_coverage']} | {m['harmless']} | {_pct(m['score'])} | "
                     f"{_pct(m['score_harmless_as_killed'])} | {m['run_seconds'] / 60:.1f} min | "
                     f"{m['seconds_per_tested_mutant'] or '-'} |")
    t = report["totals"]
    lines.append(f"| **all** | {t['mutants']} | {t['killed']} | {t['survived']} | {t['timeout']} | "
                 f"{t['no_coverage']} | {t['harmless']} | {_pct(t['score'])} | {_pct(t['score_harmless_as_killed'])} "
                 f"| {t['run_seconds'] / 60:.1f} min | |")
    for name, m in sorted(report["modules"].items()):
        if m["error"]:
            continue
        lines += ["", f"## {name}", "", f"Tests: {', '.join(m['tests'])}"
                  + (f" (not present: {', '.join(m['tests_missing'])})" if m["tests_missing"] else "")]
        if m["not_mutated"]:
            lines.append(f"Not mutated (decorated): {', '.join(m['not_mutated'])}")
        if m["survivors"]:
            lines += ["", "| line | function | status | before | after | id | harmless because |",
                      "|---:|---|---|---|---|---|---|"]
            for s in m["survivors"]:
                lines.append(f"| {s['line']} | {s['function']} | {s['status']} | {_code(s['before'])} | "
                             f"{_code(s['after'])} | {s['id']} | {s['harmless'] or ''} |")
    if report["stale_harmless"]:
        lines += ["", "## Stale harmless entries (no such survivor any more: remove them)", ""]
        lines += [f"- {e['id']} {e['file']}: {e.get('before', '')!r} -> {e.get('after', '')!r}"
                  for e in report["stale_harmless"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == [AS_MUTMUT]:  # how run_mutmut starts mutmut
        del sys.argv[1]
        return mutmut_cli()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES), metavar="NAME",
                        help="run only this module (repeatable); default: all. See --list")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests, and exit")
    parser.add_argument("--rescore", action="store_true",
                        help="run nothing: re-read the harmless list and rewrite the --json report and its .md")
    parser.add_argument("--json", help="write the report here (and the Markdown summary beside it, .md)")
    parser.add_argument("--workers", type=int, default=1, help="mutants tested in parallel (default 1)")
    parser.add_argument("--timeout-factor", type=float,
                        help="a mutant's tests stop after this many times their clean run time ... "
                             "(default: timeout_multiplier in [tool.mutmut])")
    parser.add_argument("--timeout-seconds", type=float,
                        help="... plus this many seconds (default: timeout_multiplier x timeout_constant)")
    args = parser.parse_args()
    if args.list:
        for name, (file, tests) in MODULES.items():
            print(f"{name:20} {file}\n{'':20} {' '.join(tests)}")
        return
    import mutmut

    settings = mutmut_settings(args.timeout_factor, args.timeout_seconds)
    harmless = load_harmless()
    env = environment({"mutmut": mutmut.__version__})
    commit = env["software"]["viscover_git_commit"]
    modules: dict[str, dict[str, Any]] = {}
    previous: dict[str, Any] = {}
    if args.json and Path(args.json).is_file():  # a partial run updates the modules it ran
        previous = json.loads(Path(args.json).read_text())
        modules = previous.get("modules", {})
    if args.rescore:
        if not previous:
            raise SystemExit("--rescore needs an existing --json report")
        apply_harmless(modules, harmless)
        write_report({**previous, "totals": totals(modules), "stale_harmless": stale_harmless(modules, harmless)},
                     args.json)
        return
    for name in args.module or list(MODULES):
        result = run_module(name, args.workers, settings, harmless)
        modules[name] = module_entry(result, commit)
        m = modules[name]
        print(f"{name}: {m['error'] or ''}{m['mutants']} mutants, {m['killed']} killed, {m['survived']} survived, "
              f"{m['timeout']} timeout, {m['no_coverage']} no coverage, {m['harmless']} harmless; score "
              f"{m['score']} in {m['run_seconds']:.0f} s", file=sys.stderr)
        if args.json:  # after every module: a run of hours stopped part-way keeps the modules it finished
            write_report(report(modules, settings, args.workers, env, harmless), args.json)
    if not args.json:
        write_report(report(modules, settings, args.workers, env, harmless), None)


def report(modules: dict[str, dict[str, Any]], settings: dict[str, Any], workers: int, env: dict[str, Any],
           harmless: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The whole report: tool and settings, machine, totals, and every module's entry."""
    import mutmut

    return {
        "tool": {"name": "mutmut", "version": mutmut.__version__,
                 "settings": {k: settings[k] for k in sorted(settings)},
                 "per_mutant_timeout_seconds": f"{settings['timeout_multiplier']:g} x clean test time + "
                                               f"{settings['timeout_multiplier'] * settings['timeout_constant']:g}",
                 "workers": workers},
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": env,
        "totals": totals(modules),
        "modules": modules,
        "stale_harmless": stale_harmless(modules, harmless),
    }


def write_report(report: dict[str, Any], json_path: str | None) -> None:
    """The JSON report at `json_path` and the Markdown summary beside it; without a path, the Markdown on stdout."""
    if not json_path:
        print(markdown(report))
        return
    out = Path(json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
