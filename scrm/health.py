from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def _check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # report, don't crash: this is the health page
        return {"ok": False, "error": str(exc)[:200]}


def _check_broker():
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "eager (no broker configured)"}
    from scrm.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "mode": "broker", "transport": conn.transport_cls}
    except Exception as exc:
        return {"ok": False, "mode": "broker", "error": str(exc)[:200]}


def healthz(request):
    """Liveness and readiness: the database and the task broker. 503 when either is down."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if ok else "degraded", "checks": checks}, status=200 if ok else 503)
