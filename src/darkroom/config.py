"""Settings: every knob of darkroom, read once from `DARKROOM_*` env and `darkroom.toml`.

Defaults need nothing: a home folder (`~/.darkroom`) with an SQLite database and a local blob
folder. Precedence, highest first: constructor arguments, environment, `darkroom.toml` (in the
working directory, or the file named by `DARKROOM_CONFIG`), defaults.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

if TYPE_CHECKING:
    from darkroom.bundles.archive import Limits
    from darkroom.domain.resources import RunResources
    from darkroom.domain.transfer import ImportLimits
    from darkroom.engine.executors.local import LocalExecutor
    from darkroom.engine.executors.ray import RayExecutor
    from darkroom.engine.scheduler import SchedulerConfig

__all__ = ["Settings", "get_settings"]

MiB = 1024 * 1024


def _toml_path() -> Path:
    return Path(os.environ.get("DARKROOM_CONFIG", "darkroom.toml"))


class Settings(BaseSettings):
    """darkroom's configuration. Field names map to `DARKROOM_<NAME>` variables."""

    model_config = SettingsConfigDict(env_prefix="DARKROOM_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".darkroom")
    database_url: str | None = None
    storage_url: str | None = None
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for storage_url, e.g. S3 endpoint_url"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str | None = None
    max_upload_bytes: int = 2048 * MiB
    max_image_pixels: int = 100_000_000
    max_archive_bytes: int = 8192 * MiB
    max_archive_ratio: int = 200
    max_bundle_bytes: int = 50 * MiB
    max_bundle_unpacked_bytes: int = 200 * MiB
    max_bundle_files: int = 5000
    thumbnail_size: int = 256
    max_concurrent_runs: int = 2
    run_lease_s: float = 60.0
    run_heartbeat_s: float = 10.0
    cancel_grace_s: float = 10.0
    executor: Literal["local", "ray"] = Field(
        "local", description="local: runs are processes of this machine; ray: Ray jobs"
    )
    ray_address: str = Field(
        "http://127.0.0.1:8265", description="the Ray cluster's dashboard (Jobs API) address"
    )
    ray_serve_url: str = Field(
        "http://127.0.0.1:8001",
        description="where Ray Serve's HTTP proxy answers (deployments, when the executor is ray)",
    )
    ray_python: str | None = Field(
        None, description="darkroom's Python on the Ray nodes (default: this one's path)"
    )
    sandbox: Literal["bwrap", "none"] = Field(
        "bwrap", description="bwrap: every run in a bubblewrap sandbox; none: unsandboxed"
    )
    sandbox_uid: int | None = Field(
        None,
        ge=0,
        description="host uid (and gid) sandboxes run as when darkroom runs as root; default: "
        "root's first id in /etc/subuid, else nobody (65534); 0 keeps root (never for code you "
        "do not trust)",
    )
    standby: bool = Field(
        True,
        description="keep one sandbox started ahead (imports done, ~70 MB) for the next run of "
        "a built-in or inline processing under the default limits: it starts in milliseconds",
    )
    gpus: int | None = Field(
        None,
        ge=0,
        description="GPUs this worker lends to runs asking for some (default: the NVIDIA GPUs "
        "found, within CUDA_VISIBLE_DEVICES; 0: none)",
    )
    run_memory: int | str = Field("4GiB", description="memory limit of a run (data segment)")
    run_disk: int | str = Field("1GiB", description="size of a run's temporary directory")
    run_processes: int = 256
    run_cpu_time_s: int | None = None
    serve_deployments: bool = Field(
        True, description="this server runs deployments' replicas and answers their predict"
    )
    webhooks_allow_private: bool = Field(
        False, description="let webhooks post to private and loopback addresses (tests, intranets)"
    )
    max_predict_bytes: int = Field(50 * MiB, description="largest image a predict accepts")
    blob_gc_interval_s: float = Field(6 * 3600, description="0 turns the periodic GC off")
    blob_gc_grace_s: float = 3600

    @property
    def run_defaults(self) -> RunResources:
        """Limits of runs whose processing asks for none (checked like a processing's)."""
        from darkroom.domain.resources import RunResources, parse_resources

        asked = parse_resources({"memory": self.run_memory, "disk": self.run_disk,
                                 "processes": self.run_processes,
                                 "cpu_time_s": self.run_cpu_time_s})  # fmt: skip
        return RunResources(**{"cpu_time_s": None, **asked})

    @property
    def sandbox_hidden(self) -> list[Path]:
        """What no sandbox sees: darkroom's home and a local blob store."""
        hidden = [self.home]
        if "://" not in self.resolved_storage_url:
            hidden.append(Path(self.resolved_storage_url))
        return hidden

    def make_executor(self) -> LocalExecutor | RayExecutor:
        """The executor as configured. Local: its sandbox hides darkroom's home and blobs.
        Ray: runs go to the cluster at `ray_address`, sandboxed on their nodes."""
        if self.executor == "ray":
            from darkroom.engine.executors.ray import RayExecutor

            return RayExecutor(
                self.ray_address, instance=self.instance, python=self.ray_python or sys.executable,
                defaults=self.run_defaults, sandbox_mode=self.sandbox,
                unreachable_s=self.run_lease_s, sandbox_uid=self.sandbox_uid,
            )  # fmt: skip
        from darkroom.engine.executors.local import LocalExecutor
        from darkroom.engine.gpus import worker_gpus

        local_store = "://" not in self.resolved_storage_url
        store_root = Path(self.resolved_storage_url) if local_store else None
        return LocalExecutor(
            sandbox_mode=self.sandbox, defaults=self.run_defaults, hidden=self.sandbox_hidden,
            instance=self.instance, store_root=store_root, standby=self.standby,
            sandbox_uid=self.sandbox_uid, gpus=worker_gpus(self.gpus),
        )  # fmt: skip

    @property
    def instance(self) -> str:
        """Names this darkroom (its database) on a machine: its runs' sandboxes and processes
        carry it, since run ids of two darkrooms collide."""
        return hashlib.sha256(self.resolved_database_url.encode()).hexdigest()[:12]

    @property
    def import_limits(self) -> ImportLimits:
        """What an imported archive may hold (its images' pixels, its size and ratio)."""
        from darkroom.domain.transfer import ImportLimits

        return ImportLimits(self.max_image_pixels, self.max_archive_bytes, self.max_archive_ratio)

    @property
    def bundle_limits(self) -> Limits:
        from darkroom.bundles.archive import Limits

        return Limits(self.max_bundle_bytes, self.max_bundle_unpacked_bytes, self.max_bundle_files)

    @property
    def scheduler(self) -> SchedulerConfig:
        from darkroom.engine.scheduler import SchedulerConfig

        return SchedulerConfig(
            max_concurrent=self.max_concurrent_runs,
            lease_s=self.run_lease_s,
            heartbeat_s=self.run_heartbeat_s,
            cancel_grace_s=self.cancel_grace_s,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_toml_path())
        return (init_settings, env_settings, toml)

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL; the SQLite file in `home` unless one is configured."""
        return self.database_url or f"sqlite:///{self.home / 'darkroom.db'}"

    @cached_property
    def resolved_storage_url(self) -> str:
        """Where blobs live; the `blobs/` folder in `home` unless one is configured."""
        return self.storage_url or str(self.home / "blobs")

    @property
    def admin_token_path(self) -> Path:
        return self.home / "admin-token"


def get_settings() -> Settings:
    """Settings from the environment; a fresh read each call (tests change the env)."""
    return Settings()
