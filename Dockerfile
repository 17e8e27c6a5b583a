# monitor as a container: point MONITOR_REDIS_URL at a Redis or Valkey (see
# docker-compose.yml), or leave it unset to run the embedded redis-server under /data.
FROM python:3.11-slim AS build
# A C compiler for monitor's C extensions (monitor/_fold.c, monitor/_minhash.c), in this
# stage only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim

RUN useradd --system --home-dir /app --shell /usr/sbin/nologin monitor \
    && mkdir -p /data && chown monitor /data
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY config ./config

ENV MONITOR_CONFIG_DIR=/app/config \
    MONITOR_DATA_DIR=/data \
    MONITOR_LOG_FORMAT=json
VOLUME ["/data"]
USER monitor
RUN monitor validate
ENTRYPOINT ["monitor"]
CMD ["run"]
