"""What `viscover serve --workers N` hands each worker process: one environment variable holding JSON (home, --db,
the settings as the command resolved them, detector included, the serving options with the API key, and the run
folder the workers share). uvicorn starts the workers (spawned: they inherit the environment, not Python objects) and
hands them its own part itself (socket, log level and log config). A worker reads the variable and removes it from
its environment, so that processes it starts (embedding workers) never inherit the key."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, MutableMapping

from viscover import ConfigError, Settings
from viscover.serve.app import ServeOptions

ENV = "VISCOVER_WORKER_CONFIG"


@dataclass(frozen=True)
class WorkerConfig:
    """One server's configuration, the same for each of its workers."""

    home: str
    db: str | None
    settings: dict[str, Any]
    options: dict[str, Any]
    run_dir: str

    @classmethod
    def of(cls, home: str, db: str | None, settings: Settings, options: ServeOptions, run_dir: str) -> "WorkerConfig":
        return cls(home, db, dataclasses.asdict(settings), dataclasses.asdict(options), run_dir)

    def served_settings(self) -> Settings:
        return Settings().replace(**self.settings)

    def serve_options(self) -> ServeOptions:
        return ServeOptions(**{**self.options, "cors_origins": tuple(self.options.get("cors_origins", ()))})


def hand_over(config: WorkerConfig, environ: MutableMapping[str, str]) -> None:
    """Put `config` into `environ` (the parent's, before uvicorn spawns the workers)."""
    environ[ENV] = json.dumps(dataclasses.asdict(config))


def take_over(environ: MutableMapping[str, str] | None = None) -> WorkerConfig:
    """The configuration a worker was handed, removed from its environment."""
    environ = os.environ if environ is None else environ
    text = environ.pop(ENV, None)
    if text is None:
        raise ConfigError(f"{ENV} is not set: server worker processes are started by `viscover serve --workers N`")
    try:
        return WorkerConfig(**json.loads(text))
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{ENV} does not hold a server's configuration ({e}); start the server with "
                          "`viscover serve --workers N`") from None
