"""A private PostgreSQL + PostGIS cluster for pgstac: binaries, PostGIS install, initdb, start and stop."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rs_ondemand.stack.errors import StackError
from rs_ondemand.stack.health import tail
from rs_ondemand.stack.ports import HOST

PG_USER = "postgres"
"""The database superuser initdb creates; also the OS account the server runs as when we are root."""
CATALOG_DB = "stac"
SERVER_PACKAGE = "postgresql"
_EXTERNAL_ROOT = Path("/var/tmp/rs-ondemand-pg")
_UNIX_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes, ".s.PGSQL.<port>" included


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class PgInstall:
    """One installed PostgreSQL major version."""

    bindir: Path
    major: str
    sharedir: Path

    @property
    def postgis_package(self) -> str:
        return f"postgresql-{self.major}-postgis-3"

    def has_postgis(self) -> bool:
        return (self.sharedir / "extension" / "postgis.control").exists()


def _output(*argv: str | Path) -> str:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False).stdout.strip()


@functools.cache
def find_install() -> PgInstall:
    """The newest PostgreSQL server on this machine (Debian layout first, then `pg_config`, then PATH).

    Raises:
        StackError: when no server is installed.
    """
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.parent.name)],
    )
    candidates = [p.parent for p in debian[-1:]]
    if pg_config := shutil.which("pg_config"):
        candidates.append(Path(_output(pg_config, "--bindir")))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    bindir = next((c for c in candidates if (c / "initdb").exists()), None)
    if bindir is None:
        raise StackError(f"PostgreSQL server binaries not found: install the package '{SERVER_PACKAGE}'")
    match = re.search(r"(\d+)(?:\.\d+)?", _output(bindir / "initdb", "--version"))
    if not match:
        raise StackError(f"cannot tell the PostgreSQL version from {bindir / 'initdb'} --version")
    major = match.group(1)
    sharedir = Path(f"/usr/share/postgresql/{major}")
    if not sharedir.is_dir() and (bindir / "pg_config").exists():
        sharedir = Path(_output(bindir / "pg_config", "--sharedir"))
    return PgInstall(bindir=bindir, major=major, sharedir=sharedir)


def _apt_install(package: str, *, why: str, notify: Callable[[str], None], log_path: Path) -> None:
    """Install a Debian package as root, or fail naming it."""
    if not is_root() or not shutil.which("apt-get"):
        raise StackError(f"{why}: install the package '{package}' (as root: apt-get install {package})")
    notify(f"{why}: installing {package} with apt-get (once per machine, up to a minute)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", package]):
            log.write(f"\n=== {' '.join(argv)}\n".encode())
            log.flush()
            if subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode:
                raise StackError(f"'{' '.join(argv)}' failed", log_path=log_path, log_tail=tail(log_path))


def ensure_install(*, notify: Callable[[str], None], log_path: Path) -> PgInstall:
    """The PostgreSQL server with PostGIS (pgstac needs it), installed with apt-get when we are root.

    Raises:
        StackError: when either is missing and cannot be installed.
    """
    try:
        install = find_install()
    except StackError:
        _apt_install(SERVER_PACKAGE, why="PostgreSQL is missing", notify=notify, log_path=log_path)
        install = find_install()
    if not install.has_postgis():
        _apt_install(install.postgis_package, why="PostGIS is missing", notify=notify, log_path=log_path)
        if not install.has_postgis():
            raise StackError(f"{install.postgis_package} installed but postgis.control is not in {install.sharedir}")
    return install


def _postgres_can_traverse(directory: Path) -> bool:
    probe = ["runuser", "-u", PG_USER, "--", "test", "-x", str(directory)]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def read_postmaster_pid(data_dir: Path) -> int | None:
    """The pid in `data_dir`/postmaster.pid (None when the server is not running there)."""
    try:
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0]
    except (FileNotFoundError, PermissionError, IndexError):
        return None
    return int(first) if first.strip().isdigit() else None


def choose_pg_dir(state_dir: Path) -> Path:
    """Where the cluster of a stack lives.

    PostgreSQL refuses to run as root, so as root the server runs as `postgres`, which must be able to
    reach its data dir. pytest's temporary dirs (/tmp/pytest-of-root, mode 0700) are not reachable: then
    the cluster goes under /var/tmp, named after the state dir so the same stack finds it again.
    """
    if not is_root() or _postgres_can_traverse(state_dir):
        return state_dir / "pg"
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    return _EXTERNAL_ROOT / digest


class PgCluster:
    """One PostgreSQL cluster in `pg_dir/data`, listening on 127.0.0.1:`port` with trust authentication."""

    def __init__(self, install: PgInstall, pg_dir: Path, *, port: int, log_path: Path) -> None:
        self.install = install
        self.pg_dir = pg_dir
        self.data_dir = pg_dir / "data"
        self.port = port
        self.log_path = log_path

    def _argv(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.install.bindir / tool), *args]
        return ["runuser", "-u", PG_USER, "--", *argv] if is_root() else argv

    def _run(self, tool: str, *args: str, what: str) -> None:
        argv = self._argv(tool, *args)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {' '.join(argv)}\n".encode())
            log.flush()
            # Server output goes to pg_ctl's stdout when no -l is given: that is this log, opened by us,
            # so the postgres user needs no access to the state dir.
            done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.pg_dir, check=False)
        if done.returncode:
            raise StackError(f"PostgreSQL {what} failed", log_path=self.log_path, log_tail=tail(self.log_path))

    def initialised(self) -> bool:
        return self.data_dir.is_dir()

    def init(self) -> None:
        """Create the cluster once (later calls keep the catalog data)."""
        if self.pg_dir.parent == _EXTERNAL_ROOT:
            # Created by root under a possibly strict umask: the postgres user must still get through it.
            _EXTERNAL_ROOT.mkdir(parents=True, exist_ok=True)
            _EXTERNAL_ROOT.chmod(0o755)
        self.pg_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if is_root():
            shutil.chown(self.pg_dir, PG_USER, PG_USER)
        if not self.initialised():
            # initdb into a scratch dir renamed at the end: an interrupted `up` never leaves half a cluster.
            scratch = self.pg_dir / "data.initdb"
            shutil.rmtree(scratch, ignore_errors=True)
            self._run(
                "initdb",
                *("-D", str(scratch), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync"),
                what="initdb",
            )
            scratch.rename(self.data_dir)

    def start(self) -> int:
        """Start the server and wait until it accepts connections; returns the postmaster pid."""
        socket_dir = str(self.pg_dir) if len(str(self.pg_dir)) < _UNIX_SOCKET_PATH_MAX - 20 else ""
        options = f"-p {self.port} -c listen_addresses={HOST} -c fsync=off" + (
            f" -k {socket_dir}" if socket_dir else " -c unix_socket_directories=''"
        )
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-o", options, "start", what="start")
        pid = self.postmaster_pid()
        if pid is None:
            raise StackError("PostgreSQL started but wrote no postmaster.pid", log_path=self.log_path)
        return pid

    def stop(self) -> None:
        """Fast shutdown: open connections are closed, committed data is kept."""
        if self.postmaster_pid() is not None:
            self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "30", "-m", "fast", "stop", what="stop")

    def postmaster_pid(self) -> int | None:
        return read_postmaster_pid(self.data_dir)

    @property
    def conninfo(self) -> str:
        return f"host={HOST} port={self.port} user={PG_USER} connect_timeout=3"

    def env(self, database: str = CATALOG_DB) -> dict[str, str]:
        """The libpq variables pypgstac and stac-fastapi-pgstac read (PGPASSWORD is unused: trust auth)."""
        return {
            "PGHOST": HOST,
            "PGPORT": str(self.port),
            "PGUSER": PG_USER,
            "PGPASSWORD": PG_USER,
            "PGDATABASE": database,
        }

    def ensure_database(self, name: str = CATALOG_DB) -> None:
        import psycopg

        with psycopg.connect(self.conninfo + " dbname=postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')

    def accepts_connections(self, database: str = CATALOG_DB) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.conninfo + f" dbname={database}") as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def pgstac_version(self, database: str = CATALOG_DB) -> str | None:
        """The pgstac schema version in `database`, None before the first migration."""
        import psycopg

        try:
            with psycopg.connect(self.conninfo + f" dbname={database}") as conn:
                row = conn.execute("SELECT pgstac.get_version()").fetchone()
        except psycopg.Error:
            return None
        return str(row[0]) if row else None

    def migrate(self, pypgstac: str, base_env: Mapping[str, str]) -> None:
        """Create or upgrade the pgstac schema to pypgstac's version (also postgis, btree_gist, unaccent)."""
        # Skipping an up-to-date schema saves a second per restart (pypgstac's CLI is slow to import).
        if self.pgstac_version() == importlib.metadata.version("pypgstac"):
            return
        argv = [pypgstac, "migrate"]
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {' '.join(argv)}\n".encode())
            log.flush()
            env = {**base_env, **self.env()}
            done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
        if done.returncode:
            raise StackError("pypgstac migrate failed", log_path=self.log_path, log_tail=tail(self.log_path))
