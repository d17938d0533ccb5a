"""Prometheus text exposition of the node's counters, on a loopback address."""

import asyncio
import bisect
import ipaddress
import logging

log = logging.getLogger(__name__)
RELAY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86_400)


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
        "# HELP nymchat_node_relay_seconds From a message's acceptance to its "
        "acknowledgement by the recipient.",
        "# TYPE nymchat_node_relay_seconds histogram",
    ]
    lines += service.relay_seconds.lines("nymchat_node_relay_seconds")
    return "\n".join(lines) + "\n"


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError
        return host, int(port)
    except ValueError:
        raise ValueError(
            f"--metrics {text}: give a loopback HOST:PORT, e.g. 127.0.0.1:9477"
        ) from None


async def serve(listen: str, node) -> asyncio.Server:
    host, port = parse_listen(listen)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            path = request.split()[1] if len(request.split()) > 1 else b""
            if path == b"/metrics":
                body, status = (await render(node)).encode(), b"200 OK"
            else:
                body, status = b"try /metrics\n", b"404 Not Found"
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
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server
