"""The node as MLS delivery service (docs/PROTOCOL.md, "Groups"), sans-I/O like the rest
of the service: the key-package directory, and per group an ordered log that takes one
commit per epoch (compare and set) and fans out what is posted, stored once.

Group posts are anonymous: what lets one in is the group's access key of the epoch it
belongs to (the node keeps the verifiers of the last `groupstore.KEPT_EPOCHS`), so the node learns a
group id, its epoch and its members' queues, never who posts or commits. Members homed at
other nodes watch the log anonymously with the same key (`group_watch`): answered at once
with what is after their position, or held (`Watches`) until something is."""

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from nymchat import _native
from nymchat.node.groupstore import Group, GroupQueued
from nymchat.node.limits import lookup_difficulty
from nymchat.node.refused import Refused
from nymchat.node.watches import Held, Watches
from nymchat.protocol import pow, wire
from nymchat.protocol.wire import ErrorCode, GroupPost, Kind

if TYPE_CHECKING:
    from nymchat.node.service import NodeService, Outgoing, _Context

NOT_MEMBER = "not a member of this group"  # whether the group exists or not
# A `group_entries` answer fits the frames its request's reply SURBs pay for beyond what
# the node's nym-client keeps in reserve (client.nodelink.REPLY_SURBS = 20, 10 kept): the
# 8-frame bucket, less the answer's own 108 bytes (header, last, oldest, list count,
# signature), each entry taking 45 bytes besides its payload. An entry larger than that
# goes alone (the nym-client asks the watcher for the SURBs it lacks).
WATCH_ANSWER_BYTES = 8 * _native.FRAME_CHUNK_LEN - 108
ENTRY_BYTES = 45
# Epochs and positions are signed 64-bit integers in the database: none reaches these, and
# a request naming a larger one (a u64 on the wire) never gets to it.
LAST_EPOCH = LAST_POSITION = (1 << 63) - 1
HOUR = 3_600_000  # a watched group's mark is written again once an hour old (or 1/16 retention)


