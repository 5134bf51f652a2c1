"""Pages of the notification channels, routes and the delivery log. Thin
views: the forms validate (through each transport's validate()),
vigil.notify.overview reads, vigil.notify.delivery sends."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from vigil.notify import configure, overview
from vigil.notify.delivery import send_test
from vigil.notify.forms import ChannelForm, RouteForm
from vigil.notify.models import Channel, Route


@permission_required("notify.view_channel", raise_exception=True)
def channels(request: HttpRequest) -> HttpResponse:
    context = {"rows": overview.channel_rows(), "kinds": configure.kinds()}
    return render(request, "web/alerts/channels.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("notify.view_channel", raise_exception=True)
def channel_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """The editor of a channel, or of a new one of ?kind= (without it: the
    list of kinds to choose from)."""
    if pk is not None:
        channel = get_object_or_404(Channel, pk=pk)
        kind = channel.kind
    else:
        kind = request.GET.get("kind", "")
        if not kind:
            return render(request, "web/alerts/channel_kinds.html", {"kinds": configure.kinds()})
        if configure.transport(kind) is None:
            raise Http404("no such kind of channel")
        channel = Channel(kind=kind)
    needed = "notify.change_channel" if pk is not None else "notify.add_channel"
    can_save = request.user.has_perm(needed)
    if request.method == "POST":
        if not can_save:
            raise PermissionDenied
        form = ChannelForm(request.POST, instance=channel, kind=kind)
        if form.is_valid():
            channel = form.save()
            messages.success(request, f"Channel saved: {channel.name}.")
            return redirect("channel", pk=channel.pk)
    else:
        form = ChannelForm(instance=channel, kind=kind)
    context = {
        "form": form,
        "channel": channel,
        "label": configure.label_of(kind),
        "installed": configure.transport(kind) is not None,
        "can_save": can_save,
        "can_test": pk is not None and request.user.has_perm("notify.change_channel"),
        "can_delete": pk is not None and request.user.has_perm("notify.delete_channel"),
        "failing": pk is not None and overview.channel_health(channel),
        "last_error": configure.redact(channel.last_error, channel.secrets),
        "test": overview.shown_test(channel, request.GET.get("test")) if pk else None,
    }
    return render(request, "web/alerts/channel_form.html", context)


@require_POST
@permission_required("notify.change_channel", raise_exception=True)
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a test notification now; the editor then shows how it went."""
    channel = get_object_or_404(Channel, pk=pk)
    outcome, attempt = send_test(channel)
    if outcome == "sent":
        messages.success(request, f"Test notification sent through {channel.name}.")
    else:
        messages.error(request, f"The test notification through {channel.name} failed.")
    url = reverse("channel", args=[channel.pk])
    if attempt is not None:
        url += f"?test={attempt.delivery_id}"
    return redirect(url + "#test-result")


@require_POST
@permission_required("notify.delete_channel", raise_exception=True)
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk)
    channel.delete()
    messages.success(request, f"Channel deleted: {channel.name}.")
    return redirect("channels")


@permission_required("notify.view_route", raise_exception=True)
def routes(request: HttpRequest) -> HttpResponse:
    return render(request, "web/alerts/routes.html", {"routes": overview.route_rows()})


@require_http_methods(["GET", "POST"])
@permission_required("notify.view_route", raise_exception=True)
def route_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    route = get_object_or_404(Route, pk=pk) if pk is not None else Route()
    needed = "notify.change_route" if pk is not None else "notify.add_route"
    can_save = request.user.has_perm(needed)
    if request.method == "POST":
        if not can_save:
            raise PermissionDenied
        form = RouteForm(request.POST, instance=route)
        if form.is_valid():
            route = form.save()
            messages.success(request, f"Route saved: {route.name}.")
            return redirect("route", pk=route.pk)
    else:
        form = RouteForm(instance=route)
    context = {
        "form": form,
        "route": route,
        "can_save": can_save,
        "can_delete": pk is not None and request.user.has_perm("notify.delete_route"),
    }
    return render(request, "web/alerts/route_form.html", context)


@require_POST
@permission_required("notify.delete_route", raise_exception=True)
def route_delete(request: HttpRequest, pk: int) -> HttpResponse:
    route = get_object_or_404(Route, pk=pk)
    route.delete()
    messages.success(request, f"Route deleted: {route.name}.")
    return redirect("routes")


@permission_required("notify.view_delivery", raise_exception=True)
def delivery(request: HttpRequest, pk: int) -> HttpResponse:
    found = overview.delivery_detail(pk)
    if found is None:
        raise Http404("no such delivery")
    return render(request, "web/alerts/delivery.html", {"delivery": found})
