"""Starts and watches the node's own nym-client (`--nym-client-bin PATH --nym-id ID`):
`init` once, then `run`, restarted with backoff whenever it exits."""

import asyncio
import logging
import os
import shutil
from pathlib import Path

from nymchat.children import child_env
from nymchat.errors import NymchatError

log = logging.getLogger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
# What a nym-client may need besides the basics; never the node's password.
NYM_CLIENT_ENV = ("RUST_LOG", "RUST_BACKTRACE", "SSL_CERT_FILE", "SSL_CERT_DIR")


class NymClientFailed(NymchatError):
    """The supervised nym-client cannot be started."""


class NymClientSupervisor:
    def __init__(self, binary: str, nym_id: str, port: int, data: Path):
        self.binary, self.nym_id, self.port = binary, nym_id, port
        self.marker = data / f"nym-client-{nym_id}.initialised"
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    def check(self) -> None:
        """`NymClientFailed` unless the binary is an executable file (or a command on PATH)."""
        if shutil.which(self.binary) is None:
            raise NymClientFailed(f"cannot run the nym-client {self.binary}: " + (
                "not an executable file" if os.path.exists(self.binary) else "no such file"))

    async def _init(self, stop: asyncio.Event) -> None:
        if self.marker.exists():
            return
        log.info("initialising nym-client %s", self.nym_id)
        self.process = await asyncio.create_subprocess_exec(
            self.binary, "init", "--id", self.nym_id, "--port", str(self.port),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env=child_env(*NYM_CLIENT_ENV))
        done = asyncio.ensure_future(self.process.communicate())
        if not await _before(done, stop):
            return  # `supervise` ends the process
        err = done.result()[1]
        if self.process.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()
            raise NymClientFailed(f"`{self.binary} init --id {self.nym_id}` failed (exit "
                                  f"{self.process.returncode})"
                                  f"{f': {detail[-1]}' if detail else ''}")
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
                    self.binary, "run", "--id", self.nym_id,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    env=child_env(*NYM_CLIENT_ENV))
                log.info("started nym-client %s (pid %d)", self.nym_id, self.process.pid)
                if not await _before(asyncio.ensure_future(self.process.wait()), stop):
                    break
                self.restarts += 1
                log.warning("nym-client %s exited with %s; restarting in %.0f s", self.nym_id,
                            self.process.returncode, delay)
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
