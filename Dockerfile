# The portal as a container: `portal serve` against the PostgreSQL at DATABASE_URL.
#
#   docker build -t partnerportaal .
#   docker run -p 8000:8000 -e DATABASE_URL=postgresql://… -e PORTAL_SECRET_KEY=… \
#       -e PORTAL_PORTAL_ENVIRONMENT=production -e PORTAL_PORTAL_BASE_URL=https://… \
#       -e PORTAL_MAIL_BACKEND=resend -e RESEND_API_KEY=… partnerportaal
#
# The embedded PostgreSQL is for development only and is not used here: without DATABASE_URL
# the container refuses to start in production.

FROM python:3.12-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
COPY components ./components
COPY templates ./templates
COPY migrations ./migrations
COPY assets ./assets
COPY litestar.toml piccolo_conf.py ./
RUN uv sync --frozen --no-dev

FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin portal
WORKDIR /app
COPY --from=build --chown=root:root /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1
USER portal
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
# One worker per core the container gets; override with e.g. `serve --workers 4`.
ENTRYPOINT ["portal"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
