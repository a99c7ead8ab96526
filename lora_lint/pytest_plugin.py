"""pytest plugin: ``pytest --lora-check [PATHS]`` turns LoRA configs into test items.

Each config found among the collected files (and the ``lora_check_paths`` ini option)
gets three items: ``static`` (the linter's findings at or above fail-on), ``shapes``
(build the model, apply the adapter, check every LoRA shape and the trainable count)
and ``smoke`` (a short training run watched for dead adapters, a wrong initial loss,
divergence, plateaus and overfitting). The fixtures ``lora_setup``, ``lora_facts``,
``lora_model`` and ``lora_smoke`` expose the same results to ordinary tests, so a team
writes its own policies as plain asserts; ``lora_sweep`` runs a rank sweep of the config
(``--lora-sweep 4,8,16``), so CI can assert that the locked rank is still the one chosen.

Loaded by the ``pytest11`` entry point in every pytest run, so this module imports
nothing but pytest: the linter, torch and the runtime are imported inside hooks, and
only when ``--lora-check`` is given. The markers work in every run.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lora_lint.runtime.check import ConfigCheck

CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".py")
ITEM_KINDS = ("static", "shapes", "smoke")
CUDA_ITEM_KINDS = ("static", "shapes", "memory", "smoke")  # measured peak memory needs the real allocator
GIB = 1024**3
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
_SESSION = pytest.StashKey["LoraSession"]()
_WORKER_ENTRIES = "lora_report_entries"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lora-lint", "LoRA config checks (lora-lint)")
    group.addoption(
        "--lora-check", action="store_true", help="turn LoRA configs among the collected paths into test items"
    )
    group.addoption("--lora-device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="where models are built: auto (CUDA when available), cpu (a scaled-down proxy), cuda")  # fmt: skip
    group.addoption(
        "--lora-steps", type=int, default=30, metavar="N", help="smoke-training steps per config (default: 30)"
    )
    group.addoption("--lora-report", metavar="PATH", help="write the lora-check JSON report to PATH")
    group.addoption("--lora-fail-on", choices=("info", "warning", "error"),
                    help="lowest finding severity that fails a static item (default: the project's fail-on)")  # fmt: skip
    group.addoption("--lora-trust-remote-code", action="store_true",
                    help="allow model code shipped with a local base model folder to run")  # fmt: skip
    group.addoption(
        "--lora-seed", type=int, default=0, metavar="N", help="seed for weights, data and batches (default: 0)"
    )
    group.addoption("--lora-no-reference", action="store_true",
                    help="skip the reference adapter's run (alpha = 2r), which doubles smoke time for configs "
                         "with another alpha/r; slow learning is then judged on absolute bars only")  # fmt: skip
    group.addoption("--lora-sweep", metavar="RANKS",
                    help="ranks the lora_sweep fixture tries, e.g. 4,8,16 (default: [tool.lora-lint.sweep] or 4,8,16)")  # fmt: skip
    parser.addini("lora_check_paths", type="args", default=[],
                  help="config files, folders or globs that --lora-check checks besides the collected paths")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lora_check: an item or test that checks a LoRA config (added by lora-lint)")
    config.addinivalue_line("markers", "requires_cuda: skip unless torch sees a CUDA device")
    if config.getoption("lora_check"):
        session = LoraSession(config)
        config.stash[_SESSION] = session
        config.pluginmanager.register(session, "lora-check-session")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    session = parent.config.stash.get(_SESSION, None)
    if session is None or not session.is_candidate(file_path):
        return None
    if file_path.suffix == ".py" and parent.session.isinitpath(file_path):
        return None  # a script named on the command line: pytest_pycollect_makemodule takes it
    return session.config_file(file_path, parent)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A training script named on the command line is read for its LoraConfig calls, never imported."""
    session = parent.config.stash.get(_SESSION, None)
    if session is None or not session.is_candidate(module_path):
        return None
    return session.config_file(module_path, parent)


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("requires_cuda")
    if marker is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("requires CUDA: torch sees no CUDA device")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize tests that use the lora fixtures over every discovered config."""
    if "lora_config_check" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash.get(_SESSION, None)
    if session is None:
        metafunc.parametrize("lora_config_check", [pytest.param(None, marks=pytest.mark.skip(reason="run pytest with --lora-check"))], indirect=True)  # fmt: skip
        return
    keys = session.discovered()
    metafunc.parametrize("lora_config_check", keys, indirect=True, ids=keys)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def lora_config_check(request: pytest.FixtureRequest) -> ConfigCheck:
    """The runtime's view of one discovered config (parametrized over all of them)."""
    session = request.config.stash[_SESSION]
    return session.checks[request.param]


