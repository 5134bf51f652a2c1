"""Adding and removing a server's scrape targets from its page."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from vigil.scrape.models import ScrapeTarget
from vigil.servers.models import Server


class ScrapeTargetForm(forms.ModelForm):
    class Meta:
        model = ScrapeTarget
        fields = ["url", "interval", "timeout"]


@require_POST
@permission_required("scrape.add_scrapetarget", raise_exception=True)
def add_target(request, pk: int):
    server = get_object_or_404(Server, pk=pk)
    form = ScrapeTargetForm(request.POST, instance=ScrapeTarget(server=server))
    if form.is_valid():
        target = form.save()
        messages.success(request, f"Vigil scrapes {target.display_url} every {target.interval} s.")
    else:
        errors = "; ".join(f"{field}: {' '.join(e)}" for field, e in form.errors.items())
        messages.error(request, f"The scrape target was not added: {errors}")
    return redirect("server", pk=server.pk)


@require_POST
@permission_required("scrape.delete_scrapetarget", raise_exception=True)
def remove_target(request, pk: int, target_pk: int):
    target = get_object_or_404(ScrapeTarget, pk=target_pk, server_id=pk)
    target.delete()
    messages.success(request, f"Vigil no longer scrapes {target.display_url}.")
    return redirect("server", pk=pk)
