# One image for every zjobs role: `broker`, `worker`, `api`, or `up` (all in one).
#   docker build -t zjobs .
#   docker run --rm -p 8000:8000 -e ZJOBS_API_TOKEN=change-me zjobs   # everything in one container
#   ZJOBS_API_TOKEN=change-me docker compose up                        # broker, API, 2 workers
# The API listens on 0.0.0.0 here, so it needs a token (ZJOBS_API_TOKEN, from the environment:
# never baked into the image); without one it refuses to start and says so.
# Your tasks: build FROM this image, `RUN pip install` what they need (zjobs lives in a
# virtualenv the zjobs user owns, first on PATH), COPY your package into /app, and pass
# --tasks mymod (or ZJOBS_TASKS).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/zjobs \
    PATH=/opt/zjobs/bin:$PATH \
    ZJOBS_DATA_DIR=/data \
    ZJOBS_LOG_JSON=1

RUN useradd --create-home --uid 10001 zjobs \
    && python -m venv /opt/zjobs \
    && mkdir -p /data /app /tmp/zjobs-src \
    && chown -R zjobs:zjobs /opt/zjobs /data /app /tmp/zjobs-src

# installed by the user that runs it: a derived image's `RUN pip install` works as is
USER zjobs
WORKDIR /tmp/zjobs-src
COPY --chown=zjobs:zjobs pyproject.toml README.md ./
COPY --chown=zjobs:zjobs broker ./broker
COPY --chown=zjobs:zjobs worker ./worker
COPY --chown=zjobs:zjobs api ./api
RUN pip install . && cd / && rm -rf /tmp/zjobs-src

WORKDIR /app
VOLUME ["/data"]
EXPOSE 5555 5556 5557 8000

# zjobs handles SIGTERM itself (`docker stop`): workers finish or hand back their jobs,
# `up` stops its children and reaps every descendant, so no init shim is needed.
ENTRYPOINT ["zjobs"]
CMD ["up", "--host", "0.0.0.0"]