@pytest.fixture
def lora_setup(lora_config_check: ConfigCheck) -> Any:
    """The normalized :class:`~lora_lint.lora_setup.LoraSetup` of the config."""
    return lora_config_check.setup


@pytest.fixture
def lora_facts(lora_config_check: ConfigCheck) -> dict[str, Any]:
    """The linter's facts of the config (``trainable_params``, ``scaling``, ...)."""
    from lora_lint.facts import public_facts

    return public_facts(lora_config_check.facts)


@pytest.fixture
def lora_model(request: pytest.FixtureRequest, lora_config_check: ConfigCheck) -> Any:
    """The built model with its adapter (a :class:`~lora_lint.runtime.build.BuiltModel`), untrained."""
    return request.config.stash[_SESSION].run(lambda: lora_config_check.model(), lora_config_check)


@pytest.fixture
def lora_smoke(request: pytest.FixtureRequest, lora_config_check: ConfigCheck) -> Any:
    """The smoke run (record, symptoms, settings), run once per config and cached."""
    return request.config.stash[_SESSION].run(lambda: lora_config_check.smoke(), lora_config_check)


@pytest.fixture
def lora_sweep(request: pytest.FixtureRequest, lora_config_check: ConfigCheck) -> Any:
    """The rank sweep of the config (a :class:`~lora_lint.rank_sweep.run.SweepResult`), run once per config.

    Ranks from ``--lora-sweep``, else ``[tool.lora-lint.sweep]``; trial length, rule and
    thresholds from ``[tool.lora-lint.sweep]``; device and seed from ``--lora-device`` and
    ``--lora-seed``. ``lora_sweep.r`` is the chosen rank (None when none met the rule).
    """
    session = request.config.stash[_SESSION]
    key = lora_config_check.path
    if key not in session.sweeps:
        session.sweeps[key] = session.run(lambda: _sweep(request.config, lora_config_check), lora_config_check)
    return session.sweeps[key]


def _sweep(config: pytest.Config, check: ConfigCheck) -> Any:
    from lora_lint.rank_sweep.api import project_defaults
    from lora_lint.rank_sweep.options import SweepInputError, SweepOptions, parse_ranks
    from lora_lint.rank_sweep.run import run_sweep

    try:
        values = project_defaults(None)
        if config.getoption("lora_sweep"):
            values["ranks"] = parse_ranks(config.getoption("lora_sweep"))
        values.update(device=config.getoption("lora_device"), seed=config.getoption("lora_seed"),
                      trust_remote_code=config.getoption("lora_trust_remote_code"))  # fmt: skip
        return run_sweep(check.path, SweepOptions(**values))
    except SweepInputError as exc:
        pytest.fail(f"lora_sweep: {exc}", pytrace=False)


# -- collection -------------------------------------------------------------------------


class LoraCheckFailure(Exception):
    """A failed lora-check item; its message is the whole report."""


class LoraConfigFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        session = self.config.stash[_SESSION]
        keys = session.checks_for(self.path)
        kinds = CUDA_ITEM_KINDS if session.device == "cuda" else ITEM_KINDS
        items = []
        for key in keys:
            setup = session.checks[key].setup
            suffix = "" if len(keys) == 1 else f"[{setup.start.line if setup is not None and setup.start else key}]"
            for kind in kinds:
                items.append(LoraItem.from_parent(self, name=f"{kind}{suffix}", kind=kind, key=key))
        return items


