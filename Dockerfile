# One image for web, worker and gpu-worker; the gpu-worker adds the `ml` extra at build time.
FROM python:3.11-slim-bookworm
ARG EXTRAS=platform,s3
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VAR_DIR=/var/lib/mmskin
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY skinplatform ./skinplatform
COPY curation ./curation
COPY workers ./workers
COPY ml ./ml
COPY frontend_templates ./frontend_templates
COPY manage.py ./
RUN pip install ".[${EXTRAS}]" && useradd --system --home /var/lib/mmskin mmskin \
    && mkdir -p /var/lib/mmskin && chown mmskin /var/lib/mmskin
USER mmskin
# collectstatic signs nothing, but settings refuse a weak key: a throwaway random one.
RUN SECRET_KEY=$(python -c "import secrets; print(secrets.token_urlsafe(50))") \
    python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "skinplatform.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
