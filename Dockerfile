# One image for every zjobs role: `broker`, `worker`, `api`, or `up` (all in one).
#   docker build -t zjobs .
#   docker run --rm -p 8000:8000 zjobs up --host 0.0.0.0      # try it: everything in one container
#   docker compose up                                          # broker, API, 2 workers (compose.yaml)
# Your tasks: build FROM this image, COPY your package into /app, and pass --tasks mymod.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ZJOBS_DATA_DIR=/data \
    ZJOBS_LOG_JSON=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY worker ./worker
COPY api ./api
RUN pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 zjobs && mkdir -p /data /app && chown zjobs /data /app
USER zjobs
WORKDIR /app
VOLUME ["/data"]
EXPOSE 5555 5556 5557 8000

# zjobs handles SIGTERM itself (`docker stop`): workers finish or hand back their jobs,
# `up` stops its children and reaps every descendant, so no init shim is needed.
ENTRYPOINT ["zjobs"]
CMD ["up", "--host", "0.0.0.0"]
