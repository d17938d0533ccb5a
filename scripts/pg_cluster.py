#!/usr/bin/env python3
"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, the cluster in
DIR, no TCP (listen_addresses = ''), its Unix socket in DIR, trust for that socket only.
As root, initdb and the server run as `nobody` (PostgreSQL refuses root).

    scripts/pg_cluster.py start DIR   # initdb (first time), start, wait until it answers;
                                      # prints the libpq URL
    scripts/pg_cluster.py url DIR     # prints the URL again
    scripts/pg_cluster.py stop DIR    # pg_ctl stop -m fast

The URL is `postgresql://nymchat@/postgres?host=DIR` (user nymchat, database postgres).
"""

import argparse
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

SERVERS = Path("/usr/lib/postgresql")
USER = "nymchat"
SETTINGS = """
# scripts/pg_cluster.py: a throwaway cluster for tests, reachable only by its socket
listen_addresses = ''
unix_socket_directories = '{socket}'
max_connections = 200
shared_buffers = 32MB
fsync = on  # the tests check durability: never off
"""


class ClusterError(Exception):
    """What went wrong, in one line for the user."""


def server_binaries() -> Path:
    """The newest /usr/lib/postgresql/N/bin that has initdb, postgres and pg_ctl."""
    found = [
        path
        for path in SERVERS.glob("*/bin")
        if path.parent.name.isdigit()
        and all((path / tool).is_file() for tool in ("initdb", "postgres", "pg_ctl", "pg_isready"))
    ]
    if not found:
        raise ClusterError(
            f"no PostgreSQL server binaries in {SERVERS}/*/bin: install Debian's postgresql "
            "(apt-get install postgresql)"
        )
    return max(found, key=lambda path: int(path.parent.name))


def as_owner() -> list[str]:
    """The prefix that runs a command as the cluster's owner: `nobody` for root (PostgreSQL
    refuses to run as root), else the caller."""
    if os.geteuid() != 0:
        return []
    nobody = pwd.getpwnam("nobody")
    return [
        "setpriv",
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
        "--",
    ]


def url(directory: Path) -> str:
    return f"postgresql://{USER}@/postgres?host={quote(str(directory), safe='/')}"


def run(directory: Path, *command: str | Path) -> None:
    """Runs a PostgreSQL tool as the owner; raises ClusterError with its output on failure."""
    out = subprocess.run(
        [*as_owner(), *map(str, command)],
        cwd=directory,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if out.returncode != 0:
        raise ClusterError(
            f"{Path(command[0]).name} failed: {(out.stderr or out.stdout).strip()}"
            + (f"\n{log_tail(directory)}" if Path(command[0]).name == "pg_ctl" else "")
        )


def running(binaries: Path, directory: Path) -> bool:
    status = subprocess.run(
        [*as_owner(), binaries / "pg_ctl", "status", "-D", directory / "data"],
        cwd=directory,
        capture_output=True,
    )
    return status.returncode == 0


def log_tail(directory: Path) -> str:
    try:
        lines = (directory / "postgres.log").read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    return "server log:\n" + "\n".join(lines[-15:])


def prepare(directory: Path) -> None:
    """Creates DIR, owned by the cluster's owner, and checks the owner can reach it."""
    if not re.fullmatch(r"[^'\\\s]+", str(directory)):
        raise ClusterError(f"{directory}: the path may not hold quotes, backslashes or spaces")
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        shutil.chown(directory, nobody.pw_uid, nobody.pw_gid)
        reach = subprocess.run([*as_owner(), "test", "-w", str(directory)], cwd="/")
        if reach.returncode != 0:
            raise ClusterError(
                f"{directory}: nobody cannot reach it (a parent directory is private); "
                "use a directory under /tmp"
            )


def start(directory: Path) -> str:
    binaries = server_binaries()
    directory = directory.resolve()
    data = directory / "data"
    prepare(directory)
    if not (data / "PG_VERSION").exists():
        run(
            directory,
            binaries / "initdb",
            "-D",
            data,
            "--auth-local=trust",
            "--auth-host=reject",
            "-U",
            USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(SETTINGS.format(socket=directory))
    if running(binaries, directory):
        raise ClusterError(f"{directory}: a server already runs here (stop it first)")
    # -w: pg_ctl returns once the server accepts connections
    run(
        directory,
        binaries / "pg_ctl",
        "start",
        "-D",
        data,
        "-l",
        directory / "postgres.log",
        "-w",
        "-t",
        "120",
    )
    run(directory, binaries / "pg_isready", "-q", "-h", directory, "-U", USER, "-d", "postgres")
    return url(directory)


def stop(directory: Path) -> None:
    directory = directory.resolve()
    data = directory / "data"
    if not (data / "PG_VERSION").exists():
        raise ClusterError(f"{directory}: no cluster here")
    binaries = server_binaries()
    if not running(binaries, directory):
        print(f"pg_cluster: no server running in {directory}", file=sys.stderr)
        return
    run(directory, binaries / "pg_ctl", "stop", "-D", data, "-m", "fast", "-w")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "url"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            print(start(args.directory))
        elif args.command == "stop":
            stop(args.directory)
        else:
            if not (args.directory / "data" / "PG_VERSION").exists():
                raise ClusterError(f"{args.directory}: no cluster here")
            print(url(args.directory.resolve()))
    except ClusterError as error:
        print(f"pg_cluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
