FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 SCRM_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml ./
COPY . .
RUN pip install -e . && mkdir -p /app/var
EXPOSE 8000
CMD ["gunicorn", "scrm.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
