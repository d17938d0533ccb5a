"""Starts and watches the node's own nym-client (`--nym-client-bin PATH --nym-id ID`):
`init` once, then `run`, restarted with backoff whenever it exits."""

import asyncio
import logging
from pathlib import Path

from nymchat.children import child_env

log = logging.getLogger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
# What a nym-client may need besides the basics; never the node's password.
NYM_CLIENT_ENV = ("RUST_LOG", "RUST_BACKTRACE", "SSL_CERT_FILE", "SSL_CERT_DIR")


class NymClientSupervisor:
    def __init__(self, binary: str, nym_id: str, port: int, data: Path):
        self.binary, self.nym_id, self.port = binary, nym_id, port
        self.marker = data / f"nym-client-{nym_id}.initialised"
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    async def _init(self) -> None:
        if self.marker.exists():
            return
        log.info("initialising nym-client %s", self.nym_id)
        init = await asyncio.create_subprocess_exec(
            self.binary, "init", "--id", self.nym_id, "--port", str(self.port),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env=child_env(*NYM_CLIENT_ENV))
        _, err = await init.communicate()
        if init.returncode != 0:
            raise RuntimeError(f"`{self.binary} init --id {self.nym_id}` failed "
                               f"({init.returncode}): {err.decode(errors='replace')[-300:]}")
        self.marker.write_text(self.nym_id + "\n")

    async def supervise(self, stop: asyncio.Event) -> None:
        """Runs the nym-client until `stop`; restarts it when it dies."""
        await self._init()
        delay = BACKOFF_FIRST
        while not stop.is_set():
            self.process = await asyncio.create_subprocess_exec(
                self.binary, "run", "--id", self.nym_id,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                env=child_env(*NYM_CLIENT_ENV))
            log.info("started nym-client %s (pid %d)", self.nym_id, self.process.pid)
            waiter = asyncio.create_task(self.process.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if stop.is_set():
                break
            self.restarts += 1
            log.warning("nym-client %s exited with %s; restarting in %.0f s", self.nym_id,
                        self.process.returncode, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
        await self.terminate()

    async def terminate(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
