# A nym-client of the node (the Nym native client), listening on the compose network only;
# NYM_ID names it (one container per frontend).
# NYM_CLIENT_URL: the nym-client release binary for linux x86_64 from the Nym releases.
FROM debian:bookworm-slim
ARG NYM_CLIENT_URL
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && curl -fsSL -o /usr/local/bin/nym-client "$NYM_CLIENT_URL" \
    && chmod 755 /usr/local/bin/nym-client \
    && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/nym --uid 10002 nym
USER nym
ENV NYM_ID=nymchat-node
VOLUME ["/var/lib/nym"]
# First start: init (listening on all interfaces of the private compose network), then run.
ENTRYPOINT ["/bin/sh", "-c", "[ -d \"$HOME/.nym/clients/$NYM_ID\" ] || nym-client init --id \"$NYM_ID\" --host 0.0.0.0 --port 1977; exec nym-client run --id \"$NYM_ID\""]
