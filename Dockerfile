# The bot as a container: `python -m bot serve` on $PORT, the data dir a volume, a non-root user.
# Published build: `podman build -t kombit-assistant .` (or docker) on python:3.11-slim. Where no registry is
# reachable, tests/e2e/test_container.py builds the same file on a Debian 12 base made with debootstrap
# (`--build-arg BASE=...`): Python 3.11 from Debian in a venv instead of python.org's build.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080 \
    HOST=0.0.0.0 \
    BOT_DATA_DIR=/data

WORKDIR /app

# The dependencies in their own layer: rebuilt only when pyproject.toml changes, not on every code change.
COPY pyproject.toml ./
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', *deps])"

COPY bot ./bot
COPY dialogs ./dialogs
COPY content ./content
COPY appPackage ./appPackage
# The understander's training, done once here instead of at every start (bot/understanding_cache.py; speed only:
# read-only at run time, and a start whose content or code differs just trains).
ENV BOT_CACHE_DIR=/app/cache
RUN python -c "from bot import understanding_cache as c; from content import load_content; \
from content.loader import CONTENT_ROOT; c.understander(load_content(), CONTENT_ROOT, c.Path('/app/cache'))"

# A user of its own (by number, so Kubernetes' runAsNonRoot can tell), owning only the data dir: the code and
# content are read-only to the running bot.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app bot \
    && mkdir -p /data && chown bot /data
USER 10001
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=4)"

CMD ["python", "-m", "bot", "serve"]
