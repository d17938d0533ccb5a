"""The node's listener for operators: Prometheus text exposition of its counters
(`/metrics`), liveness (`/health`) and readiness (`/ready`); on a loopback address unless
the operator says otherwise (`--metrics-public`)."""

import asyncio
import bisect
import ipaddress
import logging

from nymchat.node.database import StoreError

log = logging.getLogger(__name__)
RELAY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86_400)
READY_PATIENCE = 2.0  # seconds the database has to answer a readiness check


class Histogram:
    def __init__(self, buckets=RELAY_BUCKETS):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip((*self.buckets, "+Inf"), self.counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        out += [f"{name}_sum {self.total:.6f}", f"{name}_count {running}"]
        return out


async def render(node) -> str:
    """The metrics page for a running node (a `NodeRunner`)."""
    service = node.service
    users, queued = await service.store.count_users(), await service.store.count_queued()
    lines = [
        "# HELP nymchat_node_users Registered users.",
        "# TYPE nymchat_node_users gauge",
        f"nymchat_node_users {users}",
        "# HELP nymchat_node_queued_messages Messages waiting for acknowledgement.",
        "# TYPE nymchat_node_queued_messages gauge",
        f"nymchat_node_queued_messages {queued}",
        "# HELP nymchat_node_requests_total Requests handled, by kind and result.",
        "# TYPE nymchat_node_requests_total counter",
    ]
    lines += [
        f'nymchat_node_requests_total{{kind="{kind}",result="{result}"}} {n}'
        for (kind, result), n in sorted(service.counts.items())
    ]
    lines += [
        "# HELP nymchat_node_dropped_total Incoming messages dropped before decoding "
        "(rate_limited, intake_full: silently, per route), or answers dropped "
        "(unknown_frontend, frontend_down).",
        "# TYPE nymchat_node_dropped_total counter",
    ]
    lines += [
        f'nymchat_node_dropped_total{{reason="{reason}"}} {n}'
        for reason, n in sorted({**node.dropped, **node.intake.dropped}.items())
    ]
    lines += [
        "# HELP nymchat_node_frontends Frontends (nym-clients) the node answers on.",
        "# TYPE nymchat_node_frontends gauge",
        f"nymchat_node_frontends {len(node.frontends)}",
        "# HELP nymchat_node_frontends_connected Frontends whose nym-client websocket is up.",
        "# TYPE nymchat_node_frontends_connected gauge",
        f"nymchat_node_frontends_connected {node.connected}",
        "# HELP nymchat_node_group_watches_held Group watches held until their group has a "
        "new entry (requests_total counts them as result held when held).",
        "# TYPE nymchat_node_group_watches_held gauge",
        f"nymchat_node_group_watches_held {len(service.groups.watches)}",
        "# HELP nymchat_node_relay_seconds From a message's acceptance to its "
        "acknowledgement by the recipient.",
        "# TYPE nymchat_node_relay_seconds histogram",
    ]
    lines += service.relay_seconds.lines("nymchat_node_relay_seconds")
    lines += await _per_frontend(node)
    return "\n".join(lines) + "\n"


async def _per_frontend(node) -> list[str]:
    """Each of this process's frontends: up or not, frames sent, users homed there."""
    store, frontends = node.service.store, node.frontends
    homed = {frontend: await store.count_homed(frontend) for frontend in frontends}
    lines = [
        "# HELP nymchat_node_frontend_connected Whether the frontend's nym-client websocket is up.",
        "# TYPE nymchat_node_frontend_connected gauge",
    ]
    lines += [
        f'nymchat_node_frontend_connected{{frontend="{frontend}"}} {int(transport.connected)}'
        for frontend, transport in frontends.items()
    ]
    lines += [
        "# HELP nymchat_node_frontend_packets_sent_total Frames (answers and pushes) sent "
        "through the frontend's nym-client.",
        "# TYPE nymchat_node_frontend_packets_sent_total counter",
    ]
    lines += [
        f'nymchat_node_frontend_packets_sent_total{{frontend="{frontend}"}} {node.sent[frontend]}'
        for frontend in frontends
    ]
    lines += [
        "# HELP nymchat_node_frontend_users_homed Users whose messages go out through the "
        "frontend.",
        "# TYPE nymchat_node_frontend_users_homed gauge",
    ]
    lines += [
        f'nymchat_node_frontend_users_homed{{frontend="{frontend}"}} {homed[frontend]}'
        for frontend in frontends
    ]
    return lines


async def unready(node) -> str | None:
    """Why the node cannot serve now (its database does not answer, or no frontend is
    connected), or None when it can."""
    try:
        async with asyncio.timeout(READY_PATIENCE):
            await node.service.store.ping()
    except TimeoutError:
        return f"the database did not answer within {READY_PATIENCE:g} s"
    except StoreError as e:
        return str(e)
    if not node.connected:
        return "no frontend is connected to its nym-client"
    return None


def parse_listen(text: str, public: bool = False) -> tuple[str, int]:
    """`HOST:PORT` to listen on; beyond loopback only if `public`."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        address, number = ipaddress.ip_address(host), int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--metrics {text}: give a loopback HOST:PORT, e.g. 127.0.0.1:9477"
        ) from None
    if not (address.is_loopback or public):
        raise ValueError(
            f"--metrics {text}: the metrics show counts an observer should not see (users, "
            "queued messages, requests by kind, traffic per frontend); give a loopback "
            "HOST:PORT, e.g. 127.0.0.1:9477, or add --metrics-public for a scraper on a "
            "private network"
        )
    return host, number


async def _page(path: bytes, node) -> tuple[bytes, bytes]:
    """The status and body for `path`."""
    if path == b"/metrics":
        try:
            return b"200 OK", (await render(node)).encode()
        except StoreError as e:
            return b"503 Service Unavailable", f"no metrics now: {e}\n".encode()
    if path == b"/health":
        return b"200 OK", b"ok\n"
    if path == b"/ready":
        why = await unready(node)
        if why is None:
            return b"200 OK", b"ready\n"
        return b"503 Service Unavailable", f"not ready: {why}\n".encode()
    return b"404 Not Found", b"try /metrics, /health or /ready\n"


async def serve(listen: str, node, public: bool = False) -> asyncio.Server:
    host, port = parse_listen(listen, public)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            path = request.split()[1] if len(request.split()) > 1 else b""
            status, body = await _page(path, node)
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; "
                b"version=0.0.4\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    shown = f"[{host}]" if ":" in host else host
    log.info("metrics on http://%s:%d/metrics (and /health, /ready)", shown, port)
    return server
