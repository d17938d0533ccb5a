"""Starts and watches a nym-client of our own (`--nym-client-bin PATH --nym-id ID`, for the
node and for the chat): `init` once, then `run`, restarted with backoff whenever it exits."""

import asyncio
import concurrent.futures
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from nymchat.children import child_env
from nymchat.errors import Unreachable
from nymchat.nym.transport import NOT_CONNECTED, NymClient

log = logging.getLogger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
# What a nym-client may need besides the basics; never the node's password.
NYM_CLIENT_ENV = ("RUST_LOG", "RUST_BACKTRACE", "SSL_CERT_FILE", "SSL_CERT_DIR")
DEFAULT_PORT = 1977  # the nym-client's own default
PATIENCE = 120.0  # seconds a nym-client just started may take to answer (it finds a gateway)


class NymClientFailed(Unreachable):
    message = "the nym-client cannot be started"


class NymClientSupervisor:
    def __init__(self, binary: str, nym_id: str, port: int, data: Path):
        self.binary, self.nym_id, self.port = binary, nym_id, port
        self.marker = data / f"nym-client-{nym_id}.initialised"
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    def check(self) -> None:
        """`NymClientFailed` unless the binary is an executable file (or a command on PATH)."""
        if shutil.which(self.binary) is None:
            raise NymClientFailed(
                f"cannot run the nym-client {self.binary}: "
                + ("not an executable file" if os.path.exists(self.binary) else "no such file")
            )

    async def _init(self, stop: asyncio.Event) -> None:
        if self.marker.exists():
            return
        log.info("initialising nym-client %s", self.nym_id)
        self.process = await asyncio.create_subprocess_exec(
            self.binary,
            "init",
            "--id",
            self.nym_id,
            "--port",
            str(self.port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(*NYM_CLIENT_ENV),
        )
        done = asyncio.ensure_future(self.process.communicate())
        if not await _before(done, stop):
            return  # `supervise` ends the process
        err = done.result()[1]
        if self.process.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()
            raise NymClientFailed(
                f"`{self.binary} init --id {self.nym_id}` failed (exit "
                f"{self.process.returncode})"
                f"{f': {detail[-1]}' if detail else ''}"
            )
        self.marker.write_text(self.nym_id + "\n")

    async def supervise(self, stop: asyncio.Event) -> None:
        """Runs the nym-client until `stop` (which interrupts any step at once); restarts
        it when it dies. `NymClientFailed` when it cannot be started at all."""
        self.check()
        try:
            await self._init(stop)
            delay = BACKOFF_FIRST
            while not stop.is_set():
                self.process = await asyncio.create_subprocess_exec(
                    self.binary,
                    "run",
                    "--id",
                    self.nym_id,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    env=child_env(*NYM_CLIENT_ENV),
                )
                log.info("started nym-client %s (pid %d)", self.nym_id, self.process.pid)
                if not await _before(asyncio.ensure_future(self.process.wait()), stop):
                    break
                self.restarts += 1
                log.warning(
                    "nym-client %s exited with %s; restarting in %.0f s",
                    self.nym_id,
                    self.process.returncode,
                    delay,
                )
                if not await _before(asyncio.ensure_future(asyncio.sleep(delay)), stop):
                    break
                delay = min(delay * 2, BACKOFF_MAX)
        finally:
            await self.terminate()

    async def terminate(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()


async def until_answering(url: str, supervised: asyncio.Task, patience: float = PATIENCE) -> None:
    """Returns once the nym-client at `url` answers (its websocket tells its address);
    raises what ended `supervised` if it ended first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        if supervised.done():
            supervised.result()
            raise NymClientFailed(f"the nym-client for {url} stopped before it answered")
        probe = NymClient(url, reconnect=False)
        try:
            await probe.start()
            return
        except NOT_CONNECTED:
            if loop.time() > deadline:
                raise
        finally:
            await probe.close()
        await asyncio.sleep(0.5)


@contextmanager
def supervised(binary: str, nym_id: str, url: str, state: Path) -> Iterator[None]:
    """Runs a nym-client that listens at `url` under a `NymClientSupervisor`, in a thread
    of its own, while the block runs: enters once it answers, stops it on the way out.
    For a program that is not one asyncio loop from start to end (the chat asks its
    first-run questions before its loop starts)."""
    supervisor = NymClientSupervisor(binary, nym_id, urlsplit(url).port or DEFAULT_PORT, state)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready: concurrent.futures.Future[None] = concurrent.futures.Future()

    async def main() -> None:
        task = asyncio.create_task(supervisor.supervise(stop))
        try:
            await until_answering(url, task)
        except (OSError, RuntimeError) as e:  # it could not be started, or `init` failed
            ready.set_exception(NymClientFailed(f"could not start the nym-client {binary}: {e}"))
            stop.set()
        except BaseException as e:
            ready.set_exception(e)
            stop.set()
        else:
            ready.set_result(None)
        await asyncio.gather(task, return_exceptions=True)

    thread = threading.Thread(
        target=loop.run_until_complete, args=(main(),), name="nym-client-supervisor", daemon=True
    )
    thread.start()
    try:
        ready.result()
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        loop.close()


async def _before(task: asyncio.Future, stop: asyncio.Event) -> bool:
    """Waits for `task` or `stop`, whichever comes first; True if `task` did (else it is
    cancelled)."""
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task.done():
        return True
    task.cancel()
    return False
