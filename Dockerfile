# OMC in a container: `docker build -t omc .`, then see docker-compose.yml.
# Stage 1 builds wheels of OMC and every pinned dependency (constraints.txt); stage 2 is
# python:3.11-slim with those wheels installed, the PostgreSQL client tools for
# `omc db backup`, and a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt README.md ./
COPY omc ./omc
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMC_DATA_DIR=/data \
    OMC_LOG_FORMAT=json
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin omc \
    && mkdir -p /data && chown omc:omc /data
COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir --no-index --find-links /wheels -c /tmp/constraints.txt omc \
    && rm -rf /wheels /tmp/constraints.txt
USER omc
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000 9464
# ready = the database answers and is at this version's latest migration
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["omc", "db", "check"]
ENTRYPOINT ["omc"]
CMD ["--help"]