class LoraItem(pytest.Item):
    def __init__(self, *, kind: str, key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.key = key
        self.add_marker("lora_check")
        session = self.config.stash[_SESSION]
        self.check = session.checks[key]
        session.items[self.nodeid] = self

    def runtest(self) -> None:
        session = self.config.stash[_SESSION]
        session.run(lambda: getattr(session, f"item_{self.kind}")(self.check), self.check)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LoraCheckFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"lora-check {self.kind}: {self.path.name}"


class LoraSession:
    """The state of one ``--lora-check`` run: options, linter, one ConfigCheck per config.

    Registered as a plugin object for the run, so its hook methods see the run's items.
    """

    def __init__(self, config: pytest.Config) -> None:
        from lora_lint.runtime.check import RuntimeOptions

        self.config = config
        self.options = RuntimeOptions(
            device=config.getoption("lora_device"),
            steps=config.getoption("lora_steps"),
            seed=config.getoption("lora_seed"),
            trust_remote_code=config.getoption("lora_trust_remote_code"),
            reference=not config.getoption("lora_no_reference"),
        )
        if self.options.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise pytest.UsageError("--lora-device cuda: torch sees no CUDA device")
        self.checks: dict[str, ConfigCheck] = {}
        self.by_file: dict[Path, list[str]] = {}
        self.collected: set[Path] = set()
        self.items: dict[str, LoraItem] = {}
        self._linter: Any = None
        self._project: Any = None
        self._discovered: list[str] | None = None
        self.worker_entries: list[dict[str, Any]] = []  # report entries from pytest-xdist workers
        self.sweeps: dict[str, Any] = {}  # config path -> SweepResult, for the lora_sweep fixture

    # -- hooks ----------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        """Add items for configs named by ``lora_check_paths`` that normal collection did not reach."""
        for path in self.ini_files():
            if path.resolve() not in self.collected and self.checks_for(path):
                self.collected.add(path.resolve())
                items.extend(LoraConfigFile.from_parent(session, path=path).collect())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        item = self.items.get(report.nodeid)
        if item is None or not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        message = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2]).removeprefix("Skipped: ")
        elif report.failed:
            message = report.longreprtext
        item.check.items[item.kind] = {"outcome": report.outcome, "message": message}

    def pytest_sessionfinish(self) -> None:
        entries = [check.report_entry() for check in self.checks.values() if check.items]
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # a pytest-xdist worker: hand the entries to the controller
            from lora_lint.runtime.report import json_safe

            workeroutput[_WORKER_ENTRIES] = json.dumps(json_safe(entries))
            return
        report = self.config.getoption("lora_report")
        if report:
            from lora_lint.runtime.report import merge_entries, write_report

            write_report(Path(report), merge_entries(entries + self.worker_entries))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist: a worker finished; its configs' entries join the controller's report."""
        raw = getattr(node, "workeroutput", {}).get(_WORKER_ENTRIES)
        if raw:
            self.worker_entries.extend(json.loads(raw))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        report = self.config.getoption("lora_report")
        if report:
            terminalreporter.write_line(f"lora-check report: {report}")

    # -- discovery ------------------------------------------------------------------------

    @property
    def project(self) -> Any:
        if self._project is None:
            from lora_lint.project import ProjectConfigError, load_project

            try:
                self._project = load_project(self.config.invocation_params.dir)
            except ProjectConfigError as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._project

    @property
    def device(self) -> str:
        from lora_lint.runtime.check import resolve_device

        return resolve_device(self.options.device)

    @property
    def fail_on(self) -> str:
        return self.config.getoption("lora_fail_on") or self.project.fail_on

    def is_candidate(self, path: Path) -> bool:
        if path.suffix not in CONFIG_SUFFIXES:
            return False
        if path.suffix == ".py":
            patterns = [*self.config.getini("python_files"), "conftest.py"]
            return not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)
        return True

    def config_file(self, path: Path, parent: pytest.Collector) -> LoraConfigFile | None:
        """A collector for ``path`` when it holds LoRA configs."""
        if not self.checks_for(path):
            return None
        self.collected.add(path.resolve())
        return LoraConfigFile.from_parent(parent, path=path)

    def checks_for(self, path: Path) -> list[str]:
        """Keys of the configs in one file (read and linted once)."""
        path = Path(path).resolve()
        if path not in self.by_file:
            self.by_file[path] = self._read(path)
        return self.by_file[path]

    def _read(self, path: Path) -> list[str]:
        from lora_lint.runtime.check import ConfigCheck

        if self._linter is None:
            from lora_lint.engine import Linter

            self._linter = Linter(self.project)
        try:
            raw = path.read_bytes()
        except OSError:
            return []
        keys = []
        shown = _relative(path, self.config.invocation_params.dir)
        for index, result in enumerate(self._linter.lint_bytes(shown, raw, named=False)):
            if result.setup is None and result.error is None:
                continue
            key = f"{shown}#{index}" if index else shown
            check = ConfigCheck(result, self.options, dict(self.project.models))
            self.checks[key] = check
            keys.append(key)
        return keys

    def ini_files(self) -> list[Path]:
        """Files named by the ``lora_check_paths`` ini option (globs and folders expanded)."""
        from lora_lint.engine import discover

        base = self.config.inipath.parent if self.config.inipath else self.config.rootpath
        found = []
        for pattern in self.config.getini("lora_check_paths"):
            matches = sorted(base.glob(pattern)) if any(c in pattern for c in "*?[") else [base / pattern]
            for match in matches:
                found += [Path(p) for p, _ in discover([str(match)], self.project) if self.is_candidate(Path(p))]
        return found

    def discovered(self) -> list[str]:
        """Keys of every config the fixtures run over: the ini paths plus the command-line paths."""
        if self._discovered is None:
            from lora_lint.engine import discover

            files = self.ini_files()
            for arg in self.config.args:
                target = Path(self.config.invocation_params.dir, arg.split("::")[0])
                if target.exists():
                    files += [Path(p) for p, _ in discover([str(target)], self.project) if self.is_candidate(Path(p))]
            keys: list[str] = []
            for path in files:
                keys += [key for key in self.checks_for(path) if key not in keys]
            self._discovered = keys
        return self._discovered

    # -- items ----------------------------------------------------------------------------

    def run(self, action: Any, check: ConfigCheck) -> Any:
        """Run an action on a check with one built model in memory at a time; map outcomes to pytest's."""
        from lora_lint.runtime.build import BuildError, Unsupported

        if check.setup is None:
            pytest.skip("the file could not be read as a config (see its static item)")
        for other in self.checks.values():
            if other is not check:
                other.release()
        try:
            return action()
        except Unsupported as exc:
            pytest.skip(str(exc))
        except BuildError as exc:
            raise LoraCheckFailure(f"{check.path}: cannot build: {exc}") from None

    def item_static(self, check: ConfigCheck) -> None:
        result = check.lint_result
        if result.error is not None:
            raise LoraCheckFailure(f"{result.path}:{result.error.line}:{result.error.column}: {result.error.message}")
        threshold = SEVERITY_RANK[self.fail_on]
        failing = [f for f in result.findings if SEVERITY_RANK[f.severity] >= threshold]
        if failing:
            lines = [f"{f.path}:{f.line}:{f.column}: {f.code} [{f.severity}] {f.message}" for f in failing]
            raise LoraCheckFailure("\n".join(lines))

    def item_shapes(self, check: ConfigCheck) -> None:
        report = check.shapes()
        if report.problems:
            built = check.model()
            which = f"{built.device}, {'proxy' if built.proxy else 'full size'}"
            raise LoraCheckFailure(f"{check.path}: adapter shapes ({which}):\n  " + "\n  ".join(report.problems))

    def item_memory(self, check: ConfigCheck) -> None:
        from lora_lint.runtime.check import MEMORY_UNDERESTIMATE_TOLERANCE

        measured = check.memory()
        predicted = measured["predicted_peak_bytes"]
        where = f"batch {measured['batch_size']} x {measured['sequence_length']} tokens"
        if measured.get("out_of_memory"):
            raise LoraCheckFailure(f"{check.path}: out of memory at {where}; predicted {predicted / GIB:.2f} GiB")
        peak = measured["peak_total_bytes"]
        if peak > predicted * (1 + MEMORY_UNDERESTIMATE_TOLERANCE):
            raise LoraCheckFailure(f"{check.path}: measured peak {peak / GIB:.2f} GiB at {where}, predicted "
                                   f"{predicted / GIB:.2f} GiB: the prediction is {peak / predicted - 1:.0%} low")  # fmt: skip

    def item_smoke(self, check: ConfigCheck) -> None:
        result = check.smoke()
        if result.symptoms:
            lines = [f"{s.name}: {s.message}" for s in result.symptoms]
            raise LoraCheckFailure(f"{check.path}: smoke run ({len(result.record.losses)} steps):\n  " + "\n  ".join(lines))  # fmt: skip

    # -- report ---------------------------------------------------------------------------


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
