"""Pages of the alert engine: alerts, silences and rules. Thin views: the
sorting lives in vigil.alerts.overview, validation in the forms and models,
the state changes in vigil.alerts.dispatch."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from vigil.alerts import overview
from vigil.alerts.backtest import backtest
from vigil.alerts.dispatch import acknowledge as acknowledge_alert
from vigil.alerts.dispatch import refresh_marks
from vigil.alerts.forms import BacktestForm, RuleForm, SilenceForm
from vigil.alerts.models import Alert, Rule, Silence
from vigil.notify import overview as notify_overview

TABS = [*overview.SECTIONS, ("history", "History"), ("deliveries", "Deliveries")]
BACKTEST_DAYS = 7
SILENCE_SECTIONS = [("active", "Active"), ("upcoming", "Upcoming"), ("expired", "Recently expired")]


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Back to the page the form was on (the alerts page or a server page)."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(default)


def alerts_page(request: HttpRequest) -> HttpResponse:
    tabs = TABS
    if not request.user.has_perm("notify.view_delivery"):
        tabs = [t for t in TABS if t[0] != "deliveries"]
    tab = request.GET.get("tab", "firing")
    if tab not in dict(tabs):
        tab = "firing"
    sections = overview.live_alerts(timezone.now())
    # Notifications that reached no one: a banner on every tab.
    failed = notify_overview.failed_count(timezone.now())
    counts = {key: len(rows) for key, rows in sections.items()} | {"deliveries": failed}
    context = {
        "tab": tab,
        "tabs": [(key, title, counts.get(key, 0)) for key, title in tabs],
        "rows": sections.get(tab, []),
        "events": overview.history(request.GET.get("page")) if tab == "history" else None,
        "failed_deliveries": failed,
        "deliveries": notify_overview.delivery_page(
            request.GET.get("page"), request.GET.get("status", "")
        )
        if tab == "deliveries"
        else None,
    }
    return render(request, "web/alerts/alerts.html", context)


@require_POST
@permission_required("alerts.change_alert", raise_exception=True)
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.select_related("rule", "server", "location"), pk=pk)
    comment = request.POST.get("comment", "").strip()
    if acknowledge_alert(alert, request.user, comment, timezone.now()):
        messages.success(request, f"Acknowledged: {alert}.")
    else:
        messages.error(request, f"Not acknowledged: {alert} is not firing, or was acknowledged.")
    return _back(request, "alerts")


@permission_required("alerts.view_silence", raise_exception=True)
def silences(request: HttpRequest) -> HttpResponse:
    groups = overview.silences_by_state(timezone.now())
    sections = [(state, title, groups[state]) for state, title in SILENCE_SECTIONS]
    return render(request, "web/alerts/silences.html", {"sections": sections})


@require_http_methods(["GET", "POST"])
@permission_required("alerts.add_silence", raise_exception=True)
def silence_new(request: HttpRequest) -> HttpResponse:
    alert_id = request.POST.get("until_resolved") or request.GET.get("alert")
    alert = None
    if alert_id:
        alert = get_object_or_404(
            Alert.objects.select_related("rule", "server", "location"),
            pk=alert_id if str(alert_id).isdigit() else 0,
        )
    now = timezone.now()
    if request.method == "POST":
        form = SilenceForm(request.POST, alert=alert, now=now)
        if form.is_valid():
            silence = form.save(commit=False)
            silence.created_by = request.user
            silence.save()
            refresh_marks(now)
            messages.success(request, f"Silence created: {silence}.")
            return redirect("silences")
    else:
        initial = overview.silence_defaults(alert) if alert else {}
        form = SilenceForm(initial=initial, alert=alert, now=now)
    context = {"form": form, "alert": alert, "time_zone": timezone.get_current_timezone_name()}
    return render(request, "web/alerts/silence_form.html", context)


@require_POST
@permission_required("alerts.change_silence", raise_exception=True)
def silence_expire(request: HttpRequest, pk: int) -> HttpResponse:
    silence = get_object_or_404(Silence, pk=pk)
    if overview.expire(silence, timezone.now()):
        messages.success(request, f"Silence expired: {silence}.")
    else:
        messages.error(request, f"{silence} had already ended.")
    return redirect("silences")


@permission_required("alerts.view_rule", raise_exception=True)
def rules(request: HttpRequest) -> HttpResponse:
    return render(request, "web/alerts/rules.html", {"rules": overview.rule_rows()})


@require_http_methods(["GET", "POST"])
@permission_required("alerts.view_rule", raise_exception=True)
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk) if pk is not None else Rule()
    needed = "alerts.change_rule" if pk is not None else "alerts.add_rule"
    can_save = request.user.has_perm(needed)
    if request.method == "POST":
        if not can_save:
            raise PermissionDenied
        form = RuleForm(request.POST, instance=rule)
        if form.is_valid():
            rule = form.save()
            messages.success(request, f"Rule saved: {rule}.")
            return redirect("rule", pk=rule.pk)
    else:
        form = RuleForm(instance=rule)
    context = {"form": form, "rule": rule, "can_save": can_save, "days": BACKTEST_DAYS}
    return render(request, "web/alerts/rule_form.html", context)


@require_POST
@permission_required("alerts.change_rule", raise_exception=True)
def rule_enable(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    rule.enabled = request.POST.get("enabled") == "1"
    rule.save(update_fields=["enabled", "updated"])
    messages.success(request, f"Rule {'enabled' if rule.enabled else 'disabled'}: {rule}.")
    return redirect("rules")


@require_POST
@permission_required("alerts.view_rule", raise_exception=True)
def rule_backtest(request: HttpRequest) -> JsonResponse:
    """The editor's unsaved rule run over the last days of history: JSON."""
    form = BacktestForm(request.POST, instance=Rule(name=request.POST.get("name", "")))
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    rule = form.save(commit=False)
    try:
        result = backtest(rule, days=BACKTEST_DAYS)
    except ValueError as exc:
        # Too many series, or a rule the backtest cannot replay: said, not failed.
        return JsonResponse({"errors": {"__all__": [{"message": str(exc)}]}}, status=400)
    return JsonResponse(
        {
            **result.as_dict(),
            "summary": overview.backtest_summary(result, BACKTEST_DAYS),
            "rule": {
                "metric": rule.metric,
                "operator": rule.operator,
                "threshold": rule.threshold,
                "recovery_threshold": rule.recovery_threshold,
                "kind": rule.kind,
                "per_core": rule.per_core,
            },
            "days": BACKTEST_DAYS,
        }
    )