class GroupHandlers:
    """The group requests of `service`, which registers `handlers()` as its own."""

    def __init__(self, service: "NodeService"):
        self.service = service
        self.store = service.store.groups
        self.watches = Watches()

    def handlers(self) -> dict[Kind, Callable[["_Context"], Awaitable[None]]]:
        return {
            Kind.PUBLISH_KEY_PACKAGES: self._publish,
            Kind.CLAIM_KEY_PACKAGE: self._claim,
            Kind.GROUP_POST: self._post,
            Kind.GROUP_WATCH: self._watch,
            Kind.LEAVE_GROUP: self._leave,
        }

    # --- key packages ---------------------------------------------------------------

    async def _publish(self, ctx: "_Context") -> None:
        user = self.service._registered(ctx)
        packages, last_resort = ctx.request.body["key_packages"], ctx.request.body["last_resort"]
        if not all(packages) or last_resort == b"":
            raise Refused(ErrorCode.BAD_REQUEST, "a key package is empty")
        most = self.service.config.max_key_packages
        if await self.store.count_key_packages(user.key) + len(packages) > most:
            raise Refused(ErrorCode.KEYS_FULL, f"at most {most} key packages are kept")
        await self.store.add_key_packages(user.key, packages)
        if last_resort is not None:
            await self.store.set_last_resort(user.key, last_resort)
        self.service._reply(
            ctx,
            Kind.KEY_PACKAGES_PUBLISHED,
            key_packages_left=await self.store.count_key_packages(user.key),
        )

    async def _claim(self, ctx: "_Context") -> None:
        """Anonymous, like a lookup: one package, handed out once, for the work of
        `lookup_difficulty`; with none left, the last resort (kept)."""
        service = self.service
        if not service.lookups.allow(ctx.tag, ctx.now):
            raise Refused(ErrorCode.RATE_LIMITED, "too many lookups; slow down")
        sent = ctx.request.body["username"]
        username, user = await service._user_named(sent)
        left = await self.store.count_key_packages(user.key)
        if left:
            bits = lookup_difficulty(left)
            bound = pow.lookup(service.key, ctx.request.request_id, sent)  # the name as sent
            if not pow.check(bound, ctx.request.body["proof_of_work"], bits):
                return service._ask_work(ctx, bits)
            package = await self.store.take_key_package(user.key)
        else:
            package = await self.store.last_resort(user.key)
        if package is None:
            raise Refused(ErrorCode.NOT_FOUND, f"{username} has not published group keys")
        service._reply(
            ctx, Kind.KEY_PACKAGE, username=username, identity=user.identity, key_package=package
        )
        if left and left - 1 < service.config.keys_low and user.sender_tag:
            ctx.out.append(
                service._answer(
                    user.identity,
                    user.sender_tag,
                    None,
                    Kind.KEY_PACKAGES_LOW,
                    {"key_packages_left": left - 1},
                    ctx.now,
                    user.push_key,
                )
            )

    # --- the log --------------------------------------------------------------------

    async def _post(self, ctx: "_Context") -> None:
        service, config, body = self.service, self.service.config, ctx.request.body
        if not service.sealed_sends.allow(ctx.tag, ctx.now):
            raise Refused(ErrorCode.RATE_LIMITED, "too many messages; slow down")
        group_id, epoch, message_id = body["group_id"], body["epoch"], body["message_id"]
        commit = body["post"] == GroupPost.COMMIT
        size = _check_shape(body, config)
        group = await self.store.group(group_id)
        watched = group is not None and group.watched(ctx.now)
        if group is None:
            if not (commit and epoch == 0):  # else a commit at 0 creates the group
                raise Refused(ErrorCode.FORBIDDEN, NOT_MEMBER)
        elif epoch > LAST_EPOCH or not _matches(
            await self.store.verifier(group_id, epoch), body["access_key"]
        ):
            raise Refused(ErrorCode.FORBIDDEN, NOT_MEMBER)
        elif commit and group.last_commit == message_id and group.epoch == epoch + 1:
            return service._reply(ctx, Kind.POSTED, message_id=message_id, epoch=group.epoch)
        elif commit and epoch != group.epoch:
            raise Refused(
                ErrorCode.EPOCH_CONFLICT,
                f"another commit was accepted first: the group is at epoch {group.epoch}",
            )
        elif await self.store.has_entry(group_id, message_id):
            if commit:  # an earlier epoch's commit id: its entry may not be written twice
                raise Refused(ErrorCode.BAD_REQUEST, "this message id was used in this group")
            return service._reply(ctx, Kind.POSTED, message_id=message_id, epoch=group.epoch)
        if await service.store.queued_bytes() + size > config.node_queue_max_bytes:
            raise Refused(ErrorCode.BUSY, "this node holds as much as it may; try again later")
        if watched:  # the oldest entries only watchers still need make room
            full = not await self.store.make_room(group_id, config.queue_max_messages)
        else:
            full = (
                group is not None
                and await self.store.count_entries(group_id) >= config.queue_max_messages
            )
        if full:
            raise Refused(
                ErrorCode.QUEUE_FULL,
                "this group's log is full; try again once its members have fetched",
            )
        if commit:
            return await self._commit(ctx, creating=group is None, watched=watched)
        assert group is not None  # only a commit creates one
        recipients = await self.store.members(group_id)
        entry = await self.store.post(
            group_id, epoch, body["post"], message_id, body["payload"], ctx.now, recipients, watched
        )
        ctx.posted.append(group_id)
        ctx.out += await self._fan_out(entry, ctx.now)
        service._reply(ctx, Kind.POSTED, message_id=message_id, epoch=group.epoch)

    async def _commit(self, ctx: "_Context", creating: bool, watched: bool) -> None:
        """Compare-and-set passed: checks who the commit lets in and the group's size
        before anything is written; the commit goes to the members before it (the removed
        ones learn of it), its Welcome to those it adds, released together."""
        service, body = self.service, ctx.request.body
        group_id, epoch, message_id = body["group_id"], body["epoch"], body["message_id"]
        before = set() if creating else set(await self.store.members(group_id))
        added: list[bytes] = []
        work = 0
        for new in body["add"]:
            username, user = await service._user_named(new.username)
            if user.key in before or user.key in added:
                continue
            added.append(user.key)
            if service._has_access(user, new.access_key):
                continue
            if user.strangers == wire.STRANGERS_DENY:
                raise Refused(
                    ErrorCode.FORBIDDEN, f"{username} takes messages from their contacts only"
                )
            bound = pow.send(service.key, new.username, message_id)  # the name as sent
            if not pow.check(bound, new.proof_of_work, user.strangers):
                work = max(work, user.strangers)
        if work:
            return service._ask_work(ctx, work)
        removed = {self._member_key(name) for name in body["remove"]} & before
        after = (before - removed) | set(added)
        if not after:
            raise Refused(ErrorCode.BAD_REQUEST, "a commit cannot leave a group with no member")
        most = service.config.group_max_members
        if len(after) > most:
            raise Refused(ErrorCode.TOO_LARGE, f"a group has at most {most} members")
        if creating:
            await self.store.create(group_id, wire.access_verifier(body["access_key"]), ctx.now)
        commit = await self.store.post(
            group_id,
            epoch,
            GroupPost.COMMIT,
            message_id,
            body["payload"],
            ctx.now,
            list(before),
            watched,
        )
        ctx.posted.append(group_id)
        welcome = None
        if body["welcome"] is not None:
            fresh = [key for key in added if key not in before]
            welcome = await self.store.post(
                group_id, epoch + 1, GroupPost.WELCOME, message_id, body["welcome"], ctx.now, fresh
            )
        await self.store.advance(group_id, epoch, body["next_verifier"], message_id)
        await self.store.add_members(group_id, added)
        await self.store.remove_members(group_id, removed)
        ctx.out += await self._fan_out(commit, ctx.now) + await self._fan_out(welcome, ctx.now)
        service._reply(ctx, Kind.POSTED, message_id=message_id, epoch=epoch + 1)

    def _member_key(self, text: str) -> bytes:
        return self.service.store.names.name(self.service._name(text))

    async def _leave(self, ctx: "_Context") -> None:
        user = self.service._registered(ctx)
        await self.store.leave(ctx.request.body["group_id"], user.key, ctx.now)
        self.service._reply(ctx, Kind.LEFT_GROUP)

    # --- watches --------------------------------------------------------------------

    async def _watch(self, ctx: "_Context") -> None:
        """Anonymous, with the access key of a kept epoch, like a post: what is after
        `after` at once, or (with nothing yet) held for up to `hold` seconds. Marks the
        group watched: its entries stay for the retention."""
        service, body = self.service, ctx.request.body
        if not service.sealed_sends.allow(ctx.tag, ctx.now):
            raise Refused(ErrorCode.RATE_LIMITED, "too many messages; slow down")
        group_id, hold = body["group_id"], body["hold"]
        if hold > wire.MAX_WATCH_HOLD_S:
            raise Refused(
                ErrorCode.BAD_REQUEST, f"a watch is held {wire.MAX_WATCH_HOLD_S} s at most"
            )
        group = await self.store.group(group_id)
        if (
            group is None
            or body["epoch"] > LAST_EPOCH
            or not _matches(await self.store.verifier(group_id, body["epoch"]), body["access_key"])
        ):
            raise Refused(ErrorCode.FORBIDDEN, NOT_MEMBER)
        request_id = ctx.request.request_id
        earlier = self.watches.get(request_id)
        if earlier is not None and earlier.digest != ctx.digest:
            raise Refused(ErrorCode.REPLAYED, "this request was already handled")
        until = ctx.now + service.config.retention_ms
        if group.watched_until < until - min(HOUR, service.config.retention_ms // 16):
            await self.store.watch(group_id, until)
        after = min(body["after"], LAST_POSITION)  # (nothing is after it)
        answer = await self._entries(group_id, group, after)
        if answer["entries"] or not hold or not self.watches.room(ctx.tag, request_id):
            return service._reply(ctx, Kind.GROUP_ENTRIES, **answer)
        ctx.held = Held(request_id, ctx.digest, ctx.tag, group_id, after, ctx.now + hold * 1000)

    async def _entries(self, group_id: bytes, group: Group, after: int) -> dict:
        """The body of a `group_entries` answer: entries after `after`, as many as fit."""
        entries = await self.store.entries_after(
            group_id, after, WATCH_ANSWER_BYTES, ENTRY_BYTES, wire.MAX_LIST
        )
        oldest = await self.store.oldest_position(group_id)
        last = group.position
        return {"entries": entries, "last": last, "oldest": last + 1 if oldest is None else oldest}

    async def answer_watches(self, now: int) -> list["Outgoing"]:
        """Answers the held watches that are due: of a group with a new entry (those still
        with nothing after their position are held again) or whose time is up (empty).
        An answer with entries is kept in the answer cache; an empty one is not: a retry
        of a watch that timed out is handled anew. A watch whose request was answered
        meanwhile (a retry of it, here or by another process) is dropped."""
        due = self.watches.take(now)
        if not due:
            return []
        service, out, again = self.service, [], []
        try:
            async with service.store.transaction():
                for held in due:
                    if await service.store.seen(held.request_id) is not None:
                        continue
                    answer = await self._answer_held(held, now)
                    if answer is None:
                        again.append(held)
                    else:
                        out.append(answer)
        except BaseException:
            self.watches.again(due)  # answered next time
            for held in due:
                self.watches.posted(held.group_id)
            raise
        self.watches.again(again)
        return out

    async def _answer_held(self, held: Held, now: int) -> "Outgoing | None":
        service = self.service
        group = await self.store.group(held.group_id)
        if group is None:  # gone meanwhile
            body = {"code": ErrorCode.FORBIDDEN, "detail": NOT_MEMBER}
            return service._answer(wire.ANONYMOUS, held.tag, held.request_id, Kind.ERROR, body, now)
        body = await self._entries(held.group_id, group, held.after)
        if not body["entries"] and held.until > now:
            return None
        answer = service._answer(
            wire.ANONYMOUS, held.tag, held.request_id, Kind.GROUP_ENTRIES, body, now
        )
        if body["entries"]:
            expires = now + 2 * service.config.freshness_ms
            await service.store.remember(held.request_id, held.digest, answer.message, expires)
        return answer

    # --- pushes ---------------------------------------------------------------------

    async def _fan_out(self, entry: int | None, now: int) -> list["Outgoing"]:
        if entry is None:
            return []
        return await self.push(await self.store.entry_deliveries(entry), now)

    async def push(self, queued: list[GroupQueued], now: int) -> list["Outgoing"]:
        """`GROUP_DELIVER` for each of `queued` (with a route through this process),
        retried like `DELIVER`."""
        answer = self.service._answer
        out, pushed = [], []
        for d in queued:
            if d.sender_tag is None or not await self.service._local(d.sender_tag):
                continue
            body = {
                "message_id": d.message_id,
                "group_id": d.group_id,
                "epoch": d.epoch,
                "post": d.post,
                "sent": d.received,
                "payload": d.payload,
            }
            out.append(
                answer(d.identity, d.sender_tag, None, Kind.GROUP_DELIVER, body, now, d.push_key)
            )
            pushed.append((d.recipient, d.entry, now + self.service._retry(d.pushes)))
        if pushed:
            await self.store.pushed(pushed)
        return out


def _check_shape(body: dict, config) -> int:
    """What a post of its kind may carry, and how big: its bytes to store."""
    post, commit = body["post"], body["post"] == GroupPost.COMMIT
    if post not in (GroupPost.APPLICATION, GroupPost.PROPOSAL, GroupPost.COMMIT):
        raise Refused(ErrorCode.BAD_REQUEST, "a post is an application, a proposal or a commit")
    welcome = body["welcome"] or b""
    if not commit:
        if body["next_verifier"] or body["add"] or body["remove"] or body["welcome"]:
            raise Refused(ErrorCode.BAD_REQUEST, "only a commit adds, removes or welcomes")
        if len(body["payload"]) > config.max_payload:
            raise Refused(ErrorCode.TOO_LARGE, f"messages are at most {config.max_payload} bytes")
        return len(body["payload"])
    if body["next_verifier"] is None:
        raise Refused(ErrorCode.BAD_REQUEST, "a commit names the next epoch's verifier")
    if body["welcome"] is not None and not body["add"]:
        raise Refused(ErrorCode.BAD_REQUEST, "a welcome comes with the members it adds")
    size = len(body["payload"]) + len(welcome)
    if size > config.max_commit_bytes:
        raise Refused(ErrorCode.TOO_LARGE, f"a commit is at most {config.max_commit_bytes} bytes")
    return size


def _matches(verifier: bytes | None, access_key: bytes) -> bool:
    return verifier is not None and hmac.compare_digest(verifier, wire.access_verifier(access_key))
