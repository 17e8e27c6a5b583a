# monitor as a container: point MONITOR_REDIS_URL at a Redis or Valkey (see
# docker-compose.yml), or leave it unset to run the embedded redis-server under /data.
FROM python:3.11-slim

RUN useradd --system --home-dir /app --shell /usr/sbin/nologin monitor \
    && mkdir -p /data && chown monitor /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir .
COPY config ./config

ENV MONITOR_CONFIG_DIR=/app/config \
    MONITOR_DATA_DIR=/data \
    MONITOR_LOG_FORMAT=json
VOLUME ["/data"]
USER monitor
RUN monitor validate
ENTRYPOINT ["monitor"]
CMD ["run"]
