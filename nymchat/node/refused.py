"""How a request handler refuses: the service turns it into an ERROR answer with `code`."""

from nymchat.protocol.wire import ErrorCode


class Refused(Exception):
    def __init__(self, code: ErrorCode, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail
